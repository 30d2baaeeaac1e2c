"""chain-analysis's token documents, decoded and encoded once per change, not whole per block.

A token's document holds its window (up to 5,000 trades, transfers and holders) and is read
and written whole by every block that touches the token: decoding and encoding it was more
than half of chain-analysis's time, and grew with the window (docs/performance.md). This
codec (kades.runtime.state's) remembers, per token key, the document it last encoded or
decoded: its bytes, its row lists as tuples of rows (rows are immutable NamedTuples, so they
are shared safely), the JSON text of each row, and the rest as JSON text. Reading the same
bytes again builds a fresh document from that -- new lists of the same rows, a copy of the
holders, the small rest decoded -- and encoding reuses the text of every row the previous
version had (found by identity: a window only loses rows at its front and gains them at its
end), so only new rows are encoded.

The bytes are JSON without spaces (`_text`: orjson's, which reads back as json.dumps's
did); bytes this process did not write (another replica's, or from before a restart) are
decoded as JSON. Row lists come back as lists of Trade / Transfer / EarlyBuy
rather than of lists, which TokenState reads alike. Other keys are plain JSON.

>>> import json
>>> from kades.keys import CHAIN_TOKEN
>>> codec, key = TokenCodec(), CHAIN_TOKEN.format(token="T")
>>> doc = {"last_slot": 3, "trades": [Trade(1.0, "W", 1, 5, 7, "s", 3)], "holders": {"W": 5}}
>>> raw = codec.dumps(key, doc)
>>> json.loads(raw) == json.loads(json.dumps(doc))
True
>>> again = codec.loads(key, raw)  # the same document, built from what was kept
>>> codec.dumps(key, again) == raw, again["trades"][0] is doc["trades"][0], again["holders"] is doc["holders"]
(True, True, False)
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict

from kades.chain.ordering import WaitingSlot
from kades.chain.rows import EarlyBuy, Trade, Transfer
from kades.jsontext import compact_json, loads as from_json, orjson_or_none, stdlib_text
from kades.keys import CHAIN_TOKEN

# a token document's row lists: chain-analysis's, and whale-detection's sends
ROWS = {"trades": Trade, "edges": Transfer, "early_buys": EarlyBuy, "sends": Transfer}
_SCALARS = frozenset({int, float, str, bool, type(None)})


def _default(value):
    """A waiting slot's payload kept as JSON (kades.chain.store) is written as that payload."""
    if type(value) is WaitingSlot:
        return value.decoded()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _as_json(value):
    """orjson's `default`: a row (a NamedTuple, which orjson does not take) as an array, a
    waiting slot's payload as itself."""
    if isinstance(value, tuple):
        return tuple(value)
    return _default(value)


def _text(value) -> str:
    """JSON text without spaces of rows, holders and waiting slots (a WaitingSlot written as
    its payload): orjson's, not read back as kades.jsontext.compact_json's is (rows are
    tuples, which read back as lists), unless it has a null, since orjson writes NaN and
    Infinity so: a text with a null (rare in rows and holders, what events said and ints
    summed; a waiting slot's records with a revoked authority) is json.dumps's, as is what
    orjson refuses (an int past 64 bits, a key not a string, a lone surrogate). The same
    values read back as json.dumps's text would give; the text differs only in form (UTF-8
    rather than \\u escapes, 0.00001 for 1e-05)."""
    raw = orjson_or_none(value, _as_json)
    if raw is not None and b"null" not in raw:  # a substring search at C speed
        return raw.decode()
    return stdlib_text(value, _default)


@functools.lru_cache(maxsize=64)
def _field(name: str) -> str:
    return _text(name) + ":"


class _Rows:
    """One row list of a document: its rows (a tuple) and, once needed, each row's JSON text."""

    __slots__ = ("rows", "texts")

    def __init__(self, rows: tuple, texts: list[str] | None):
        self.rows, self.texts = rows, texts

    def texts_for(self, kind: type, rows: list) -> list[str] | None:
        """The JSON text of each of `rows`: ours for the run of them that are our rows (by
        identity: a window that moved on keeps a run of them at its front), encoded for
        the others, which must be `kind` rows (None when one is not)."""
        kept, texts = 0, []
        if rows and self.rows:
            mine = list(map(id, self.rows))
            try:
                start = mine.index(id(rows[0]))
            except ValueError:
                start = None
            if start is not None:
                kept = min(len(rows), len(mine) - start)
                if list(map(id, rows[:kept])) != mine[start:start + kept]:
                    kept = next(k for k in range(kept) if rows[k] is not self.rows[start + k])
                if self.texts is None:
                    self.texts = [_text(row) for row in self.rows]
                texts = self.texts[start:start + kept]
        return _new_texts(kind, rows, kept, texts)


def _new_texts(kind: type, rows: list, kept: int, texts: list[str]) -> list[str] | None:
    """`texts` of rows[:kept], then those of the rest, each a `kind` row (else None)."""
    new = rows[kept:]
    if not all(type(row) is kind for row in new):
        return None
    return texts + [_text(row) for row in new]


class _Document:
    """A token document as last encoded or decoded: its bytes and its parts in key order,
    (field, its _Rows) for a row list, (field, a copy) for the holders, and (None, fields)
    for a run of other fields, kept as JSON text in `rest`."""

    __slots__ = ("raw", "parts", "rest", "rows")

    def __init__(self, raw: bytes, parts: list[tuple], rest: list[str]):
        self.raw, self.parts = raw, parts
        self.rest = "{" + ",".join(rest) + "}"
        self.rows = {name: part for name, part in parts if type(part) is _Rows}

    def document(self) -> dict:
        """A fresh document: new lists of the same rows, a copy of the holders, the rest
        decoded."""
        rest, doc = from_json(self.rest), {}
        for name, part in self.parts:
            if name is None:
                for field in part:
                    doc[field] = rest[field]
            else:
                doc[name] = list(part.rows) if type(part) is _Rows else dict(part)
        return doc


def _scalar_dict(value) -> bool:
    """A dict of str -> scalar (the holders): a copy of it is what JSON would give back."""
    return (type(value) is dict and set(map(type, value)) <= {str}
            and set(map(type, value.values())) <= _SCALARS)


def _parts(doc: dict, row_texts) -> tuple[list[str], list[tuple], list[str]] | None:
    """A document's JSON pieces (each `"field":value`, or a run of them), its parts and the
    runs' text; `row_texts(field, kind, rows)` gives the text of each row of a row list (None
    when they are not rows). None when a part is not what a token document holds."""
    pieces, parts, rest, run = [], [], [], {}

    def end_run() -> None:
        if run:
            text = compact_json(run, _default).decode()[1:-1]  # '{"a":1}' -> '"a":1', as inside
            pieces.append(text)
            rest.append(text)
            parts.append((None, tuple(run)))
            run.clear()

    for name, value in doc.items():
        if type(name) is not str:
            return None  # JSON would make it a string: not what it would read back
        kind = ROWS.get(name)
        if kind is not None and type(value) is list:
            texts = row_texts(name, kind, value)
            if texts is None:
                return None
            end_run()
            parts.append((name, _Rows(tuple(value), texts)))
            pieces.append(_field(name) + "[" + ",".join(texts) + "]")
        elif name == "holders" and _scalar_dict(value):
            end_run()
            parts.append((name, dict(value)))
            pieces.append(_field(name) + _text(value))
        else:
            run[name] = value
    end_run()
    return pieces, parts, rest


class TokenCodec:
    """kades.runtime.state's codec for chain-analysis: token documents remembered per key (the
    latest `max_bytes` of them, counted by their encoded size), everything else plain JSON."""

    def __init__(self, *, max_bytes: int = 4 << 20):
        self.prefix = CHAIN_TOKEN.format(token="")
        self.max_bytes = max_bytes
        self._documents: OrderedDict[str, _Document] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # a function serves requests on several threads

    def loads(self, key: str, raw: bytes):
        if not key.startswith(self.prefix):
            return from_json(raw)
        known = self._get(key)
        if known is not None and known.raw == raw:
            return known.document()
        doc = from_json(raw)  # written elsewhere, or forgotten: rows come as lists
        if type(doc) is dict:
            for name, kind in ROWS.items():
                rows = doc.get(name)
                if type(rows) is list and all(type(r) is list and len(r) == len(kind._fields) for r in rows):
                    doc[name] = list(map(kind._make, rows))
            split = _parts(doc, lambda name, kind, rows: _new_texts(kind, rows, 0, []))
            if split is not None:
                self._remember(key, _Document(raw, split[1], split[2]))
        return doc

    def dumps(self, key: str, state) -> bytes:
        if not key.startswith(self.prefix) or type(state) is not dict:
            return compact_json(state, _default)
        known = self._get(key)
        before = known.rows if known is not None else {}

        def row_texts(name: str, kind: type, rows: list) -> list[str] | None:
            old = before.get(name)
            return old.texts_for(kind, rows) if old is not None else _new_texts(kind, rows, 0, [])

        split = _parts(state, row_texts)
        if split is None:  # not a token document as we know it: plain JSON, nothing kept
            with self._lock:
                self._drop(key)
            return compact_json(state, _default)
        pieces, parts, rest = split
        raw = ("{" + ",".join(pieces) + "}").encode()
        self._remember(key, _Document(raw, parts, rest))
        return raw

    def _get(self, key: str) -> _Document | None:
        with self._lock:
            known = self._documents.get(key)
            if known is not None:
                self._documents.move_to_end(key)
            return known

    def _remember(self, key: str, document: _Document) -> None:
        with self._lock:
            self._drop(key)
            self._documents[key] = document
            self._bytes += len(document.raw)
            while self._bytes > self.max_bytes and self._documents:
                self._drop(next(iter(self._documents)))  # the least recently used

    def _drop(self, key: str) -> None:
        old = self._documents.pop(key, None)
        if old is not None:
            self._bytes -= len(old.raw)
