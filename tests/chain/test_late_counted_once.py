"""A late slot is counted in kades_late_inputs_total once per event, however often the update is
computed: before, chain-analysis and whale-detection counted it at every computation of the
event (a conflict with another replica, a mint started afresh), and again at a retry of an
event whose commit had failed."""
from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from kades.chain import function as chain
from kades.chain.thresholds import ChainThresholds
from kades.whales import function as whales

T = ChainThresholds()
EMPTY = {"swaps": [], "transfers": [], "launches": []}
MODULES = {"chain-analysis": chain, "whale-detection": whales}


def late(function: str) -> float:
    return REGISTRY.get_sample_value("kades_late_inputs_total", {"function": function}) or 0.0


def item(function: str, slot: int) -> tuple:
    payload = ({"pools": {}, "records": EMPTY} if function == "chain-analysis"
               else {"records": EMPTY, "pool_states": [], "sol_usd": None})
    return slot, 1.7e9 + slot * 0.4, payload


@pytest.mark.parametrize("function", list(MODULES))
def test_a_late_slot_is_counted_once_when_the_update_is_computed_again(redis_conn, monkeypatch,
                                                                       function):
    module = MODULES[function]
    store = module.start(None).states
    module.analyse_mints(redis_conn, {"A": item(function, 100), "B": item(function, 100)}, None,
                         T, store)
    real, computed = module.analyse_token, []

    def analyse_token(doc, token, records, *args):  # B's first state this event: unencodable
        found = real(doc, token, records, *args)
        if token == "B":
            computed.append(1)
            if len(computed) == 1:
                doc["planted"] = object()
        return found
    monkeypatch.setattr(module, "analyse_token", analyse_token)
    counted = late(function)
    # A's slot 99 after its 100: late (in order, no lateness); B's analysis computed twice
    module.analyse_mints(redis_conn, {"A": item(function, 99), "B": item(function, 101)}, None,
                         T, store)
    assert len(computed) == 1  # the second computation started B afresh, not analysed
    assert late(function) == counted + 1
