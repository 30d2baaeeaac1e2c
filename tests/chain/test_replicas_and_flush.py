"""chain-analysis as replicas on one Redis meet it: a process whose guess of what a mint needs
is out of date, and the stream-flush of many quiet mints while blocks keep coming."""
from __future__ import annotations

import pytest

from kades.chain import function as chain
from kades.events.catalogue import CHAIN_BLOCK, new_event
from kades.chain.slotlog import SlotLog
from kades.keys import CHAIN_FUNDING_LOG, CHAIN_FUNDING_SLOTS, CHAIN_WAITING
from kades.runtime import Context

WSOL = "So11111111111111111111111111111111111111112"
MINT = "MintNeeds1111111111111111111111111111111111"
S = 420_000_000


def block(slot: int, pool: str, mint: str = MINT, time: str = "2026-12-05T00:00:00Z") -> dict:
    swap = {"signature": f"s{slot}{mint}", "trader": "T", "pool": pool, "program": "raydium_v4",
            "mint_in": WSOL, "mint_out": mint, "amount_in": 10**9, "amount_out": 10**6,
            "decimals_in": 9, "decimals_out": 6, "base_mint": mint, "quote_mint": WSOL,
            "side": "buy", "base_amount": 10**6, "quote_amount": 10**9}
    state = {"signature": f"s{slot}{mint}", "pool": pool, "base_mint": mint, "quote_mint": WSOL,
             "base_reserve": 10**12, "quote_reserve": 10**11, "base_decimals": 6,
             "quote_decimals": 9}
    return {"slot": slot, "block_time": time, "transfers": [], "liquidity": [], "launches": [],
            "swaps": [swap], "pool_states": [state]}


@pytest.fixture
def replicas(kades_settings, redis_conn):
    """Two chain-analysis processes on one Redis: each its Context, its stores and guesses."""
    return [Context("chain-analysis", settings=kades_settings) for _ in range(2)]


def deliver(ctx: Context, data: dict, event_id: str):
    return chain.handle_block(new_event(CHAIN_BLOCK, "/kades/solana-source", data,
                                        event_id=event_id), ctx)


def test_a_replica_whose_guess_of_a_mints_needs_is_stale_still_analyses_it(replicas):
    """Another replica added waiting slots on five pools this one did not know: it learned
    one missing document a round, ran out of its 4 rounds, and answered 503 to every
    redelivery (its guess survived them); the other replica took the same event at once."""
    a, b = replicas
    deliver(a, block(S, "P0"), "first")
    for k in range(1, 6):
        deliver(b, block(S + k, f"P{k}", time="2026-12-05T00:00:01Z"), f"b{k}")
    late = block(S + 200, "P0", time="2026-12-05T00:01:20Z")
    deliver(a, late, "late")  # raised TemporaryFailure (a 503) before


def test_a_flush_of_many_quiet_mints_commits_while_blocks_record_fundings(
        kades_settings, redis_conn, monkeypatch):
    """The flush compared and set the shared fundings document, which every block with a
    SOL fan-out rewrote (about every slot): a flush longer than a slot lost every attempt,
    each later ping was larger, and quiet mints' last slots (a pull, often) were never
    analysed. The fundings are a log beside the states now (kades.chain.slotlog), which no
    commit compares, and a ping takes FLUSH_BATCH mints."""
    import dataclasses
    from kades.chain import reply
    from kades.events.catalogue import PING
    blocks, flusher = (Context("chain-analysis", settings=dataclasses.replace(
        kades_settings, reorder_idle_s=idle)) for idle in (3600.0, 0.0))
    mints = [f"Quiet{n:05d}" + "1" * 30 for n in range(12)]
    for n, mint in enumerate(mints):
        deliver(blocks, block(S + n, f"Pool{n}", mint=mint), f"q{n}")
    assert redis_conn.zcard(CHAIN_WAITING) == len(mints)  # each mint's slot waits
    monkeypatch.setattr(reply, "FLUSH_BATCH", 10, raising=False)
    compute, written = chain._Compute.__call__, [0]

    def meanwhile(self, docs):  # another replica records a block's fundings at every attempt
        written[0] += 1
        SlotLog(CHAIN_FUNDING_LOG, CHAIN_FUNDING_SLOTS).sync(redis_conn, {
            "slot": S + 1000 + written[0], "time_s": 1.7e9 + written[0],
            "fundings": [["Funder", f"w{written[0]}x{k}"] for k in range(3)]}, ttl_s=3600.0)
        return compute(self, docs)
    monkeypatch.setattr(chain._Compute, "__call__", meanwhile)
    ping = new_event(PING, "/apis/v1/namespaces/kades/pingsources/stream-flush",
                     {"job": "flush"}, event_id="flush-1")
    chain.handle_block(ping, flusher)  # raised TemporaryFailure (every attempt lost) before
    assert redis_conn.zcard(CHAIN_WAITING) == len(mints) - 10  # a batch a ping
    assert redis_conn.xlen(CHAIN_FUNDING_LOG) == written[0]  # the fundings recorded meanwhile
