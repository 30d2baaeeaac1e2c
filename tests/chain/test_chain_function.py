"""chain-analysis and whale-detection as deployed: functions-framework app, real Redis."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from functions_framework import create_app

from kades.chain import function as chain_function
from kades.events.catalogue import ANOMALY_DETECTED, CHAIN_BLOCK, data_problems, derived_id, new_event
from kades.events.envelope import from_binary, to_binary, to_dict
from kades.runtime import Context
from kades.simulate.chain import simulate_chain
from kades.whales import function as whale_function
from kades.solana.programs import WSOL

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.fixture
def app_of(kades_env, redis_conn):
    # A fresh app is a fresh process: its Context, so its cached states, are new.
    return lambda name: create_app("handle", str(FUNCTIONS / name / "main.py"), "http").test_client()


def post(client, event, *, structured=False):
    if structured:
        return client.post("/", data=json.dumps(to_dict(event)),
                           headers={"content-type": "application/cloudevents+json"})
    headers, body = to_binary(event)
    return client.post("/", data=body, headers=headers)


def replies(client, events):
    found = []
    for index, event in enumerate(events):
        response = post(client, event, structured=index % 2 == 1)  # both content modes
        assert response.status_code in (200, 202), response.data
        if response.status_code == 200:
            found.append(from_binary(dict(response.headers), response.data))
    return found


def test_chain_analysis_replies_a_rug_with_evidence_and_is_idempotent(app_of, redis_conn):
    client = app_of("chain-analysis")
    sim = simulate_chain(seed=21, minutes=10, scenarios=("organic", "soft_rug"))
    answers = replies(client, sim.events)
    assert answers and all(a.type == ANOMALY_DETECTED and not data_problems(a) for a in answers)
    anomalies = [x for a in answers for x in a.data["anomalies"]]
    rug_token = next(t for t, name in sim.tokens.items() if name == "soft_rug")
    assert [(x["token"], x["anomaly_type"]) for x in anomalies] == [(rug_token, "liquidity_removal")]
    evidence = anomalies[0]["evidence"]
    assert evidence["provider"] == evidence["creator"] and evidence["signatures"]
    assert redis_conn.exists(f"kades:{{chain}}:pool:{evidence['pool']}")
    # The simulation's blocks carry a following source's links (kades.solana.parts), so the
    # removal's own block raises it, not one past the allowed lateness (30 s, 75 slots) later.
    # Its redelivery: the very same reply.
    removal = next(e for e in sim.events if any(r["action"] == "remove" for r in e.data["liquidity"]))
    raising = next(e for e in sim.events
                   if derived_id(e, f"chain-anomalies:{answers[0].subject}") == answers[0].id)
    assert raising is removal and evidence["signatures"] == [
        r["signature"] for r in removal.data["liquidity"] if r["action"] == "remove"]
    again = post(client, raising)
    assert again.status_code == 200 and from_binary(dict(again.headers), again.data).id == answers[0].id


def test_whale_detection_finds_split_wallets_accumulating(app_of):
    client = app_of("whale-detection")
    sim = simulate_chain(seed=22, minutes=20, scenarios=("organic", "split_accumulation"))
    kinds = {x["anomaly_type"] for a in replies(client, sim.events) for x in a.data["anomalies"]}
    assert kinds == {"wallet_splitting", "accumulation"}


def test_a_block_without_any_time_is_refused_naming_the_field(app_of):
    client = app_of("chain-analysis")
    block = {"slot": 5, "block_time": None, "transfers": [], "swaps": [], "liquidity": [], "launches": []}
    document = {**to_dict(new_event(CHAIN_BLOCK, "/tests", block)), "data": block}
    del document["time"]
    response = client.post("/", data=json.dumps(document), headers={"content-type": "application/cloudevents+json"})
    assert response.status_code == 400 and b"data.block_time" in response.data


def test_a_malformed_record_is_refused_with_every_problem(app_of):
    client = app_of("chain-analysis")
    block = {"slot": 5, "block_time": "2024-06-01T00:00:00Z", "transfers": [{"signature": "s", "mint": "M"}],
             "swaps": [{"signature": "s"}], "liquidity": [], "launches": []}
    headers, body = to_binary(new_event(CHAIN_BLOCK, "/tests", {"slot": 5, "transfers": [], "swaps": [],
                                                                "liquidity": [], "launches": []}))
    response = client.post("/", data=json.dumps(block), headers=headers)
    assert response.status_code == 400
    assert b"data.transfers[0]" in response.data and b"data.swaps[0]" in response.data


def test_a_records_order_or_program_of_the_wrong_type_is_a_400_not_a_500(app_of, redis_conn):
    """`tx_index` and a pool state's `program` were read and never checked: a null tx_index
    sorted against a number was a 500 for the whole block (every mint of it dead-lettered),
    a program that is a list reset the mint's state afresh behind a 200."""
    mint = "Tok1111111111111111111111111111111111111111"
    state = {"signature": "s", "pool": "P1", "base_mint": mint, "quote_mint": WSOL,
             "base_reserve": 10**12, "quote_reserve": 10**10, "base_decimals": 6,
             "quote_decimals": 9}
    block = {"slot": 5, "block_time": "2024-06-01T00:00:00Z", "transfers": [], "swaps": [],
             "liquidity": [], "launches": [],
             "pool_states": [{**state, "tx_index": 1}, {**state, "tx_index": None},
                             {**state, "tx_index": "2", "program": ["x"]}]}
    for name in ("chain-analysis", "whale-detection"):
        headers, body = to_binary(new_event(CHAIN_BLOCK, "/tests", block))
        response = app_of(name).post("/", data=body, headers=headers)
        assert response.status_code == 400, response.data
        assert {d["field"] for d in response.get_json()["errors"]} == {
            "data.pool_states[1].tx_index", "data.pool_states[2].tx_index",
            "data.pool_states[2].program"}


def test_handlers_called_directly_share_the_same_redis_state(kades_settings, redis_conn):
    ctx = Context("chain-analysis", settings=kades_settings)
    sim = simulate_chain(seed=23, minutes=10, scenarios=("dump",))
    found = [chain_function.handle_block(e, ctx) for e in sim.events]
    kinds = [x["anomaly_type"] for rs in found if rs for r in rs for x in r.data["anomalies"]]
    assert kinds == ["rug_price_dump"]


@pytest.mark.parametrize("module, name, scenario, kind", [
    (chain_function, "chain-analysis", "dump", "rug_price_dump"),
    (whale_function, "whale-detection", "split_accumulation", None)])
def test_a_retry_of_a_block_after_a_failure_past_the_commit_replies_the_same(
        kades_settings, redis_conn, module, name, scenario, kind):
    """The block's state committed, then the reply was lost (the sink or the process failed):
    the Broker's retry, on another replica, must raise the same anomalies again."""
    ctx = Context(name, settings=kades_settings)
    sim = simulate_chain(seed=23, minutes=10, scenarios=(scenario,))
    for event in sim.events:
        replies = module.handle_block(event, ctx)
        if replies:
            break
    assert replies and (kind is None or
                        kind in [x["anomaly_type"] for r in replies for x in r.data["anomalies"]])
    another_replica = Context(name, settings=kades_settings)
    again = module.handle_block(event, another_replica)
    assert again and [(r.id, r.data) for r in again] == [(r.id, r.data) for r in replies]
