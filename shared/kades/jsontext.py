"""Compact JSON for the states functions keep in Redis: orjson's speed where it gives what the
stdlib's json would read back, the stdlib's where it would not.

orjson writes a document of floats in a fifth of the stdlib's time and reads one in a quarter
(docs/performance.md), but not always the same values:
- it writes NaN and Infinity as null (a state that overflowed would come back as None and
  break its token), and no option changes that;
- it refuses an int past 64 bits, a key that is not a string, a lone surrogate;
- it reads an int past 64 bits as a float.
So `compact_json` writes orjson's bytes only when they read back as the document, and `loads`
leaves to the stdlib any text with an int too long for orjson, and what orjson refuses (the
NaN and Infinity the stdlib writes).

>>> loads(compact_json({"a": 1.5, "n": 2**70, "x": float("inf")}))
{'a': 1.5, 'n': 1180591620717411303424, 'x': inf}
"""
from __future__ import annotations

import functools
import json
from json.encoder import c_make_encoder, encode_basestring_ascii

import orjson


@functools.lru_cache(maxsize=16)  # one per `default` (a module's function), not one per call
def _c_encoder(default):
    """json's C encoder with json.dumps(x, separators=(",", ":"), default=default)'s settings
    (no check for cycles: states are trees), None without the json accelerator."""
    return c_make_encoder and c_make_encoder(None, default, encode_basestring_ascii, None, ":",
                                             ",", False, False, True)


_ENCODE = _c_encoder(json.JSONEncoder().default)  # made once, not per call as json.dumps does
# An int token of 19 digits or more (2**63 has 19), which orjson may read as a float: found by
# writing every digit as "0" and what may come before a number ("[", ":", "-", whitespace) as
# ",", then a substring search for "," and nineteen "0"s: about 2 us on a 4 kB document, where a
# regex took 17 us on 700 bytes. A run of digits elsewhere is not an int: a float's long
# fraction or mantissa (any price, 0.000123...), which both read alike (300,000 random reprs
# compared, docs/performance.md), or digits in a string (wrapped SOL's mint, So111...112, is
# in every Solana payload); a check for nineteen digits in a row sent those to the stdlib's
# json, at 3.4x orjson's time. What it still takes for one (such digits after a comma in a
# string) only costs that time.
_NUMBER_STARTS = bytes.maketrans(b"123456789[:-\t\n\r ", b"0" * 9 + b"," * 7)
_LONG_INT = b"," + b"0" * 19


def compact_json(document, default=None) -> bytes:
    """Compact JSON of `document` that reads back as `document`: orjson's where it does,
    proven by reading it back, else json.dumps(document, separators=(",", ":"))'s, which
    writes NaN and Infinity as Python reads them back (a tuple reads back as a list, so a
    document with tuples gets the stdlib's too). `default`: as json.dumps's, for objects
    neither writes (a document holding one gets the stdlib's: it cannot read back as one)."""
    return proven(document, orjson_or_none(document, default), default)


def orjson_or_none(document, default=None) -> bytes | None:
    """orjson's bytes of `document`, None where it refuses it."""
    try:
        return orjson.dumps(document, default=default)
    except TypeError:  # orjson.JSONEncodeError: what it cannot write, the stdlib's JSON will
        return None


def proven(document, raw: bytes | None, default=None) -> bytes:
    """compact_json's bytes, given orjson's (`raw`, None where it refused the document)."""
    if raw is not None and orjson.loads(raw) == document:
        return raw
    return stdlib_text(document, default).encode()


def stdlib_text(document, default=None) -> str:
    """json.dumps(document, separators=(",", ":"), default=default), without its per-call
    JSONEncoder."""
    encode = _ENCODE if default is None else _c_encoder(default)
    if encode is None:  # a Python without the json accelerator
        return json.dumps(document, separators=(",", ":"), default=default)
    return "".join(encode(document, 0))


# A run of this many digits, which orjson may not read as the stdlib does: it reads about 768
# significant digits of a number and takes the rest for nonzero, so a decimal exactly halfway
# between two doubles, padded with zeros past that, was rounded up where the stdlib rounds to
# even (1.00000000000000011102230246251565404236316680908203125 and 715 zeros: 1.0000000000000002
# against 1.0). A number's integer part of 19 digits or more is _LONG_INT already, so its
# fraction must hold 750 for the number to reach 768.
_LONG_DIGITS = b"0" * 700


def orjson_may_misread(text: bytes | bytearray) -> bool:
    """Whether JSON text may hold a number orjson reads otherwise than the stdlib: an int it
    would read as a float (_LONG_INT), or more digits than it reads (_LONG_DIGITS)."""
    marked = text.translate(_NUMBER_STARTS)
    return (_LONG_INT in marked or marked.startswith(_LONG_INT[1:])
            or _LONG_DIGITS in marked)


def loads(raw: bytes | bytearray | memoryview | str):
    """JSON decoded as the stdlib would: orjson's reading (4x the stdlib's speed) unless the
    text holds a number orjson would read otherwise (orjson_may_misread) or something it
    refuses (NaN, Infinity)."""
    if type(raw) is str:
        text = raw.encode("utf-8", "surrogatepass")
    else:
        raw = text = bytes(raw)  # as it is when bytes
    if not orjson_may_misread(text):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)
