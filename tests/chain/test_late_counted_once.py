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


@pytest.mark.parametrize("function", list(MODULES))
def test_a_redelivery_answered_by_the_outbox_counts_no_late_slot_again(redis_conn, function):
    """The first delivery committed its anomalies (kept in its outbox) and counted its late
    slot; the redelivery computes again, finds the slot late again, and is answered by the
    outbox: that computation's late slot is not counted."""
    from kades.chain.blockview import block_time_s, sol_fundings
    from kades.chain.memory import MemoryStates
    from kades.keys import outbox_key
    from kades.market.chain import sol_usd_of
    from kades.simulate.chain import simulate_chain
    module = MODULES[function]
    blocks = [event.data for event in simulate_chain(seed=5, minutes=20).events]
    dry = MemoryStates()  # where the first block with anomalies is, without Redis
    first = next(n for n, block in enumerate(blocks)
                 if module.analyse_block(None, block, block_time_s(block, None), T, dry))
    store = module.start(None).states
    for block in blocks[:first]:
        module.analyse_block(redis_conn, block, block_time_s(block, None), T, store)
    block = blocks[first]
    time_s, sol_usd = block_time_s(block, None), sol_usd_of(block)
    module.analyse_mints(redis_conn, {"LATE": item(function, block["slot"] + 1)}, None, T, store)
    items = {**module.mint_items(block, time_s, sol_usd), "LATE": item(function, block["slot"])}
    context = {"slot": block["slot"], "time_s": time_s, "fundings": sol_fundings(block),
               "sol_usd": sol_usd, "launches": []}
    if function == "chain-analysis":
        context = module.slot_context(block, time_s, sol_usd)
    counted, deliveries = late(function), []
    for _ in range(2):
        deliveries.append(module.analyse_mints(redis_conn, dict(items), context, T, store,
                                               outbox=outbox_key(function, "/tests", "e1")))
        assert late(function) == counted + 1
    assert deliveries[0] and deliveries[1] == deliveries[0]  # the second: the outbox's


@pytest.mark.parametrize("function", list(MODULES))
def test_a_redelivery_of_an_update_without_anomalies_counts_its_late_slot_once(redis_conn,
                                                                               function):
    """The first delivery committed, found no anomaly and counted its late slot, then failed
    after its commit (the event retried): the outbox that answers the redelivery is kept for
    the late slot alone, so its computation again is not counted again."""
    from kades.keys import outbox_key
    module = MODULES[function]
    store = module.start(None).states
    module.analyse_mints(redis_conn, {"A": item(function, 100)}, None, T, store)
    counted, deliveries = late(function), []
    for _ in range(2):
        deliveries.append(module.analyse_mints(redis_conn, {"A": item(function, 99)}, None, T,
                                               store, outbox=outbox_key(function, "/tests", "e2")))
        assert late(function) == counted + 1
    assert deliveries == [[], []]
    # an update with nothing late and no anomaly keeps no outbox: nothing to answer for
    module.analyse_mints(redis_conn, {"A": item(function, 101)}, None, T, store,
                         outbox=outbox_key(function, "/tests", "e3"))
    assert not redis_conn.exists(outbox_key(function, "/tests", "e3"))


@pytest.mark.parametrize("function", list(MODULES))
def test_a_redelivery_of_an_update_without_anomalies_counts_its_failed_mint_once(
        redis_conn, monkeypatch, function):
    """The same for a mint whose analysis raised (a bug, kades.runtime.bulkhead): counted in
    kades_failed_tokens_total by the commit that started it afresh, not by the redelivery."""
    from kades.keys import outbox_key

    def failed() -> float:
        return REGISTRY.get_sample_value("kades_failed_tokens_total", {"function": function}) or 0.0

    def analyse_token(doc, token, *args):
        raise ZeroDivisionError("planted")
    module = MODULES[function]
    store = module.start(None).states
    monkeypatch.setattr(module, "analyse_token", analyse_token)
    counted = failed()
    for _ in range(2):
        assert module.analyse_mints(redis_conn, {"F": item(function, 100)}, None, T, store,
                                    outbox=outbox_key(function, "/tests", "e4")) == []
        assert failed() == counted + 1
