"""A chain token's liquidity as temporal-analysis sums it: every pool's newest state up to the
tick at hand (kades.temporal.pools), the same whatever order market-aggregator got the blocks."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from kades.events.catalogue import CHAIN_BLOCK, MARKET_TICK, MAX_TICK_POOLS, data_problems, new_event
from kades.keys import MARKET_POOLS
from kades.market.function import handle as market_handle
from kades.runtime import Context
from kades.solana.programs import WSOL
from kades.temporal.function import analyse_token, group_ticks, monitor_of
from kades.temporal.pools import token_liquidity

MINT = "PoolMint11111111111111111111111111111111111"
START = datetime(2026, 1, 15, 12, tzinfo=timezone.utc)
PULL_SLOT = 140


def test_what_is_kept_and_summed_does_not_depend_on_the_order_pools_were_met():
    rng = random.Random(5)
    states = {f"P{n}": [rng.randrange(1, 50), rng.uniform(0.1, 1e4)] for n in range(40)}
    sums = set()
    for _ in range(5):
        names = list(states)
        rng.shuffle(names)
        kept: dict = {}
        sums.add(token_liquidity(kept, {name: states[name] for name in names}, None))
        assert kept == states
    assert len(sums) == 1  # exactly rounded: no last-bit difference from the order of the sum


def test_an_older_state_never_replaces_a_newer_and_a_new_pool_past_the_most_is_not_counted():
    kept = {f"P{n}": [5, 1.0] for n in range(MAX_TICK_POOLS)}
    total = token_liquidity(kept, {"P0": [4, 100.0], "New": [5, 100.0]}, 9)
    assert total == MAX_TICK_POOLS and "New" not in kept and kept["P0"] == [5, 1.0]
    assert token_liquidity(kept, {"P0": [9, 100.0]}, 9) == MAX_TICK_POOLS - 1 + 100


def block_event(slot: int, sol_by_pool: dict[str, float]):
    """A chain block at `slot` (two seconds a slot) with one state of each pool of MINT."""
    states = [{"signature": f"s{slot}{pool}", "program": "raydium_v4", "pool": pool,
               "base_mint": MINT, "quote_mint": WSOL, "base_reserve": 10**15,
               "quote_reserve": int(sol * 10**9), "base_decimals": 6, "quote_decimals": 9,
               "price": 1e-6 * (1 + 0.001 * (slot % 3))} for pool, sol in sol_by_pool.items()]
    time = (START + timedelta(seconds=2 * slot)).isoformat().replace("+00:00", "Z")
    return new_event(CHAIN_BLOCK, "/test/solana", {
        "slot": slot, "block_time": time, "transfers": [], "liquidity": [], "launches": [],
        "swaps": [], "pool_states": states})


def blocks() -> list:
    """A token with a 400 SOL pool and a busy 20 SOL one; the big one pulled at PULL_SLOT."""
    events = [block_event(100, {"Big": 200.0, "Small": 10.0})]
    for slot in range(101, 161):
        pools = {"Small": 10.0 + (slot % 5) * 0.1}
        if slot == PULL_SLOT:
            pools["Big"] = 1.0
        events.append(block_event(slot, pools))
    return events


def market_ticks(ctx: Context, client, events: list) -> list[dict]:
    """The ticks market-aggregator replies for `events`, handled in the order given."""
    client.delete(MARKET_POOLS.format(token=MINT))
    ticks = []
    for event in events:
        (reply,) = market_handle(event, ctx)
        assert reply.type == MARKET_TICK and data_problems(reply) == []
        ticks += reply.data["ticks"]
    return ticks


def analysed(ticks: list[dict]) -> tuple[dict, list[dict]]:
    """temporal-analysis's state and anomalies over the ticks in time order (as its reorder
    buffer releases them), its state carried through JSON every ten ticks."""
    (series,) = group_ticks(ticks).values()
    state, found = None, []
    for start in range(0, len(series), 10):
        state, anomalies = analyse_token(MINT, state, series[start:start + 10])
        state = json.loads(json.dumps(state))
        found += anomalies
    return state, found


def test_liquidity_and_its_alerts_do_not_depend_on_the_order_blocks_were_aggregated(
        kades_settings, redis_conn):
    """Handled in reverse, every block before the pull was told the big pool's pulled state
    (the newest kept): the pull read as there from the start and was never alerted."""
    ctx = Context("market-aggregator", settings=kades_settings)
    events = blocks()
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    runs = {name: analysed(market_ticks(ctx, redis_conn, order))
            for name, order in (("in order", events), ("reversed", events[::-1]),
                                ("shuffled", shuffled))}
    state, anomalies = runs["in order"]
    pull_time = (START + timedelta(seconds=2 * PULL_SLOT)).isoformat().replace("+00:00", "Z")
    drops = [a for a in anomalies if a["anomaly_type"] == "liquidity_drop"]
    print(f"\nin order: {len(anomalies)} anomalies, liquidity drops at "
          f"{[a['time'] for a in drops]}")
    assert [a["time"] for a in drops] == [pull_time]
    assert state["pools"] == {"Big": [PULL_SLOT, 2.0], "Small": [160, 20.0]}
    for name in ("reversed", "shuffled"):
        assert runs[name] == (state, anomalies), name


def test_a_state_from_before_pools_were_kept_carries_on_from_the_ticks_pools():
    """A token whose state has no pools (written before them) takes its other pools from the
    tick, as market-aggregator knew them: no false drop from counting this block's alone."""
    monitor = monitor_of(None)
    assert monitor.pools == {}
    tick = {"token": MINT, "time": "2026-01-15T12:00:00Z", "price": 1e-6, "slot": 10,
            "liquidity": 420.0, "pools": {"Big": [7, 400.0], "Small": [10, 20.0]}}
    state, _ = analyse_token(MINT, None, [(START.timestamp(), tick)])
    assert state["pools"] == tick["pools"] and state["liquidity_seen"] == pytest.approx(420.0)
    assert monitor_of(json.loads(json.dumps(state))).pools == tick["pools"]


def test_a_state_from_before_pools_were_kept_meets_no_false_pull_when_blocks_come_late(
        kades_settings, redis_conn):
    """Deployed over a state without pools (its last liquidity the old sum, 420): the block
    after (the big pool's new state) aggregated before the one before it. When ticks named a
    later slot's state, temporal-analysis left it out and counted the small pool alone: a
    liquidity_drop at score 1 on every token with two pools, once, at deploy time."""
    ctx = Context("market-aggregator", settings=kades_settings)
    first = market_ticks(ctx, redis_conn, [block_event(100, {"Big": 200.0, "Small": 10.0})])
    state, _ = analysed(first)
    del state["pools"]  # as written before pools were kept
    late = []
    for event in (block_event(102, {"Big": 201.0}), block_event(101, {"Small": 10.5})):
        (reply,) = market_handle(event, ctx)
        late += reply.data["ticks"]
    assert late[1]["pools"] == {"Big": [100, 400.0], "Small": [101, 21.0]}
    series = sorted(group_ticks(late)[next(iter(group_ticks(late)))], key=lambda p: p[0])
    state, anomalies = analyse_token(MINT, state, series)
    assert anomalies == [] and state["liquidity_seen"] == pytest.approx(423.0)


def test_a_tick_naming_no_pool_keeps_its_own_liquidity():
    """`pools: {}` (the schema allows it) summed no pool to 0: a liquidity_drop at score 1 on
    a series whose ticks all said 500, and 0 kept as the liquidity seen."""
    series = [(60.0 * n, {"token": MINT, "time": (START + timedelta(minutes=n)).isoformat(),
                          "price": 1.0 + 0.001 * (n % 7), "volume": 10.0, "liquidity": 500.0})
              for n in range(300)]
    last = {**series[-1][1], "time": (START + timedelta(minutes=300)).isoformat(), "pools": {}}
    state, anomalies = analyse_token(MINT, None, series + [(60.0 * 300, last)])
    assert [a for a in anomalies if a["anomaly_type"] == "liquidity_drop"] == []
    assert monitor_of(state).liquidity_seen == 500.0
