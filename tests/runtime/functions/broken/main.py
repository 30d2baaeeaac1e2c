"""A function whose module fails to import: its start must still log JSON lines only."""
import kades.no_such_module  # noqa: F401
