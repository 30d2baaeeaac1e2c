"""`make bench`, chain section: chain-analysis and whale-detection records/s on 2,000- and
20,000-record blocks, in-process and through HTTP, beside a no-op baseline of the same run,
then how chain-analysis's cost per event grows (docs/performance.md, "Chain analysis and
growth").

In-process, the baseline is what every function pays anyway (the data schema check); the
analysis is timed with its state in Redis as the deployed function keeps it (the store of its
Context, one optimistic round trip per block: chain-analysis's kades.chain.store) and, to
separate Redis from the work itself, with the state in memory (chain-analysis's documents
through kades.chain.codec, which keeps their rows decoded as its store does); each figure is
the median of REPEATS runs on fresh tokens. Through HTTP the baseline is the no-op function on
the same server.

Growth, chain-analysis with its state in Redis, the median cost of an event:
- block size: the 2,000- and 20,000-record blocks above, per block and per record;
- tracked tokens: 10, 1,000 or 100,000 tokens with state in Redis (written for the run, deleted
  after it), events of 50 records over 10 of them drawn at random, 400 s apart (the hour's
  window then holds about nine events' trades: the 10 tokens of the first row, in every
  event, do not pile up more history than the others);
- history: a token whose state holds 100, 1,000 or 5,000 trades (the most a token keeps),
  events of 20 records of it; the same for whale-detection, whose detectors go over its
  window's trades and whose document holds each trader's last sizes;
- fundings: the slot log of SOL fundings (kades.chain.slotlog) holding none or 20,000 funded
  wallets (MAX_FUNDED), events of 20 records, ten mints a slot as the Solana source sends
  them, through chain-analysis and whale-detection;
- the deployed reorder buffer (75 slots): 2,000-record blocks slot after slot, each waiting
  75 slots before it is analysed, timed once the buffer is full, beside the same slots fed
  in order; and the same blocks with the links a source following the chain sends
  (kades.solana.parts), through the same buffer: each released at once.
Figures are printed, never asserted.
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, Server  # noqa: E402  (tests/bench/run.py helpers)

from kades.dev import services as devservices  # noqa: E402
from kades.chain import function as chain_function  # noqa: E402
from kades.chain.codec import TokenCodec  # noqa: E402
from kades.chain.ordering import slot_buffer  # noqa: E402
from kades.chain.memory import MemoryStates  # noqa: E402
from kades.chain.slotlog import SlotLog  # noqa: E402
from kades.chain.thresholds import ChainThresholds  # noqa: E402
from kades.clients import redis_client  # noqa: E402
from kades.events.catalogue import CHAIN_BLOCK, data_problems, new_event  # noqa: E402
from kades.events.envelope import to_binary  # noqa: E402
from kades.keys import (CHAIN_FUNDING_LOG, CHAIN_FUNDING_SLOTS, CHAIN_POOL, CHAIN_TOKEN,  # noqa: E402
                        CHAIN_WAITING, CHAIN_WATERMARK, CHAIN_WATERMARK_AHEAD, WHALES_FUNDING_LOG,
                        WHALES_FUNDING_SLOTS, WHALES_TOKEN)
from kades.runtime.collector import tune_garbage_collector  # noqa: E402
from kades.solana.parts import SlotLinks  # noqa: E402
from kades.settings import Settings  # noqa: E402
from kades.whales import function as whale_function  # noqa: E402

WSOL = "So11111111111111111111111111111111111111112"
NOOP_CHAIN = ROOT / "tests/chain/functions/noop_chain/main.py"  # the no-op, consuming chain blocks
BLOCKS = {2_000: 8, 20_000: 3}  # records per block -> blocks timed
REPEATS = 3                      # runs per in-process figure (the median is printed)
GOAL = 100_000                   # chain-analysis, 2,000-record block, Redis state (issue 18)
TRACKED = (10, 1_000, 100_000)   # tokens with state in Redis
HISTORY = (100, 1_000, 5_000)    # trades a token's state holds (5,000: MAX_TRADES)
FUNDED = (0, 20_000)             # wallets the slot log's fundings hold (20,000: MAX_FUNDED)
EVENTS = 40                      # events timed per growth point (after WARM_UP untimed ones)
BUFFERED_TIMED = 10              # blocks timed once the deployed reorder buffer is full
WARM_UP = 10


def make_block(run: str, index: int, records: int, rng: random.Random,
               tokens: list[str] | None = None) -> dict:
    """A block of `records` records (45% swaps, 45% their pool states, 10% transfers) over
    `tokens` (200 of the run's own by default), each pool named after its token."""
    tokens = tokens or [f"Tok{run}{k:04d}" for k in range(200)]
    swaps, states, transfers = [], [], []
    for n in range(int(records * 0.45)):
        token, trader = tokens[n % len(tokens)], f"Wallet{rng.randrange(5000):05d}"
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
        transfers.append({"signature": f"tsig{run}{index}x{n}", "mint": tokens[n % len(tokens)],
                          "source": f"Wallet{rng.randrange(5000):05d}", "destination": f"Wallet{rng.randrange(5000):05d}",
                          "amount": rng.randrange(10**6, 10**10), "decimals": 6})
    return {"slot": 300_000_000 + index, "block_time": f"2024-06-01T00:{index // 60 % 60:02d}:{index % 60:02d}Z",
            "transfers": transfers, "swaps": swaps, "liquidity": [], "pool_states": states, "launches": []}


def records_of(block: dict) -> int:
    return len(block["swaps"]) + len(block["pool_states"]) + len(block["transfers"])


def timed(blocks: list[dict], work) -> float:
    """records per second of `work(block)` over the blocks."""
    began = time.perf_counter()
    for block in blocks:
        work(block)
    return sum(map(records_of, blocks)) / (time.perf_counter() - began)


def deployed(module) -> tuple[object, dict]:
    """(state store, keyword arguments of analyse_block) as the function's Context holds them."""
    local = module.start(None)
    return getattr(local, "states", local), ({"needs": local.needs} if hasattr(local, "needs") else {})


def in_process(run: str, client) -> list[tuple[str, float, float, float]]:
    """(what, in memory, Redis state, baseline) in records/s, each the median of REPEATS runs."""
    t, figures = ChainThresholds(), {}
    for rep in range(REPEATS):
        for size, count in BLOCKS.items():
            rng = random.Random(size)
            blocks = [make_block(f"{run}{size}x{rep}", i, size, rng) for i in range(count)]
            events = [new_event(CHAIN_BLOCK, "/bench", b) for b in blocks]
            baseline = timed(blocks, lambda b, it=iter(events): data_problems(next(it)))
            for name, module in (("chain-analysis", chain_function), ("whale-detection", whale_function)):
                memory = MemoryStates(TokenCodec())
                in_memory = timed(blocks, lambda b: module.analyse_block(None, b, 1.7e9, t, memory))
                fresh = [make_block(f"{run}{size}r{rep}{name}", i, size, random.Random(size)) for i in range(count)]
                store, kwargs = deployed(module)
                with_redis = timed(fresh, lambda b: module.analyse_block(client, b, 1.7e9, t, store, **kwargs))
                figures.setdefault(f"{name}, {size:,} records", []).append((in_memory, with_redis, baseline))
    return [(label, *(statistics.median(run[k] for run in runs) for k in range(3)))
            for label, runs in figures.items()]


def event_costs(client, blocks: list[dict], store, kwargs: dict, *, step_s: float = 0.0,
                warm_up: int = WARM_UP, module=chain_function) -> list[float]:
    """Seconds of `module`'s analysis (chain-analysis's by default) per block, `step_s` apart,
    the first `warm_up` blocks untimed."""
    t, costs = ChainThresholds(), []
    for n, block in enumerate(blocks):
        began = time.perf_counter()
        module.analyse_block(client, block, 1.7e9 + n * step_s, t, store, **kwargs)
        costs.append(time.perf_counter() - began)
    return costs[warm_up:]


def put_documents(client, documents: dict[str, bytes], ttl_s: int = 900) -> None:
    pipe = client.pipeline(transaction=False)
    for n, (key, raw) in enumerate(documents.items(), 1):
        pipe.set(key, raw, ex=ttl_s)
        if n % 2000 == 0:
            pipe.execute()
    pipe.execute()


def tracked_tokens(run: str, client) -> list[tuple[int, float]]:
    """(tokens tracked, median seconds per event) for events of 50 records over 10 tokens
    drawn from those tracked, each with a token and a pool document in Redis (a token's
    first block's, copied; the token's written through the function's store, as it keeps
    them), written for the run and deleted after it."""
    template = MemoryStates(TokenCodec())
    chain_function.analyse_block(None, make_block(f"{run}t", 0, 10, random.Random(1), ["T"]), 1.7e9,
                                 ChainThresholds(), template)
    [token_doc] = template.current(None, [CHAIN_TOKEN.format(token="T")])
    pool_doc = template.documents[CHAIN_POOL.format(pool="PoolT")].encode()
    rows = []
    for count in TRACKED:
        tokens = [f"Trk{run}n{count}x{k:06d}" for k in range(count)]
        token_keys = [CHAIN_TOKEN.format(token=token) for token in tokens]
        documents = {CHAIN_POOL.format(pool=f"Pool{token}"): pool_doc for token in tokens}
        keys = token_keys + list(documents)
        try:
            put_documents(client, documents)
            writer, _ = deployed(chain_function)
            for at in range(0, count, 2000):
                batch = token_keys[at:at + 2000]
                writer.update(client, batch, lambda states: ([dict(token_doc) for _ in states], None))
            store, kwargs = deployed(chain_function)
            for at in range(0, len(keys), 2000):  # a process that has served them all, as far as
                store.current(client, keys[at:at + 2000])  # its cache holds them
            rng = random.Random(count)
            blocks = [make_block(f"{run}n{count}", 1 + i, 50, rng, rng.sample(tokens, min(10, count)))
                      for i in range(WARM_UP + EVENTS)]
            rows.append((count, statistics.median(event_costs(client, blocks, store, kwargs, step_s=400.0))))
        finally:
            for at in range(0, len(keys), 2000):
                client.unlink(*keys[at:at + 2000])
    compact_append_only_file(client)
    return rows


def compact_append_only_file(client, timeout_s: float = 120.0) -> None:
    """Have Redis rewrite its append-only file now, and wait until it has. The documents
    written and deleted above stay in it until Redis's own rewrite, at twice the file's last
    size: a few runs left 2.4 GB, and a Redis reads its whole file at every start (15 s for
    that one). The rewrite is a forked process on the same two cores as the rows timed next
    (history): they wait for it (about a second on the development Redis)."""
    if not client.info("persistence").get("aof_enabled"):
        return
    try:
        client.bgrewriteaof()
    except redis.ResponseError as error:  # a rewrite already under way does it too
        print(f"(append-only file not rewritten now: {error})")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        persistence = client.info("persistence")
        if not (persistence.get("aof_rewrite_in_progress") or persistence.get("aof_rewrite_scheduled")):
            return
        time.sleep(0.1)
    print(f"(the append-only file's rewrite still runs after {timeout_s:.0f} s: rows after it may read high)")


def forget_run(client, run: str) -> None:
    """Delete what the run wrote: every key naming its tokens and pools, and their members of
    the waiting sets. Left in place they held 350 MB of the development Redis, which `make
    run` shares, until the next `make bench`."""
    keys = list(client.scan_iter(match=f"*{run}*", count=2000))
    for at in range(0, len(keys), 1000):
        client.unlink(*keys[at:at + 1000])
    for key in client.scan_iter(match="*:waiting", count=2000):
        if client.type(key) == b"zset":
            members = [m for m, _ in client.zscan_iter(key, match=f"*{run}*", count=2000)]
            for at in range(0, len(members), 1000):
                client.zrem(key, *members[at:at + 1000])


def stored_bytes(client, key: str) -> int:
    """The bytes a key's value holds: a string's, or a hash's values' (kades.chain.store)."""
    if client.type(key) == b"hash":
        return sum(map(len, client.hvals(key)))
    return client.strlen(key)


def history(run: str, client, module=chain_function, key: str = CHAIN_TOKEN
            ) -> list[tuple[int, int, float]]:
    """(trades held, document bytes, median seconds per event) for events of 20 records of one
    token whose state already holds that many trades (filled by one block of its own), through
    `module`'s analysis (chain-analysis's or whale-detection's; `key`: its token keys)."""
    rows = []
    for trades in HISTORY:
        token, rng = f"His{run}{module.FUNCTION.name}h{trades}", random.Random(trades)
        store, kwargs = deployed(module)
        fill = make_block(f"{run}h{trades}", 0, -(-trades * 100 // 45), rng, [token])
        blocks = [fill] + [make_block(f"{run}h{trades}", 1 + i, 20, rng, [token])
                           for i in range(WARM_UP - 1 + EVENTS)]  # the fill block is untimed too
        costs = event_costs(client, blocks, store, kwargs, module=module)
        size = stored_bytes(client, key.format(token=token))
        rows.append((len(fill["swaps"]), size, statistics.median(costs)))
    return rows


def fundings_held(run: str, client, module=chain_function) -> list[tuple[int, float]]:
    """(wallets the slot log's fundings hold, median seconds per event) for events of 20
    records, ten mints a slot, each slot with a fan-out of its own (kades.chain.slotlog),
    through `module`'s analysis in a process that has read the log (its first events untimed).
    The log is filled for the run with slots of 200 wallets each, then what the run appended
    is deleted from it."""
    keys = ((CHAIN_FUNDING_LOG, CHAIN_FUNDING_SLOTS) if module is chain_function
            else (WHALES_FUNDING_LOG, WHALES_FUNDING_SLOTS))
    rows = []
    for wallets in FUNDED:
        last = client.xrevrange(keys[0], count=1)
        since = last[0][0].decode() if last else "0-0"
        slots = [-(10**9) - wallets - n for n in range(wallets // 200)]  # slots of their own
        try:
            writer = SlotLog(*keys)
            for n, slot in enumerate(slots):
                writer.sync(client, {"slot": slot, "time_s": 1.7e9 + 0.4 * n, "fundings": [
                    [f"Fund{run}{n % 50}", f"W{run}{wallets}x{n}x{k}"] for k in range(200)]}, ttl_s=3600.0)
            store, kwargs = deployed(module)
            blocks = []
            for n in range(WARM_UP + EVENTS):
                block = make_block(f"{run}f{wallets}", n // 10, 20, random.Random(n),
                                   [f"Fnd{run}{module.FUNCTION.name}{wallets}m{n % 10}"])
                block["context"] = {"launches": [], "fundings": [
                    [f"Seed{run}{n // 10}", f"S{run}{n // 10}x{k}"] for k in range(4)]}
                blocks.append(block)
            rows.append((wallets, statistics.median(event_costs(client, blocks, store, kwargs, step_s=0.04,
                                                                module=module))))
        finally:
            added = [entry_id for entry_id, _ in client.xrange(keys[0], f"({since}", "+")]
            for at in range(0, len(added), 2000):
                client.xdel(keys[0], *added[at:at + 2000])
            client.zremrangebyscore(keys[1], min(slots, default=0), max(slots, default=0))
            client.zremrangebyscore(keys[1], 300_000_000, 300_000_000 + WARM_UP + EVENTS)
    return rows


def with_links(blocks: list[dict]) -> list[dict]:
    """The blocks as a source following the chain sends them: with its links."""
    links = SlotLinks(blocks[0]["slot"] - 1000, previous=blocks[0]["slot"] - 1)
    for block in blocks:
        block.update(links.whole_block(block))
        links.sent(block["slot"], block["previous_mint_slots"])
    return blocks


def linked(run: str, client) -> tuple[float, int, int]:
    """(ms a block, blocks after which a slot of theirs still waited, blocks): 2,000-record
    blocks with the source's links through the deployed buffer, the watermark's keys fresh.
    Median of BUFFERED_TIMED blocks after WARM_UP."""
    client.delete(CHAIN_WATERMARK, CHAIN_WATERMARK_AHEAD)
    blocks = with_links([make_block(f"{run}k", i, 2_000, random.Random(75))
                         for i in range(WARM_UP + BUFFERED_TIMED)])
    store, kwargs = deployed(chain_function)
    t, costs, waited = ChainThresholds(), [], 0
    for n, block in enumerate(blocks):
        began = time.perf_counter()
        chain_function.analyse_block(client, block, 1.7e9 + 0.4 * n, t, store,
                                     buffer=slot_buffer(Settings()), now_s=1.7e9 + 0.4 * n, **kwargs)
        costs.append(time.perf_counter() - began)
        pipe = client.pipeline(transaction=False)
        for mint in block["previous_mint_slots"]:
            pipe.zscore(CHAIN_WAITING, mint)
        waited += any(score is not None for score in pipe.execute())
    return statistics.median(costs[WARM_UP:]) * 1e3, waited, len(blocks)


def buffered(run: str, client) -> tuple[float, float, float]:
    """(ms a block once the deployed reorder buffer is full, ms for the same slots in order,
    the in-order run's first block): 2,000-record blocks over 200 tokens, slot after slot,
    through the buffer the function runs with (KADES_REORDER_LATENESS_S: 75 slots), each
    block releasing the slot 75 before it; beside it the same slots fed in order, which
    analyse each at once (the in-process rows above). Medians of BUFFERED_TIMED blocks."""
    lateness = slot_buffer(Settings()).lateness_s
    rng, t = random.Random(75), ChainThresholds()
    blocks = [make_block(f"{run}b", i, 2_000, rng) for i in range(int(lateness) + BUFFERED_TIMED)]
    store, kwargs = deployed(chain_function)
    costs = []
    for n, block in enumerate(blocks):  # a slot each 0.4 s, as the chain makes them
        began = time.perf_counter()
        chain_function.analyse_block(client, block, 1.7e9 + 0.4 * n, t, store,
                                     buffer=slot_buffer(Settings()), now_s=1.7e9 + 0.4 * n, **kwargs)
        costs.append(time.perf_counter() - began)
    fresh = [make_block(f"{run}o", i, 2_000, random.Random(75)) for i in range(BUFFERED_TIMED)]
    store, kwargs = deployed(chain_function)
    in_order = event_costs(client, fresh, store, kwargs, step_s=0.4, warm_up=0)
    return (statistics.median(costs[-BUFFERED_TIMED:]) * 1e3, statistics.median(in_order) * 1e3,
            statistics.median(costs[:BUFFERED_TIMED]) * 1e3)


def print_growth(run: str, client, sizes: list[tuple[str, float]]) -> None:
    print("\nchain-analysis, cost per event with its state in Redis (medians; ratio to the first row)")
    print(f"{'block size':<36}{'ms/block':>12}{'us/record':>12}{'ratio':>9}")
    first = None
    for label, rate in sizes:
        size = int(label.split(", ")[1].split(" ")[0].replace(",", ""))
        first = first or size / rate
        print(f"{label.split(', ')[1]:<36}{size / rate * 1e3:>12.1f}{1e6 / rate:>12.1f}{size / rate / first:>8.1f}x")
    print(f"{'tokens tracked (events of 50 records over 10)':<48}{'ms/event':>12}{'ratio':>9}")
    rows = tracked_tokens(run, client)
    for count, cost in rows:
        print(f"{count:<48,}{cost * 1e3:>12.2f}{cost / rows[0][1]:>8.1f}x")
    print(f"{'trades in the token state (events of 20 records)':<48}{'doc KB':>8}{'ms/event':>12}{'ratio':>9}")
    rows = history(run, client)
    for trades, size, cost in rows:
        print(f"{trades:<48,}{size / 1024:>8.0f}{cost * 1e3:>12.2f}{cost / rows[0][2]:>8.1f}x")
    print(f"{'whale-detection, trades in its token state':<48}{'doc KB':>8}{'ms/event':>12}{'ratio':>9}")
    rows = history(run, client, whale_function, WHALES_TOKEN)
    for trades, size, cost in rows:
        print(f"{trades:<48,}{size / 1024:>8.0f}{cost * 1e3:>12.2f}{cost / rows[0][2]:>8.1f}x")
    for name, module in (("chain-analysis", chain_function), ("whale-detection", whale_function)):
        print(f"{name + ', wallets the slot log funded':<48}{'':>8}{'ms/event':>12}{'ratio':>9}"
              f"   (events of 20 records, 10 mints a slot)")
        rows = fundings_held(run, client, module)
        for wallets, cost in rows:
            print(f"{wallets:<48,}{'':>8}{cost * 1e3:>12.2f}{cost / rows[0][1]:>8.1f}x")
    full, in_order, filling = buffered(run, client)
    print(f"{'through the deployed reorder buffer (75 slots)':<48}{'':>8}{'ms/block':>12}{'ratio':>9}")
    print(f"{'the same slots in order (2,000 records)':<48}{'':>8}{in_order:>12.1f}{1:>8.1f}x")
    print(f"{'buffer filling (nothing released yet)':<48}{'':>8}{filling:>12.1f}{filling / in_order:>8.1f}x")
    print(f"{'buffer full, a slot released a block':<48}{'':>8}{full:>12.1f}{full / in_order:>8.1f}x"
          f"   ({2_000 / full * 1e3:,.0f} records/s)")
    cost, waited, blocks = linked(run, client)
    print(f"{'with the source links, each slot released at once':<48}{'':>8}{cost:>12.1f}{cost / in_order:>8.1f}x"
          f"   ({2_000 / cost * 1e3:,.0f} records/s; {blocks - waited}/{blocks} blocks left nothing waiting)")


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
    tune_garbage_collector()  # as a function's process is, once its module is imported
    client = redis_client(Settings(redis_url=redis_url))
    try:
        return run_sections(run, client, redis_url)
    finally:
        forget_run(client, run)


def run_sections(run: str, client, redis_url: str) -> int:
    print(f"\nchain analysis in-process, one core (records/s, median of {REPEATS} runs; ratio = "
          "schema-check-only baseline / analysis with Redis state)")
    print(f"{'what':<36}{'in memory':>12}{'Redis state':>13}{'baseline':>12}{'cost ratio':>12}")
    rows = in_process(run, client)
    for label, memory, redis_rate, baseline in rows:
        goal = f"  (goal >= {GOAL:,})" if label == "chain-analysis, 2,000 records" else ""
        print(f"{label:<36}{memory:>12,.0f}{redis_rate:>13,.0f}{baseline:>12,.0f}{baseline / redis_rate:>11.1f}x{goal}")
    print_growth(run, client, [(label, rate) for label, _, rate, _ in rows if label.startswith("chain")])
    if "--no-http" in sys.argv:
        return 0
    env = dict(os.environ, KADES_REDIS_URL=redis_url, KADES_LOG_LEVEL="WARNING",
               KADES_MAX_EVENT_BYTES=str(64 * 1024 * 1024))  # a 20,000-record block is ~9 MB of JSON
    rows = over_http(run, env)
    base = {label.split(", ")[1]: rate for label, rate in rows if label.startswith("no-op")}
    print("\nthrough HTTP (functions-framework, one client; ratio = no-op records/s / records/s; "
          f"{BLOCKS[2_000]} and {BLOCKS[20_000]} slots in a row, which the deployed reorder buffer "
          "holds: they are taken in and wait, none analysed yet; analysis through that buffer is "
          "the growth row above)")
    for label, rate in rows:
        print(f"{label:<36}{rate:>12,.0f}{base[label.split(', ')[1]] / rate:>11.2f}x")
    return 0


if __name__ == "__main__":
    with devservices.services_for(Settings.from_env()):  # stops what it had to start
        sys.exit(main())
