"""kades.jsontext: orjson's speed, the stdlib's values. What orjson would write or read
differently (NaN, Infinity, ints past 64 bits, tuples) goes through the stdlib's json."""
from __future__ import annotations

import json
import math

import pytest

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
