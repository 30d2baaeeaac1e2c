"""kades.jsontext: orjson's speed, the stdlib's values. What orjson would write or read
differently (NaN, Infinity, ints past 64 bits, tuples) goes through the stdlib's json."""
from __future__ import annotations

import json
import math
import random
import struct

import pytest

from kades import jsontext
from kades.jsontext import compact_json, loads


@pytest.mark.parametrize("big", [2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**63, -2**63 - 1, 10**30])
def test_ints_of_any_size_read_back_as_ints(big):
    """orjson reads an int past 64 bits as a float; loads gives the stdlib's int, from text
    written by either encoder, as str, bytes, bytearray or memoryview."""
    doc = {"holders": {"W": big}, "at": 1.5}
    for raw in (json.dumps(doc).encode(), compact_json(doc)):
        for form in (raw, raw.decode(), bytearray(raw), memoryview(raw)):
            got = loads(form)
            assert got == doc and type(got["holders"]["W"]) is int


def test_nan_and_infinity_written_by_the_stdlib_read_back():
    """Documents of the stdlib's JSON (before orjson, or where compact_json fell back to it)
    hold NaN and Infinity, which orjson refuses to read."""
    raw = compact_json({"x": float("nan"), "y": float("inf"), "z": -float("inf"), "t": "\u00e9"})
    assert b"NaN" in raw and b"Infinity" in raw  # the stdlib's, not orjson's nulls
    got = loads(raw)
    assert math.isnan(got["x"]) and got["y"] == math.inf and got["z"] == -math.inf and got["t"] == "\u00e9"


def test_a_document_orjson_writes_as_json_would_is_orjsons_and_reads_back_equal():
    doc = {"a": [1.5, 1e-05, 1e16, None, True], "b": {"c": "\u00e9"}, "n": 2**64 - 1}
    raw = compact_json(doc)
    assert raw.startswith(b'{"a":[1.5,') and b"\xc3\xa9" in raw  # orjson's UTF-8, not \u escapes
    assert loads(raw) == json.loads(raw) == doc


def test_an_object_neither_writes_goes_through_default_and_the_stdlib():
    class Slot:
        def __init__(self, payload):
            self.payload = payload
    raw = compact_json({"pending": [[1, Slot({"a": 1})]]}, default=lambda slot: slot.payload)
    assert loads(raw) == {"pending": [[1, {"a": 1}]]}
    with pytest.raises(TypeError):
        compact_json({"x": Slot(1)})


def test_ints_past_64_bits_anywhere_a_number_may_stand_read_back_as_ints():
    """An int token after each thing that may come before a number, in indented text too."""
    big, neg = 10**25 + 7, -(2**64) - 3
    docs = [big, [big], [1, big], {"a": big}, {"a": [neg, big]}, [[neg]]]
    for doc in docs:
        for raw in (json.dumps(doc), json.dumps(doc, indent=2), json.dumps(doc, separators=(",", ":"))):
            assert loads(raw) == doc and loads(raw.encode()) == doc


def test_random_documents_read_as_the_stdlib_reads_them():
    """Long fractions, mantissas, exponents and digit runs in strings beside ints of every
    size: loads gives json.loads's values and types."""
    rng = random.Random(19)

    def number():
        kind = rng.randrange(5)
        if kind == 0:
            return rng.randrange(-2**80, 2**80)
        if kind == 1:
            return rng.random() * 10.0 ** rng.randint(-30, 30)
        if kind == 2:
            return struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        if kind == 3:
            return "So" + "1" * rng.randint(19, 45) + "2"
        return "x," + str(rng.randrange(10**18, 10**30))  # a comma then digits, in a string

    for _ in range(2_000):
        doc = {"v": [number() for _ in range(rng.randint(1, 8))], "n": number()}
        raw = json.dumps(doc, separators=(",", ":"))
        got, want = loads(raw), json.loads(raw)
        assert repr(got) == repr(want)  # types too (an int is not a float), NaN alike


def test_a_solana_payload_with_long_fractions_is_read_by_orjson(monkeypatch):
    """Prices with long fractions and wrapped SOL's mint (So111...112) hold 19 digits in a row
    but no int of 19 digits or more: they are not handed to the stdlib's json (3.4x orjson's time)."""
    payload = {"quote_mint": "So11111111111111111111111111111111111111112",
               "price": 0.00012345678901234567, "amount": 10**18 - 1}
    raw = compact_json([1, "300000001", payload, 1.7e9])
    handed = []
    monkeypatch.setattr(jsontext.json, "loads", lambda text: handed.append(text))
    assert loads(raw) == [1, "300000001", payload, 1.7e9] and handed == []
    loads(compact_json({"n": 2**64}))
    assert len(handed) == 1


def _halfway() -> list[bytes]:
    """Decimals exactly halfway between two doubles, padded with zeros past the ~768
    significant digits orjson reads: it rounded them up where the stdlib rounds to even
    (found by a review). Halfway between 1.0 and the next double, and under the smallest
    subnormal (2**-1075: 751 significant digits)."""
    from decimal import Decimal, localcontext
    with localcontext() as context:
        context.prec = 3000
        return [format(Decimal(1) + Decimal(2) ** -53, "f").encode() + b"0" * 715,
                format(Decimal(2) ** -1075, "f").encode() + b"0" * 17]


HALFWAY = _halfway()


@pytest.mark.parametrize("number", HALFWAY)
def test_a_number_longer_than_orjson_reads_is_read_as_the_stdlib_reads_it(number):
    for text in (number, b"-" + number, b'{"price":' + number + b"}", number + b"e0"):
        assert repr(loads(text)) == repr(json.loads(text)), text[:20]
    assert jsontext.orjson_may_misread(number)
    assert not jsontext.orjson_may_misread(b"[" + b"1.5," * 1000 + b"0]")
