"""kades.chain.codec: token documents kept decoded give exactly the bytes and documents plain
JSON gives, whatever was written before, by whom, and however the window moved on."""
from __future__ import annotations

import json
import random

from kades.chain.codec import TokenCodec
from kades.chain.rows import EarlyBuy, Trade, Transfer
from kades.keys import CHAIN_POOL, CHAIN_TOKEN

KEY = CHAIN_TOKEN.format(token="Mint1")


def plain(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def as_json(doc) -> object:
    return json.loads(plain(doc))


def document(rng: random.Random, slot: int, trades: list[Trade]) -> dict:
    return {"last_slot": slot, "trades": trades,
            "edges": [Transfer(1.5 * slot, "A", "B", rng.randrange(10**12), f"t{slot}", slot)],
            "holders": {f"W{k}": rng.randrange(-10**15, 10**15) for k in range(rng.randrange(5))},
            "early_buys": [EarlyBuy(0.1, "W\u00e9", 5, 7, "s", slot)], "first_trade": {"time_s": 0.1, "slot": 1},
            "launch": None, "alerted": {"wash:W1": 3.0}, "reorder": {"pending": [], "max_seen": float(slot)}}


def test_a_window_moving_on_encodes_as_json_and_reads_back_equal():
    rng, codec, trades, raw = random.Random(7), TokenCodec(), [], None
    for slot in range(60):
        got = codec.loads(KEY, raw) if raw is not None else None
        trades = list(got["trades"]) if got else []
        trades += [Trade(slot * 0.4, f"W{rng.randrange(9)}", rng.choice((1, -1)), rng.randrange(10**12),
                         rng.randrange(10**9), f"sig{slot}x{k}", slot) for k in range(rng.randrange(4))]
        trades = trades[-rng.randrange(5, 30):]  # the front of the window goes
        if slot % 7 == 3 and len(trades) > 2:
            del trades[1]  # and, once in a while, a row from its middle
        doc = document(rng, slot, trades)
        raw = codec.dumps(KEY, doc)
        assert raw == plain(doc)
        again = codec.loads(KEY, raw)
        assert as_json(again) == json.loads(raw) and again is not doc
        assert again["holders"] is not doc["holders"] and again["trades"] is not doc["trades"]


def test_bytes_it_did_not_write_are_decoded_as_json_and_rows_come_back_typed():
    codec, other = TokenCodec(), TokenCodec()
    mine = codec.dumps(KEY, document(random.Random(1), 3, [Trade(1.0, "W", 1, 2, 3, "s", 3)]))
    theirs = other.dumps(KEY, document(random.Random(2), 4, [Trade(2.0, "V", -1, 2, 3, "r", 4)]))
    got = codec.loads(KEY, theirs)  # another replica moved the token on
    assert plain(got) == theirs and got["trades"] == [Trade(2.0, "V", -1, 2, 3, "r", 4)]
    assert type(got["trades"][0]) is Trade and type(got["edges"][0]) is Transfer
    assert plain(codec.loads(KEY, mine)) == mine  # its own older bytes: decoded as JSON too
    changed = codec.loads(KEY, theirs)
    changed["holders"]["new"] = 1
    changed["alerted"]["k"] = 2.0
    assert plain(codec.loads(KEY, theirs)) == theirs  # what it handed out is the caller's to change


def test_other_keys_and_unknown_shapes_are_plain_json():
    codec = TokenCodec()
    pool = CHAIN_POOL.format(pool="P")
    assert codec.dumps(pool, {"last": [1, 2]}) == b'{"last":[1,2]}'
    assert codec.loads(pool, b'{"last":[1,2]}') == {"last": [1, 2]}
    odd = {"trades": [[1, 2]], 3: "x", "holders": {"W": [1]}}  # rows that are not rows, an int key
    assert codec.dumps(KEY, odd) == plain(odd)
    assert codec.loads(KEY, plain(odd)) == json.loads(plain(odd))


def test_the_memory_stays_within_its_budget():
    codec = TokenCodec(max_bytes=5_000)
    for n in range(50):
        codec.dumps(CHAIN_TOKEN.format(token=f"M{n}"),
                    document(random.Random(n), n, [Trade(1.0, "W", 1, 2, 3, f"s{k}", n) for k in range(10)]))
    assert 0 < codec._bytes <= 5_000 and len(codec._documents) < 50
