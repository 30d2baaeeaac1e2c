"""The seeded examples in the docstrings run as doctests (CI runs pytest without --doctest-modules)."""
from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["kades.risk.scoring", "kades.risk.alerting",
                                    "kades.alerts.signing", "kades.apikey"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
