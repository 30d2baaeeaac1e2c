"""The seeded examples in the docstrings run as doctests (CI runs pytest without --doctest-modules)."""
from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["kades.temporal.detector", "kades.temporal.threshold", "kades.temporal.base", "kades.temporal.multiwindow", "kades.temporal.volatility", "kades.temporal.pump", "kades.temporal.liquidity", "kades.temporal.momentum", "kades.temporal.ensemble", "kades.temporal.scoring", "kades.temporal.prediction", "kades.simulate.series"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
