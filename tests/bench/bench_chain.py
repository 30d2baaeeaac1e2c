"""`make bench`, chain section: chain-analysis and whale-detection records/s on 2,000- and
20,000-record blocks, in-process and through HTTP, beside a no-op baseline of the same run.

In-process, the baseline is what every function pays anyway (the data schema check); the
analysis is timed with its state in Redis (one optimistic round trip per block) and, to
separate Redis from the work itself, with the state in memory. Through HTTP the baseline is
the no-op function on the same server. Figures are printed, never asserted.
"""
from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, Server  # noqa: E402  (tests/bench/run.py helpers)

from kades import devservices  # noqa: E402
from kades.chain import function as chain_function  # noqa: E402
from kades.chain.memory import MemoryStates  # noqa: E402
from kades.chain.thresholds import ChainThresholds  # noqa: E402
from kades.clients import redis_client  # noqa: E402
from kades.events.catalogue import CHAIN_BLOCK, data_problems, new_event  # noqa: E402
from kades.events.envelope import to_binary  # noqa: E402
from kades.runtime.state import StateStore  # noqa: E402
from kades.settings import Settings  # noqa: E402
from kades.whales import function as whale_function  # noqa: E402

WSOL = "So11111111111111111111111111111111111111112"
NOOP_CHAIN = ROOT / "tests/chain/functions/noop_chain/main.py"  # the no-op, consuming chain blocks
BLOCKS = {2_000: 8, 20_000: 3}  # records per block -> blocks timed


def make_block(run: str, index: int, records: int, rng: random.Random) -> dict:
    """A block of `records` records (45% swaps, 45% their pool states, 10% transfers) over 200 tokens."""
    swaps, states, transfers = [], [], []
    for n in range(int(records * 0.45)):
        token, trader = f"Tok{run}{n % 200:04d}", f"Wallet{rng.randrange(5000):05d}"
        side, signature = rng.choice(("buy", "sell")), f"sig{run}{index}x{n}"
        base, quote = rng.randrange(10**9, 10**12), rng.randrange(10**7, 10**9)
        swaps.append({"signature": signature, "trader": trader, "program": "bench", "pool": f"Pool{token}",
                      "mint_in": WSOL if side == "buy" else token, "mint_out": token if side == "buy" else WSOL,
                      "amount_in": quote if side == "buy" else base, "amount_out": base if side == "buy" else quote,
                      "decimals_in": 9 if side == "buy" else 6, "decimals_out": 6 if side == "buy" else 9,
                      "base_mint": token, "quote_mint": WSOL, "side": side, "base_amount": base,
                      "quote_amount": quote, "price": (quote / 1e9) / (base / 1e6), "tx_index": n})
        states.append({"signature": signature, "program": "bench", "pool": f"Pool{token}", "base_mint": token,
                       "quote_mint": WSOL, "base_reserve": 8 * 10**14 + rng.randrange(10**12),
                       "quote_reserve": 60 * 10**9 + rng.randrange(10**9), "base_decimals": 6,
                       "quote_decimals": 9, "price": 7.5e-8, "tx_index": n})
    for n in range(records - 2 * len(swaps)):
        transfers.append({"signature": f"tsig{run}{index}x{n}", "mint": f"Tok{run}{n % 200:04d}",
                          "source": f"Wallet{rng.randrange(5000):05d}", "destination": f"Wallet{rng.randrange(5000):05d}",
                          "amount": rng.randrange(10**6, 10**10), "decimals": 6})
    return {"slot": 300_000_000 + index, "block_time": f"2024-06-01T00:{index // 60 % 60:02d}:{index % 60:02d}Z",
            "transfers": transfers, "swaps": swaps, "liquidity": [], "pool_states": states, "launches": []}


def timed(blocks: list[dict], work) -> float:
    """records per second of `work(block)` over the blocks."""
    began = time.perf_counter()
    for block in blocks:
        work(block)
    return sum(len(b["swaps"]) + len(b["pool_states"]) + len(b["transfers"]) for b in blocks) / (time.perf_counter() - began)


def in_process(run: str, client) -> list[tuple[str, float, float]]:
    rows, t = [], ChainThresholds()
    for size, count in BLOCKS.items():
        rng = random.Random(size)
        blocks = [make_block(f"{run}{size}", i, size, rng) for i in range(count)]
        events = [new_event(CHAIN_BLOCK, "/bench", b) for b in blocks]
        baseline = timed(blocks, lambda b, it=iter(events): data_problems(next(it)))
        for name, module in (("chain-analysis", chain_function), ("whale-detection", whale_function)):
            memory = MemoryStates()
            in_memory = timed(blocks, lambda b: module.analyse_block(None, b, 1.7e9, t, memory))
            fresh = [make_block(f"{run}{size}r{name}", i, size, random.Random(size)) for i in range(count)]
            states = StateStore(ttl_s=module.STATE_TTL_S)  # as the function's Context holds it
            with_redis = timed(fresh, lambda b: module.analyse_block(client, b, 1.7e9, t, states))
            rows.append((f"{name}, {size:,} records", in_memory, with_redis, baseline))
    return rows


def over_http(run: str, env: dict) -> list[tuple[str, float]]:
    rows = []
    for name, source in (("no-op (baseline)", NOOP_CHAIN), ("chain-analysis", ROOT / "functions/chain-analysis/main.py"),
                         ("whale-detection", ROOT / "functions/whale-detection/main.py")):
        server = Server(source, dict(env, K_SERVICE=name.split(" ")[0]))
        try:
            server.first_answer_s(lambda url: httpx.get(url + "/health", timeout=5))
            for size, count in BLOCKS.items():
                rng = random.Random(size)
                events = [new_event(CHAIN_BLOCK, "/bench", make_block(f"{run}{size}h{name[:5]}", i, size, rng))
                          for i in range(count)]
                began = time.perf_counter()
                with httpx.Client(timeout=120) as http:
                    for event in events:
                        headers, body = to_binary(event)
                        response = http.post(server.url, headers=headers, content=body)
                        if response.status_code >= 300:
                            raise RuntimeError(f"{name} answered {response.status_code}: {response.text[:200]}")
                rows.append((f"{name}, {size:,} records", size * count / (time.perf_counter() - began)))
        finally:
            server.stop()
    return rows


def main() -> int:
    config = Settings.from_env()
    redis_url = config.redis_url.rsplit("/", 1)[0] + "/14"
    run = str(int(time.time()))  # fresh token names: no flush, other runs' keys stay apart
    client = redis_client(Settings(redis_url=redis_url))
    print("\nchain analysis in-process, one core (records/s; ratio = schema-check-only baseline / analysis)")
    print(f"{'what':<36}{'in memory':>12}{'Redis state':>13}{'baseline':>12}{'cost ratio':>12}")
    for label, memory, redis_rate, baseline in in_process(run, client):
        print(f"{label:<36}{memory:>12,.0f}{redis_rate:>13,.0f}{baseline:>12,.0f}{baseline / redis_rate:>11.1f}x")
    env = dict(os.environ, KADES_REDIS_URL=redis_url, KADES_LOG_LEVEL="WARNING",
               KADES_MAX_EVENT_BYTES=str(64 * 1024 * 1024))  # a 20,000-record block is ~9 MB of JSON
    rows = over_http(run, env)
    base = {label.split(", ")[1]: rate for label, rate in rows if label.startswith("no-op")}
    print("\nthrough HTTP (functions-framework, one client; ratio = no-op records/s / records/s)")
    for label, rate in rows:
        print(f"{label:<36}{rate:>12,.0f}{base[label.split(', ')[1]] / rate:>11.2f}x")
    return 0


if __name__ == "__main__":
    with devservices.services_for(Settings.from_env()):  # stops what it had to start
        sys.exit(main())
