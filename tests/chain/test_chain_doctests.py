"""The examples in the chain and Solana docstrings run as doctests."""
from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["kades.solana.base58", "kades.chain.anomaly", "kades.chain.funding", "kades.chain.rows",
                                    "kades.chain.detector", "kades.chain.state", "kades.chain.wash",
                                    "kades.chain.cycles", "kades.chain.launch", "kades.whales.state",
                                    "kades.whales.detectors"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
