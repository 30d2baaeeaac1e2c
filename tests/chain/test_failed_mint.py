"""chain-analysis's and whale-detection's bulkhead (kades.runtime.bulkhead): a mint whose
analysis raises an error no input should cause (a bug), or whose state then does not encode, is
logged, counted and started afresh;
the block's other mints are analysed and committed as they would have been, and the mint's
later slots are analysed again. Before, the error failed the whole block at every delivery."""
from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from kades.chain import function as chain
from kades.chain.blockview import block_time_s
from kades.chain.thresholds import ChainThresholds
from kades.keys import CHAIN_TOKEN, WHALES_TOKEN
from kades.simulate.chain import simulate_chain
from kades.whales import function as whales

T = ChainThresholds()
SIM = simulate_chain(seed=5, minutes=20)
MODULES = {"chain-analysis": (chain, CHAIN_TOKEN), "whale-detection": (whales, WHALES_TOKEN)}


def failed(function: str) -> float:
    return REGISTRY.get_sample_value("kades_failed_tokens_total", {"function": function}) or 0.0


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def run(redis_conn, function: str) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """Every simulated block through the function's analysis, its state in Redis: each token's
    anomalies, and its final state."""
    module, key = MODULES[function]
    redis_conn.flushdb()
    local = module.start(None)
    extra = {"needs": local.needs} if hasattr(local, "needs") else {}
    found: dict[str, list[str]] = {token: [] for token in SIM.tokens}
    for event in SIM.events:
        block = event.data
        for anomaly in module.analyse_block(redis_conn, block, block_time_s(block, None), T,
                                            local.states, **extra):
            found.setdefault(anomaly["token"], []).append(canonical(anomaly))
    states = dict(zip(SIM.tokens, local.states.current(
        redis_conn, [key.format(token=token) for token in SIM.tokens])))
    return found, states


@pytest.mark.parametrize("function", list(MODULES))
@pytest.mark.parametrize("bug", ["raised", "unencodable"])
def test_a_mint_whose_analysis_raises_is_started_afresh_and_the_others_go_on(redis_conn, monkeypatch,
                                                                              function, bug):
    """`raised`: in the analysis; `unencodable`: the analysis leaves in the state a value no
    encoder writes, found by the store's encoding in the commit (StateNotEncoded)."""
    module, _ = MODULES[function]
    found, states = run(redis_conn, function)
    victim = max(SIM.tokens, key=lambda token: len(states[token]["trades"]))
    others = [token for token in SIM.tokens if token != victim]
    assert any(found[token] for token in others)  # the others' anomalies are worth comparing
    real, slots = module.analyse_token, []

    def analyse_token(doc, token, records, context, funders, time_s, slot, *args):
        if token == victim:  # a bug met once, in the victim's 5th slot
            slots.append(slot)
            if len(slots) == 5 and bug == "raised":
                raise ZeroDivisionError("planted")
            if len(slots) == 5:
                doc["planted"] = object()
        return real(doc, token, records, context, funders, time_s, slot, *args)
    monkeypatch.setattr(module, "analyse_token", analyse_token)
    counted = failed(function)
    found_now, states_now = run(redis_conn, function)
    assert failed(function) == counted + 1
    for token in others:
        assert found_now[token] == found[token]
        assert canonical(states_now[token]) == canonical(states[token])
    # started afresh at its 5th slot, then analysed again: its trades since, none before
    failing = slots[4]
    since = [list(trade) for trade in states[victim]["trades"] if trade.slot > failing]
    assert since and len(since) < len(states[victim]["trades"])
    assert [list(trade) for trade in states_now[victim]["trades"]] == since
    assert states_now[victim]["last_slot"] == states[victim]["last_slot"]


def test_the_rounds_that_read_missing_documents_stay_bounded_however_many_mints(redis_conn,
                                                                                monkeypatch):
    """A failing mint takes a compute of its own, not one of the MAX_KEY_ROUNDS reads of the
    documents a release needs: a block whose documents keep going missing is answered 503
    (TemporaryFailure) after those rounds, however many mints it holds."""
    from kades.chain.ordering import MissingKeys
    from kades.errors import TemporaryFailure
    redis_conn.flushdb()
    computes = []

    def missing(*args, **kwargs):  # another replica forever one document ahead
        computes.append(1)
        raise MissingKeys({f"chain:pool:gone{len(computes)}"})
    monkeypatch.setattr(chain, "_analyse_slot", missing)
    block = max((event.data for event in SIM.events), key=lambda b: len(b["swaps"]))
    assert len({swap["base_mint"] for swap in block["swaps"]}) > 1
    local = chain.start(None)
    with pytest.raises(TemporaryFailure):
        chain.analyse_block(redis_conn, block, block_time_s(block, None), T, local.states,
                            needs=local.needs)
    assert len(computes) == chain.MAX_KEY_ROUNDS
