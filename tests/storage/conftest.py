"""Every storage test runs on each storage edition (tests/storage_editions.py)."""
from storage_editions import kades_settings  # noqa: F401 - the fixture, once per edition
