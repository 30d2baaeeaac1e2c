"""A stand-in stderr that says it is a terminal, for the tests of progress bars (which are
drawn only on a terminal)."""
from __future__ import annotations

import io


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True
