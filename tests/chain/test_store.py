"""kades.chain.store: token documents in parts give chain-analysis the same documents and
results plain JSON strings did, write only what changed, and keep the compare-and-set's
guarantees: concurrent replicas both count, a retry gets its first attempt's result, a stale
cache is caught, a string written before the layout is read and replaced, on one Redis and
on a Redis Cluster."""
from __future__ import annotations

import json
import pickle
import random
import threading
import time

import pytest

from kades import clients
from kades.chain import function as chain_function
from kades.chain.codec import _text
from kades.chain.memory import MemoryStates
from kades.chain.rows import Trade
from kades.chain import store as chain_store
from kades.chain.ordering import WaitingSlot
from kades.chain.store import TokenStore
from kades.chain.thresholds import ChainThresholds
from kades.keys import CHAIN_POOL, CHAIN_TOKEN, CHAIN_WAITING, WHALES_TOKEN, outbox_key
from kades.runtime.reorder import ReorderBuffer
from kades.whales import function as whale_function

KEY = CHAIN_TOKEN.format(token="M")
OTHER = CHAIN_POOL.format(pool="P")  # a key of another kind: a JSON string
WSOL = "So11111111111111111111111111111111111111112"


def blocks(count: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    return [{"slot": 1000 + i, "block_time": "2024-06-01T00:00:00Z", "liquidity": [], "launches": [],
             "swaps": [{"signature": f"s{i}x{k}", "trader": f"W{rng.randrange(9)}", "program": "p",
                        "pool": "PoolM", "base_mint": "M", "quote_mint": WSOL,
                        "side": rng.choice(("buy", "sell")), "base_amount": rng.randrange(1, 10**9),
                        "quote_amount": rng.randrange(1, 10**9), "tx_index": k} for k in range(6)],
             "pool_states": [], "transfers": [{"signature": f"t{i}", "mint": "M", "source": "W1",
                                               "destination": f"W{rng.randrange(12)}", "amount": 5,
                                               "decimals": 6}]}
            for i in range(count)]


def doc(trades: int, *, slot: int = 1, holders: dict | None = None) -> dict:
    return {"last_slot": slot, "trades": [Trade(float(k), f"W{k}", 1, k, 2 * k, f"s{k}", k) for k in range(trades)],
            "edges": [], "holders": holders if holders is not None else {f"W{k}": k for k in range(trades)},
            "early_buys": [], "first_trade": None, "launch": None, "alerted": {},
            "reorder": {"pending": [], "max_seen": None}}


def test_chain_analysis_gives_the_same_anomalies_and_documents_as_json_strings(redis_conn):
    memory, t = MemoryStates(), ChainThresholds()
    local = chain_function.start(None)
    assert isinstance(local.states, TokenStore)
    for block in blocks(14):
        expected = chain_function.analyse_block(None, block, 1.7e9, t, memory)
        assert chain_function.analyse_block(redis_conn, block, 1.7e9, t, local.states,
                                             needs=local.needs) == expected
    assert redis_conn.type(KEY) == b"hash"
    # read back from Redis by a process that never saw it: the same bytes JSON would hold
    for key in memory.documents:
        assert _text(TokenStore(ttl_s=60).current(redis_conn, [key])[0]) == memory.documents[key], key


def script_arguments(client, work) -> list:
    """The arguments of each script `work()` ran on `client`."""
    calls, original = [], client.register_script

    def spying(source):
        script = original(source)
        return lambda keys, args: calls.append(args) or script(keys=keys, args=args)

    client.register_script = spying
    try:
        work()
    finally:
        del client.register_script
    return calls


def test_slots_waiting_in_the_reorder_buffer_are_a_part_of_their_own(redis_conn):
    memory, t, local = MemoryStates(), ChainThresholds(), chain_function.start(None)
    buffer = ReorderBuffer(lateness_s=4, idle_s=1e9)  # four slots wait, then go one a block
    shuffled = blocks(16, seed=8)
    random.Random(2).shuffle(shuffled)
    for n, block in enumerate(shuffled):
        expected = chain_function.analyse_block(None, block, 1.7e9, t, memory, buffer=buffer, now_s=n)
        assert chain_function.analyse_block(redis_conn, block, 1.7e9, t, local.states, buffer=buffer,
                                             now_s=n, needs=local.needs) == expected
        assert _text(TokenStore(ttl_s=60).current(redis_conn, [KEY])[0]) == memory.documents[KEY]
    # the mint is listed as waiting in the same commit, scored when its oldest slot came
    oldest = min(entry[3] for entry in json.loads(memory.documents[KEY])["reorder"]["pending"])
    assert redis_conn.zrange(CHAIN_WAITING, 0, -1, withscores=True) == [(b"M", oldest)]
    pending = [f for f in redis_conn.hkeys(KEY) if f.startswith(b"reorder.pending:")]
    assert pending and b'"pending":null' in redis_conn.hget(KEY, "d")
    assert len(json.loads(memory.documents[KEY])["reorder"]["pending"]) == 4


def busy_blocks(count: int, mints: int, swaps: int) -> list[dict]:
    """Blocks in which every one of `mints` mints trades `swaps` times (among three wallets)."""
    rng = random.Random(5)

    def swap(i: int, m: int, k: int) -> dict:
        side, base, quote = rng.choice(("buy", "sell")), rng.randrange(1, 10**12), rng.randrange(1, 10**11)
        buy = side == "buy"
        return {"signature": f"b{i}m{m}s{k}", "trader": f"W{rng.randrange(3)}", "program": "p",
                "pool": f"Pool{m}", "base_mint": f"B{m}", "quote_mint": WSOL, "side": side,
                "mint_in": WSOL if buy else f"B{m}", "mint_out": f"B{m}" if buy else WSOL,
                "amount_in": quote if buy else base, "amount_out": base if buy else quote,
                "decimals_in": 9 if buy else 6, "decimals_out": 6 if buy else 9,
                "base_amount": base, "quote_amount": quote, "tx_index": m * swaps + k}
    def pool(m: int) -> dict:  # its pool, so that whale-detection has a supply to weigh against
        return {"signature": f"p{m}", "pool": f"Pool{m}", "base_mint": f"B{m}", "quote_mint": WSOL,
                "base_reserve": 10**13, "quote_reserve": 10**12, "base_decimals": 6,
                "quote_decimals": 9, "tx_index": 10**6 + m}
    def created(m: int) -> dict:  # in the first block: whale-detection saw the pool made, so
        return {"signature": f"c{m}", "program": "p", "pool": f"Pool{m}", "action": "create",  # its
                "provider": "Creator", "base_mint": f"B{m}", "quote_mint": WSOL,  # tokens stand for
                "base_decimals": 6, "quote_decimals": 9, "base_delta": 10**13,  # the supply
                "quote_delta": 10**12, "base_reserve_before": 0, "quote_reserve_before": 0,
                "base_reserve_after": 10**13, "quote_reserve_after": 10**12, "lp_mint": None,
                "lp_amount": None}
    return [{"slot": 5000 + i, "block_time": "2024-06-01T00:00:00Z", "launches": [],
             "liquidity": [created(m) for m in range(mints)] if i == 0 else [],
             "pool_states": [pool(m) for m in range(mints)], "transfers": [],
             "swaps": [swap(i, m, k) for m in range(mints) for k in range(swaps)]} for i in range(count)]


def test_a_waiting_slot_is_decoded_once_when_released_and_busy_tokens_stay_cached(redis_conn, monkeypatch):
    """A mint active in every slot holds the lateness's worth of waiting slots (75 deployed).
    The store keeps each as its text and decodes its payload only when the slot is released
    (every block decoded all of them before), and a process keeps its busy tokens' documents:
    with 8 MB it read and decoded every one of them from Redis at every block once their
    waiting slots outgrew that (1.4 s a 2,000-record block, docs/performance.md)."""
    decoded, reads = [], []
    monkeypatch.setattr(WaitingSlot, "decoded", lambda slot, original=WaitingSlot.decoded:
                        decoded.append(slot.text) or original(slot))
    monkeypatch.setattr(chain_store, "_from_fields", lambda fields, original=chain_store._from_fields:
                        reads.append(1) or original(fields))
    t, local = ChainThresholds(), chain_function.start(None)
    buffer, lateness = ReorderBuffer(lateness_s=75, idle_s=1e9), 75
    stream = busy_blocks(lateness + 10, mints=20, swaps=26)
    found = [chain_function.analyse_block(redis_conn, block, 1.7e9, t, local.states, buffer=buffer,
                                          now_s=n, needs=local.needs) for n, block in enumerate(stream)]
    # what it released, the slots an in-order feed analyses at once: the same anomalies
    memory = MemoryStates()
    expected = [chain_function.analyse_block(None, block, 1.7e9, t, memory) for block in stream[:-lateness]]
    assert [a for block in found for a in block] == [a for block in expected for a in block]
    assert any(expected)
    released = 20 * (len(stream) - lateness)
    assert len(decoded) == len(set(decoded)) == released, (len(decoded), released)  # each once
    assert reads == []  # every token this process wrote, it still had
    waiting = sum(len(value) for key in redis_conn.scan_iter(match=CHAIN_TOKEN.format(token="*"))
                  for field, value in redis_conn.hgetall(key).items() if field.startswith(b"reorder.pending"))
    assert waiting > 8 << 20  # more than the process kept before
    # read by a process that never saw them, the waiting slots are the payloads written
    again = TokenStore(ttl_s=60).current(redis_conn, [CHAIN_TOKEN.format(token="B7")])[0]
    assert [entry[2].decoded() for entry in again["reorder"]["pending"]] == [
        {**chain_function.mint_items(block, 1.7e9)["B7"][2], "time_s": 1.7e9} for block in stream[-lateness:]]


def test_whale_detection_keeps_its_tokens_in_parts_and_decodes_a_waiting_slot_once(redis_conn, monkeypatch):
    """whale-detection's token documents go through the same store: parts, a waiting slot
    decoded when released, the anomalies of the in-order feed (it wrote each whole, 75
    waiting slots and all, at every block before)."""
    decoded = []
    monkeypatch.setattr(WaitingSlot, "decoded", lambda slot, original=WaitingSlot.decoded:
                        decoded.append(slot.text) or original(slot))
    t, local, lateness = ChainThresholds(), whale_function.start(None), 20
    stream = busy_blocks(lateness + 15, mints=6, swaps=30)
    found = [whale_function.analyse_block(redis_conn, block, 1.7e9, t, local.states,
                                          buffer=ReorderBuffer(lateness_s=lateness, idle_s=1e9), now_s=n)
             for n, block in enumerate(stream)]
    memory = MemoryStates()
    expected = [whale_function.analyse_block(None, block, 1.7e9, t, memory) for block in stream[:-lateness]]
    assert [a for block in found for a in block] == [a for block in expected for a in block]
    assert any(expected)
    assert len(decoded) == 6 * (len(stream) - lateness)
    key = WHALES_TOKEN.format(token="B3")
    assert redis_conn.type(key) == b"hash" and any(f.startswith(b"sends:") or f.startswith(b"trades:")
                                                   for f in redis_conn.hkeys(key))
    again = TokenStore(ttl_s=60, prefix=WHALES_TOKEN.format(token="")).current(redis_conn, [key])[0]
    assert again["trades"] and again["last_slot"] == stream[-lateness - 1]["slot"]


def test_whale_states_written_as_json_strings_carry_on_in_parts(redis_conn):
    """whale-detection kept its token documents as JSON strings (StateStore) until its store
    became TokenStore: a deployment's states are read as they are, become hashes at their
    next commit, and the detectors carry on as if nothing changed."""
    t, stream = ChainThresholds(), busy_blocks(12, mints=3, swaps=30)
    memory = MemoryStates()
    expected = [whale_function.analyse_block(None, block, 1.7e9, t, memory) for block in stream]
    before = MemoryStates()  # StateStore's JSON (JsonCodec), as whale-detection kept it in Redis
    found = [whale_function.analyse_block(None, block, 1.7e9, t, before) for block in stream[:6]]
    for stored, text in before.documents.items():
        redis_conn.set(stored, text.encode())
    key = WHALES_TOKEN.format(token="B1")
    assert redis_conn.type(key) == b"string"
    local = whale_function.start(None)
    found += [whale_function.analyse_block(redis_conn, block, 1.7e9, t, local.states) for block in stream[6:]]
    assert found == expected and any(expected)
    assert redis_conn.type(key) == b"hash"
    again = TokenStore(ttl_s=60, prefix=WHALES_TOKEN.format(token="")).current(redis_conn, [key])[0]
    assert _text(again) == memory.documents[key]


def test_a_block_writes_the_rows_that_joined_and_the_holders_that_changed(redis_conn):
    store = TokenStore(ttl_s=60)
    store.update(redis_conn, [KEY], lambda s: ([doc(50)], None))
    assert sorted(redis_conn.hkeys(KEY)) == [b"d", b"holders:0", b"k", b"trades:0", b"v"]

    def moved_on(drop: int, wallet: str):
        def compute(states):
            state = states[0]
            state["trades"] = state["trades"][drop:] + [Trade(99.0, wallet, -1, 1, 1, f"s{wallet}", 99)]
            state["holders"]["W3"] += 1
            state["holders"][wallet] = -1
            return [state], None
        return compute

    [args] = script_arguments(redis_conn, lambda: store.update(redis_conn, [KEY], moved_on(2, "X")))
    # (n, TTL, no outbox, no waiting set, the version read) mode H, nothing deleted; the new
    # trade, the two holders, the version and the skips
    assert args[6:9] == ["H", 9, 0] and args[9::2] == ["trades:1", "holders:1", "v", "k"]
    assert args[10] == _text(Trade(99.0, "X", -1, 1, 1, "sX", 99)) and args[12] == '"W3":4,"X":-1'
    [args] = script_arguments(redis_conn, lambda: store.update(redis_conn, [KEY], moved_on(48, "Y")))
    assert args[6:10] == ["H", 10, 1, "trades:0"]  # every row of the first chunk has gone
    got = TokenStore(ttl_s=60).current(redis_conn, [KEY])[0]
    assert [r.signature for r in got["trades"]] == ["sX", "sY"]
    assert list(got["holders"])[-2:] == ["X", "Y"] and got["holders"]["W3"] == 5
    assert _text(got) == _text(store.current(redis_conn, [KEY])[0])


def test_the_holders_keep_their_order_through_redis_even_when_reordered(redis_conn):
    store = TokenStore(ttl_s=60)
    store.update(redis_conn, [KEY], lambda s: ([doc(0, holders={"b": 2, "a": 1, "c": 2})], None))
    store.update(redis_conn, [KEY], lambda s: ([{**s[0], "holders": {**s[0]["holders"], "d": 0}}], None))
    assert list(TokenStore(ttl_s=60).current(redis_conn, [KEY])[0]["holders"]) == ["b", "a", "c", "d"]
    reordered = {"c": 2, "b": 2, "d": 5}  # a trim keeps the largest, in a new order
    store.update(redis_conn, [KEY], lambda s: ([{**s[0], "holders": reordered}], None))
    assert TokenStore(ttl_s=60).current(redis_conn, [KEY])[0]["holders"] == reordered
    assert list(TokenStore(ttl_s=60).current(redis_conn, [KEY])[0]["holders"]) == ["c", "b", "d"]
    assert not redis_conn.hexists(KEY, "holders:a")


def _chunk_written(delta) -> tuple:
    """A _keyed_delta answer as what a reader gets of it: the value, the fields deleted and
    each chunk written as the dict it replays (its entries' order is not read)."""
    if delta is None:
        return None
    log, deleted, written = delta
    return (list(log.value.items()), [(n, e) for n, e, _ in log.chunks], log.skip, deleted,
            [(field, json.loads("{" + text + "}")) for field, text in zip(written[::2], written[1::2])])


@pytest.mark.parametrize("seed", range(40))
def test_the_holders_a_compute_set_give_the_chunk_that_comparing_them_all_gives(seed):
    """A compute's holders note the wallets set (store.Holders), and the commit writes those
    that changed: the same value and chunk as comparing every holder (a plain dict's way),
    whatever the compute did. Any change but setting a wallet ends the noting."""
    rng = random.Random(seed)
    stored = {f"W{k}": rng.randrange(-5, 50) for k in range(rng.randrange(0, 40))}
    log = chain_store._Log(stored, [(0, len(stored), 9)] if stored else [], 0, 1)
    holders = chain_store._Token("v", "{}", {"holders": log}).document()["holders"]
    assert type(holders) is chain_store.Holders and holders == stored
    other, ended = rng.random() < 0.3, False  # a change of another kind among the sets
    for step in range(rng.randrange(0, 30)):
        wallet = f"W{rng.randrange(60)}"
        if other and step == 3 and holders:
            rng.choice([lambda: holders.pop(next(iter(holders))), lambda: holders.update({"U": 1}),
                        lambda: holders.setdefault("S", 2), lambda: holders.__delitem__(next(iter(holders))),
                        holders.clear, holders.popitem, lambda: holders.__ior__({"Z": 9})])()
            ended = True
        elif rng.random() < 0.3:
            holders[wallet] = holders.get(wallet, 0)  # set, to what it was
        else:
            holders[wallet] = holders.get(wallet, 0) + rng.randrange(-9, 9)
    plain = dict(holders)
    assert holders.copies(stored) is not ended
    noted = chain_store._keyed_delta(chain_store.HOLDERS, log, holders)
    compared = chain_store._keyed_delta(chain_store.HOLDERS, log, plain)
    assert _chunk_written(noted) == _chunk_written(compared)
    # what a reader replays: the stored holders then the chunk, or the chunk alone when the
    # holders were written anew; the same holders in the same order
    _, deleted, written = noted
    replayed = {} if deleted else dict(stored)
    replayed.update(json.loads("{" + written[1] + "}") if written else {})
    assert list(replayed.items()) == list(plain.items())
    assert plain == holders and pickle.loads(pickle.dumps(holders)) == plain
    assert type(pickle.loads(pickle.dumps(holders))) is dict


def test_a_compute_s_holders_changed_many_ways_read_back_from_redis_as_they_were_left(redis_conn):
    store, rng = TokenStore(ttl_s=60), random.Random(5)
    store.update(redis_conn, [KEY], lambda s: ([doc(20)], None))
    expected = {}

    def compute(states):
        holders = states[0]["holders"]
        for _ in range(rng.randrange(1, 12)):
            wallet = f"W{rng.randrange(40)}"
            holders[wallet] = holders.get(wallet, 0) + rng.randrange(-3, 4)
        if rng.random() < 0.2:
            holders.pop(next(iter(holders)))
        expected.clear()
        expected.update(holders)
        return states, None

    for _ in range(30):
        store.update(redis_conn, [KEY], compute)
        got = TokenStore(ttl_s=60).current(redis_conn, [KEY])[0]["holders"]
        assert list(got.items()) == list(expected.items())


WHALE_KEY = WHALES_TOKEN.format(token="S")


def whale_store() -> TokenStore:
    return TokenStore(ttl_s=60, prefix=WHALES_TOKEN.format(token=""))


def sizes_written(args: list) -> tuple[str, list[str], dict | None]:
    """(mode, sizes fields deleted, the sizes chunk written or None) of one key's script
    arguments (the store's _COMPARE_AND_WRITE)."""
    mode = args[6]
    if not mode:  # nothing changed
        return mode, [], None
    deletes = int(args[8])
    deleted, pairs = args[9:9 + deletes], args[9 + deletes:]
    chunks = [json.loads("{" + text + "}") for field, text in zip(pairs[::2], pairs[1::2])
              if field.startswith("sizes#")]
    assert len(chunks) <= 1
    return mode, [f for f in deleted if f.startswith("sizes#")], chunks[0] if chunks else None


@pytest.mark.parametrize("seed", range(6))
def test_whale_sizes_changed_in_place_are_written_as_chunks_and_read_back_as_left(redis_conn, seed):
    """whale-detection's sizes (a trader's last swap sizes, changed in place as its detector
    does) are a part of their own: each commit writes the traders whose sizes changed, and a
    process that never saw the token reads back the sizes the compute left, in their order,
    also after the dict was cut down to its newest traders (its oldest gone at the front, or
    written anew when one of those comes back)."""
    store, rng = whale_store(), random.Random(seed)
    first = {"last_slot": 1, "sizes": {f"W{k}": [float(k)] for k in range(30)}, "pool": None}
    store.update(redis_conn, [WHALE_KEY], lambda s: ([first], None))
    expected, changed = {}, {}

    def compute(states):
        sizes = states[0]["sizes"]
        before = {wallet: list(kept) for wallet, kept in sizes.items()}
        for _ in range(rng.randrange(0, 8)):
            kept = sizes.setdefault(f"W{rng.randrange(60)}", [])
            kept.append(rng.choice([rng.random() * 10**rng.randrange(-3, 9), rng.randrange(10**6)]))
            del kept[:-3]
        if rng.random() < 0.15:  # cut to the newest traders (whale-detection's MAX_ROWS)
            states[0]["sizes"] = dict(list(sizes.items())[-rng.randrange(1, 40):])
        expected.clear()
        expected.update((wallet, list(kept)) for wallet, kept in states[0]["sizes"].items())
        changed.clear()
        changed.update((w, kept) for w, kept in expected.items() if before.get(w) != kept)
        return states, None

    for _ in range(25):
        [args] = script_arguments(redis_conn, lambda: store.update(redis_conn, [WHALE_KEY], compute))
        mode, deleted, chunk = sizes_written(args)
        if mode in ("H", "") and not deleted:  # a chunk of the traders whose sizes changed, alone
            assert chunk == (changed or None)
        else:  # written anew: a trader back after it went, or chunks grown to twice its traders
            assert chunk == (expected or None)
        for got in (whale_store().current(redis_conn, [WHALE_KEY])[0], store.current(redis_conn, [WHALE_KEY])[0]):
            assert list(got["sizes"].items()) == list(expected.items())
    fields = redis_conn.hkeys(WHALE_KEY)
    assert any(field.startswith(b"sizes#") for field in fields)
    assert json.loads(redis_conn.hget(WHALE_KEY, "d"))["sizes"] == {}  # not in the rest
    assert "sizes" not in json.loads(redis_conn.hget(WHALE_KEY, "k"))


def test_whale_sizes_losing_their_oldest_traders_count_them_gone_until_one_comes_back(redis_conn):
    """Cut to its newest traders, the sizes part counts the oldest as gone (`sizes.skip`) and
    writes only what changed; a trader back after it went is written anew (its old place in
    the chunks would be wrong), and so the count starts again."""
    store = whale_store()
    store.update(redis_conn, [WHALE_KEY], lambda s: ([{"sizes": {w: [1.0] for w in "ABCDE"}}], None))

    def keep_newest(count: int, trader: str):
        def compute(states):
            sizes = states[0]["sizes"]
            sizes.setdefault(trader, []).append(2.0)
            states[0]["sizes"] = dict(list(sizes.items())[-count:])
            return states, None
        return compute

    [args] = script_arguments(redis_conn, lambda: store.update(redis_conn, [WHALE_KEY], keep_newest(4, "F")))
    assert sizes_written(args) == ("H", [], {"F": [2.0]}) and args[-4:-2] == ["sizes.skip", "2"]
    [args] = script_arguments(redis_conn, lambda: store.update(redis_conn, [WHALE_KEY], keep_newest(3, "D")))
    assert sizes_written(args) == ("H", [], {"D": [1.0, 2.0]})  # D changed, C gone
    assert redis_conn.hget(WHALE_KEY, "sizes.skip") == b"3"
    for reader in (store, whale_store()):
        assert list(reader.current(redis_conn, [WHALE_KEY])[0]["sizes"].items()) == [
            ("D", [1.0, 2.0]), ("E", [1.0]), ("F", [2.0])]
    [args] = script_arguments(redis_conn, lambda: store.update(redis_conn, [WHALE_KEY], keep_newest(9, "A")))
    mode, deleted, chunk = sizes_written(args)
    assert deleted and chunk == {"D": [1.0, 2.0], "E": [1.0], "F": [2.0], "A": [2.0]}  # anew
    assert redis_conn.hget(WHALE_KEY, "sizes.skip") == b"0"
    assert list(whale_store().current(redis_conn, [WHALE_KEY])[0]["sizes"]) == ["D", "E", "F", "A"]


def read_as_before_the_sizes_part(fields: dict[bytes, bytes]) -> dict:
    """A token hash as a reader from before the sizes part read it (kades.chain.store at
    8380a39): the `<part>:<n>` fields of the parts `k` lists, the holders replayed as one JSON
    object, any other part as rows of its kind (ROWS[name]: a part it does not know fails)."""
    doc, chunks = json.loads(fields[b"d"]), {name: [] for name in json.loads(fields[b"k"])}
    for field, value in fields.items():
        name, sep, number = field.decode().partition(":")
        if sep:
            chunks[name].append((int(number), value.decode()))
    for name, skip in json.loads(fields[b"k"]).items():
        texts = [text for _, text in sorted(chunks[name])]
        if name == "holders":
            doc[name] = json.loads("{" + ",".join(texts) + "}")
        elif name != "reorder.pending":
            rows = [row for text in texts for row in json.loads("[" + text + "]")][skip:]
            doc[name] = list(map(chain_store.ROWS[name]._make, rows))
    return doc


def test_whale_sizes_a_revision_from_before_reads_and_writes_and_this_one_carries_on(redis_conn):
    """A revision from before the sizes part (a rollout's old revision, or a rollback) reads a
    token this one wrote as a token without sizes (it loses the traders' learned sizes, not
    the token), and writes its own in `d`; this one then takes those, and its next commit
    deletes the chunks the other left."""
    store = whale_store()
    sizes = {f"W{k}": [float(k), 2.0] for k in range(5)}
    first = {"last_slot": 1, "trades": [Trade(1.0, "W1", 1, 5, 6, "s1", 1)], "holders": {"W1": 5},
             "sizes": sizes, "pool": None}
    store.update(redis_conn, [WHALE_KEY], lambda s: ([first], None))

    def grow(states):
        states[0]["sizes"]["W9"] = [9.0]
        return states, None

    store.update(redis_conn, [WHALE_KEY], grow)  # a second chunk
    before = read_as_before_the_sizes_part(redis_conn.hgetall(WHALE_KEY))
    assert before == {**first, "sizes": {}}
    # the revision from before writes its sizes (what it learned since) in `d`, a new version
    before["sizes"] = {"X": [1.5]}
    redis_conn.hset(WHALE_KEY, mapping={"d": chain_store._text({**before, "trades": None, "holders": None}),
                                        "v": "0123456789abcdef"})
    assert len([f for f in redis_conn.hkeys(WHALE_KEY) if f.startswith(b"sizes#")]) == 2  # stale now
    carried = whale_store()
    assert carried.current(redis_conn, [WHALE_KEY])[0]["sizes"] == {"X": [1.5]}
    carried.update(redis_conn, [WHALE_KEY], grow)
    fields = redis_conn.hgetall(WHALE_KEY)
    assert [f for f in fields if f.startswith(b"sizes#")] == [b"sizes#0"]  # the stale ones gone
    for got in (whale_store().current(redis_conn, [WHALE_KEY])[0], carried.current(redis_conn, [WHALE_KEY])[0]):
        assert got["sizes"] == {"X": [1.5], "W9": [9.0]} and got["holders"] == {"W1": 5}


def test_whale_sizes_a_compute_changes_after_its_commit_leave_the_stored_ones_alone(redis_conn):
    store, left = whale_store(), []

    def compute(states):
        state = states[0] or {"sizes": {"A": [1.0]}}
        state["sizes"].setdefault("A", []).append(2.0)  # in place, on the compute's own copy
        left.append(state)
        return [state], None

    store.update(redis_conn, [WHALE_KEY], compute)
    [args] = script_arguments(redis_conn, lambda: store.update(redis_conn, [WHALE_KEY], compute))
    assert sizes_written(args) == ("H", [], {"A": [1.0, 2.0, 2.0]})  # the one trader changed
    left[-1]["sizes"]["A"].append(99.0)  # after its commit: the store's copy is not this list
    assert store.current(redis_conn, [WHALE_KEY])[0]["sizes"] == {"A": [1.0, 2.0, 2.0]}
    assert whale_store().current(redis_conn, [WHALE_KEY])[0]["sizes"] == {"A": [1.0, 2.0, 2.0]}


def test_whale_sizes_that_are_not_lists_of_numbers_stay_in_the_rest(redis_conn):
    store = whale_store()
    odd = {"sizes": {"A": [1.0, "x"], "B": 2.0}, "x": 1}
    store.update(redis_conn, [WHALE_KEY], lambda s: ([odd], None))
    assert whale_store().current(redis_conn, [WHALE_KEY])[0] == odd
    assert not any(field.startswith(b"sizes") for field in redis_conn.hkeys(WHALE_KEY))
    empty = {"sizes": {}, "x": 2}  # none yet: a part without chunks, read back as none
    store.update(redis_conn, [WHALE_KEY], lambda s: ([empty], None))
    assert whale_store().current(redis_conn, [WHALE_KEY])[0] == empty


def test_a_document_of_thousands_of_rows_and_one_that_is_not_a_token_document(redis_conn):
    store, big = TokenStore(ttl_s=60), doc(6000)  # more fields than one Lua unpack takes
    store.update(redis_conn, [KEY], lambda s: ([big], None))
    assert _text(TokenStore(ttl_s=60).current(redis_conn, [KEY])[0]) == _text(big)
    odd = {"trades": [[1, 2]], "holders": {"W": [1]}, "x": 1}  # rows of no kind, holders not scalars
    store.update(redis_conn, [KEY], lambda s: ([odd], None))
    assert TokenStore(ttl_s=60).current(redis_conn, [KEY])[0] == odd
    assert TokenStore(ttl_s=60).current(redis_conn, [CHAIN_TOKEN.format(token="none")]) == [None]



def test_waiting_slots_that_are_not_a_part_are_written_in_the_rest_as_their_payloads(redis_conn):
    """A waiting slot the store kept (its payload a WaitingSlot) in a pending list that cannot
    be a part of its own (here an entry with an int id) goes into the document's other
    fields: written there as its payload, as json.dumps's default writes it, not refused."""
    store = TokenStore(ttl_s=60)
    first = {**doc(2), "reorder": {"pending": [[5.0, "5", {"records": {}, "pools": {}}, 1.0]], "max_seen": 5.0}}
    store.update(redis_conn, [KEY], lambda s: ([first], None))
    [state] = store.current(redis_conn, [KEY])
    assert type(state["reorder"]["pending"][0][2]) is WaitingSlot  # as the store keeps it
    state["reorder"]["pending"].append([6.0, 6, {"records": {}, "pools": {}}, 2.0])
    store.update(redis_conn, [KEY], lambda s: ([state], None))
    [again] = TokenStore(ttl_s=60).current(redis_conn, [KEY])
    assert again["reorder"]["pending"] == [[5.0, "5", {"records": {}, "pools": {}}, 1.0],
                                           [6.0, 6, {"records": {}, "pools": {}}, 2.0]]

def test_a_token_written_as_a_json_string_is_read_and_replaced_by_its_hash(redis_conn):
    old = json.loads(_text(doc(3)))
    redis_conn.set(KEY, _text(old))
    store = TokenStore(ttl_s=60)
    [state] = store.current(redis_conn, [KEY])
    assert _text(state) == _text(old) and type(state["trades"][0]) is Trade
    store.update(redis_conn, [KEY], lambda s: ([{**s[0], "last_slot": 7}], None))
    assert redis_conn.type(KEY) == b"hash"
    assert _text(TokenStore(ttl_s=60).current(redis_conn, [KEY])[0]) == _text({**old, "last_slot": 7})


def count_up(store, client, rounds: int, keys: list[str]) -> None:
    def add(states):
        token = states[0] or doc(0)
        n = len(token["trades"])
        token["trades"] = token["trades"] + [Trade(float(n), "W", 1, n, n, f"s{n}", n)]
        return [token, {"n": (states[1] or {"n": 0})["n"] + 1}], None

    for _ in range(rounds):
        store.update(client, keys, add)


def two_replicas(client, rounds: int, keys: list[str]) -> None:
    """Two stores (replicas) counting up the same keys at once, `rounds` times each."""
    threads = [threading.Thread(target=count_up, args=(TokenStore(ttl_s=60, max_attempts=60), client, rounds, keys))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_two_replicas_updating_one_token_both_count_and_a_stale_cache_is_caught(redis_conn):
    keys = [KEY, OTHER]
    two_replicas(redis_conn, 25, keys)
    token, counter = TokenStore(ttl_s=60).current(redis_conn, keys)
    assert counter == {"n": 50} and [r.slot for r in token["trades"]] == list(range(50))
    mine, theirs = TokenStore(ttl_s=60), TokenStore(ttl_s=60)
    count_up(mine, redis_conn, 1, keys)
    count_up(theirs, redis_conn, 1, keys)  # mine's cache is stale now
    count_up(mine, redis_conn, 1, keys)
    assert [r.slot for r in TokenStore(ttl_s=60).current(redis_conn, keys)[0]["trades"]] == list(range(53))


def test_threads_of_one_replica_take_turns_and_compute_each_update_once(redis_conn):
    """As StateStore's (tests/runtime/test_state.py): without the per-key turns, threads of
    one store read the same token, and all but one lost their commit and computed again."""
    store, keys, computed, errors = TokenStore(ttl_s=60), [KEY, OTHER], [], []

    def add(states):
        computed.append(1)
        time.sleep(0.005)  # lets go of the GIL, as real work's reads and writes do
        token = states[0] or doc(0)
        n = len(token["trades"])
        token["trades"] = token["trades"] + [Trade(float(n), "W", 1, n, n, f"s{n}", n)]
        return [token, {"n": (states[1] or {"n": 0})["n"] + 1}], None

    def work():
        try:
            for _ in range(5):
                store.update(redis_conn, keys, add)
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)
    threads = [threading.Thread(target=work, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and not any(thread.is_alive() for thread in threads)
    token, counter = TokenStore(ttl_s=60).current(redis_conn, keys)
    assert counter == {"n": 20} and [r.slot for r in token["trades"]] == list(range(20))
    assert len(computed) == 20  # once per update


def test_a_retry_under_the_same_outbox_gets_the_first_result_and_changes_nothing(redis_conn):
    outbox = outbox_key("chain-analysis", "/tests", "e1")

    def add(found):
        return lambda states: ([{**(states[0] or doc(0)), "last_slot": found}], [found])

    assert TokenStore(ttl_s=60).update(redis_conn, [KEY], add(1), outbox=outbox) == [1]
    assert TokenStore(ttl_s=60).update(redis_conn, [KEY], add(2), outbox=outbox) == [1]
    assert TokenStore(ttl_s=60).current(redis_conn, [KEY])[0]["last_slot"] == 1


@pytest.fixture
def cluster(redis_cluster_settings):
    client = clients.redis_client(redis_cluster_settings)
    client.flushdb()
    return client


def test_on_a_redis_cluster_replicas_count_and_the_function_gives_the_same_results(cluster):
    keys = [KEY, OTHER]
    two_replicas(cluster, 10, keys)
    assert TokenStore(ttl_s=60).current(cluster, keys)[1] == {"n": 20}
    cluster.delete(KEY, OTHER)
    memory, t, local = MemoryStates(), ChainThresholds(), chain_function.start(None)
    for block in blocks(6, seed=5):
        assert chain_function.analyse_block(cluster, block, 1.7e9, t, local.states, needs=local.needs) == \
            chain_function.analyse_block(None, block, 1.7e9, t, memory)
    assert _text(TokenStore(ttl_s=60).current(cluster, [KEY])[0]) == memory.documents[KEY]
