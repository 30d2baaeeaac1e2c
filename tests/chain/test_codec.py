"""kades.chain.codec: token documents kept decoded give bytes that read back as the document,
and the documents JSON reads back, whatever was written before, by whom, and however the
window moved on."""
from __future__ import annotations

import json
import math
import random

import pytest

from kades.chain.codec import TokenCodec, _text
from kades.chain.ordering import WaitingSlot
from kades.chain.rows import EarlyBuy, Trade, Transfer
from kades.keys import CHAIN_POOL, CHAIN_TOKEN

KEY = CHAIN_TOKEN.format(token="Mint1")


def as_json(doc) -> object:
    """What json.dumps's text of the document reads back as."""
    return json.loads(json.dumps(doc, default=lambda slot: slot.decoded()))


def plain(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def reads_as(raw: bytes, doc) -> bool:
    """Whether `raw` reads back as json.dumps's text of `doc` would."""
    return json.loads(raw) == as_json(doc)


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
        assert reads_as(raw, doc) and codec.dumps(KEY, codec.loads(KEY, raw)) == raw
        again = codec.loads(KEY, raw)
        assert as_json(again) == json.loads(raw) and again is not doc
        assert again["holders"] is not doc["holders"] and again["trades"] is not doc["trades"]


def test_bytes_it_did_not_write_are_decoded_as_json_and_rows_come_back_typed():
    codec, other = TokenCodec(), TokenCodec()
    mine = codec.dumps(KEY, document(random.Random(1), 3, [Trade(1.0, "W", 1, 2, 3, "s", 3)]))
    theirs = other.dumps(KEY, document(random.Random(2), 4, [Trade(2.0, "V", -1, 2, 3, "r", 4)]))
    got = codec.loads(KEY, theirs)  # another replica moved the token on
    assert reads_as(theirs, got) and got["trades"] == [Trade(2.0, "V", -1, 2, 3, "r", 4)]
    assert type(got["trades"][0]) is Trade and type(got["edges"][0]) is Transfer
    assert reads_as(mine, codec.loads(KEY, mine))  # its own older bytes: decoded as JSON too
    changed = codec.loads(KEY, theirs)
    changed["holders"]["new"] = 1
    changed["alerted"]["k"] = 2.0
    assert reads_as(theirs, codec.loads(KEY, theirs))  # what it handed out is the caller's to change


def test_other_keys_and_unknown_shapes_are_plain_json():
    codec = TokenCodec()
    pool = CHAIN_POOL.format(pool="P")
    assert codec.dumps(pool, {"last": [1, 2]}) == b'{"last":[1,2]}'
    assert codec.loads(pool, b'{"last":[1,2]}') == {"last": [1, 2]}
    odd = {"trades": [[1, 2]], 3: "x", "holders": {"W": [1]}}  # rows that are not rows, an int key
    assert reads_as(codec.dumps(KEY, odd), odd)
    assert codec.loads(KEY, plain(odd)) == json.loads(plain(odd))


def test_the_memory_stays_within_its_budget():
    codec = TokenCodec(max_bytes=5_000)
    for n in range(50):
        codec.dumps(CHAIN_TOKEN.format(token=f"M{n}"),
                    document(random.Random(n), n, [Trade(1.0, "W", 1, 2, 3, f"s{k}", n) for k in range(10)]))
    assert 0 < codec._bytes <= 5_000 and len(codec._documents) < 50


@pytest.mark.parametrize("value", [
    {"holders": {"W": 2**64, "V": -2**63 - 1}},          # ints beyond 64 bits (sums of amounts)
    {3: "x", "a": [1, 2]},                                # a key JSON makes a string
    {"name": "lone \udc80 surrogate"},                  # no UTF-8 for it: escaped, as json does
    {"rows": [Trade(1.5, "W\u00e9", 1, 2**64 - 1, 7, "s", 3)], "at": 1e-05, "big": 1e16},
    {"pending": [[3, "id", WaitingSlot('[3,"id",{"p":1},0.5]', {"p": 1}), 0.5]]},
])
def test_what_orjson_cannot_write_is_written_by_json_and_everything_reads_back_as_json_would(value):
    """`_text` is orjson's text where orjson takes the value, json.dumps's where it does not
    (an int beyond 64 bits, a key not a string, a lone surrogate); either reads back as the
    value json.dumps wrote would (rows as arrays, a waiting slot as its payload)."""
    text = _text(value)
    expected = json.loads(json.dumps(value, default=lambda slot: slot.decoded()))
    assert json.loads(text) == expected



def test_nan_and_infinity_in_rows_or_holders_read_back_as_json_dumps_wrote_them():
    """orjson writes NaN and Infinity as null; a text with a null is json.dumps's, so no
    number reads back as None (none comes from events, whose parse refuses them)."""
    text = _text({"W": float("nan"), "V": float("inf"), "rows": [Trade(float("-inf"), "W", 1, 2, 3, "s", 4)]})
    got = json.loads(text)
    assert math.isnan(got["W"]) and got["V"] == math.inf and got["rows"][0][0] == -math.inf
    assert _text({"W": None, "V": 1}) == '{"W":null,"V":1}'  # a null of its own stays one
