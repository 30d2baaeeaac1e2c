"""temporal-analysis's state codec (kades.runtime.state's): a token's state that this process
wrote is handed back as the document it encoded, not decoded again from JSON, and a one-tick
event appends its input to the state's journal instead of encoding the whole state again.

A one-tick event reads and writes the token's whole state (~3.7 kB, mostly floats) to analyse
one point: decoding it was ~15% of the event's CPU in the function, and building and encoding
it afresh (the monitor's `to_state`, then JSON) about as much again. The StateStore already
keeps the bytes it committed (the very bytes object `dumps` returned) and proves them current
with its compare-and-set; this codec keeps, per key, the document behind the bytes it last
encoded, and `loads` of that same bytes object gives that document instead of parsing it.
The same object, not equal bytes: the store caches it only once committed, when the attempt
that encoded it is done with the document, whereas equal bytes can come from another thread's
attempt still under way (a batch of duplicate ticks changes nothing: its state's bytes equal
the ones read). It gives it once: the document is then the caller's to change
(analyse_batch takes the reorder buffer out of it and the buffer changes), and a second read
-- a retry after a failed attempt -- decodes the bytes as JSON. The document must not change
after `dumps` (analyse_batch builds a new one per attempt).

temporal-analysis's documents are `LiveDocument`s: the monitor they carry on with, its reorder
buffer, and the event's input (its journal entry). When the bytes it carries on from are this
process's own, the event's entry is appended to the state's journal, the last key of the JSON object
(`{...,"journal":[entry,...]}`), as long as the journal stays smaller than the state written
whole (`snapshot`) before it: about 25 one-tick events, then the state is written whole again,
without a journal. Whoever reads the bytes without the live document (another replica, a
retry, a restart) decodes the state and replays the journal through the same monitor and
reorder buffer (kades.temporal.function), which gives the state bit for bit: the policy is
deterministic and an entry reads back as written. A reader that does not know the journal (an
older version during a rollback) reads the state before it, as JSON; it loses those events'
learning, not the state.

The bytes are compact JSON (`kades.jsontext.compact_json`): orjson's where they read back
as the document, else json.dumps(document, separators=(",", ":"))'s. Bytes this process did
not write (another replica's, or an older process's) are read as JSON.

>>> codec, doc = StateCodec(), {"detector": {"last_time": 5.0}, "reorder": {}}
>>> raw = codec.dumps("k", doc)
>>> loads(raw) == doc
True
>>> codec.loads("k", raw) is doc, codec.loads("k", raw) is doc   # once, then JSON
(True, False)
>>> raw = codec.dumps("k", doc); codec.loads("k", bytes(bytearray(raw))) is doc  # equal: JSON
False
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from kades.jsontext import compact_json, loads, orjson_or_none, proven

MAX_DOCUMENTS = 1024  # tokens whose last document is kept (its monitor: ~40 kB, 40 MB at most)


def _fitting_json(document, room: int) -> bytes | None:
    """compact_json(document) if orjson's bytes of it fit in `room` (they are compact_json's
    unless orjson cannot write the document: then the entry may be dropped where the stdlib's
    would have fitted, and the state is written whole, as it is for any entry too large),
    else None. A 50-tick event's entry never fits, and compact_json's read back, which costs
    three times the encoding, was made to drop it (2 % of such an event's time).
    """
    raw = orjson_or_none(document)
    if raw is not None and len(raw) > room:
        return None
    return proven(document, raw)


JOURNAL = "journal"  # the state's last key: the entries of the events since it was written whole
_OPEN_JOURNAL = f',"{JOURNAL}":['.encode()
TICK_BYTES = 48  # an entry's JSON per tick, at least: its time and a tick's token, price and time


class LiveDocument(dict):
    """A token's new state as analyse_batch computed it, not encoded yet: its reorder buffer
    (the one key it holds: the StateStore's waiting set reads it), the monitor the rest of the
    state is (`snapshot`), and the event's input: its time and the token's ticks, (epoch s,
    tick) each, its journal entry `[now_s, [[time, tick], ...]]`. `after`: the document it
    carries on from, whose bytes (`raw`) the journal may go on from; `unchanged`: the event
    changed nothing (every tick a duplicate), so the bytes stay as they were."""

    __slots__ = ("monitor", "now_s", "series", "unchanged", "raw", "entries", "snapshot_len",
                 "encoded")

    def __init__(self, reorder: dict, monitor: Any, now_s: float, series: list, *,
                 after: "LiveDocument | None" = None, unchanged: bool = False):
        super().__init__(reorder=reorder)
        self.monitor, self.now_s, self.series, self.unchanged = monitor, now_s, series, unchanged
        # the bytes it carries on from, its journal's entries, and the last whole state's size
        self.raw, self.entries, self.snapshot_len = ((after.raw, after.entries, after.snapshot_len)
                                                     if after is not None else (None, 0, 0))
        self.encoded: bytes | None = None  # encode's bytes, once made

    def snapshot(self) -> dict:
        """The whole state, as JSON keeps it (no journal)."""
        return {**self.monitor.to_state(), "reorder": self["reorder"]}

    def encode(self) -> bytes:
        """Its bytes: those it carries on from with its entry appended to their journal while
        the journal stays under the whole state's size, else the whole state (a new object
        either way: see the module's doc). Made once: analyse_batch encodes each token's
        document where an error in it resets the token alone, and the store's codec gets
        the same bytes."""
        if self.encoded is not None:
            return self.encoded
        base, room = self.raw, 2 * self.snapshot_len
        if base is not None and self.unchanged:
            raw = bytes(bytearray(base))
        else:
            entry = None
            if base is not None and len(base) + TICK_BYTES * len(self.series) <= room:  # may fit
                entry = _fitting_json([self.now_s, [list(pair) for pair in self.series]],
                                      room - len(base))
            if entry is not None and len(base) + len(entry) <= room:
                head = base[:-1] + _OPEN_JOURNAL if self.entries == 0 else base[:-2] + b","
                raw, self.entries = head + entry + b"]}", self.entries + 1
            else:
                raw, self.entries = compact_json(self.snapshot()), 0
                self.snapshot_len = len(raw)
        self.raw = self.encoded = raw
        return raw


class StateCodec:
    """Compact JSON, with the last document encoded per key kept for one read back."""

    def __init__(self, *, max_documents: int = MAX_DOCUMENTS):
        self.max_documents = max_documents
        self._kept: OrderedDict[str, tuple[bytes, dict]] = OrderedDict()
        self._lock = threading.Lock()  # a function serves requests on several threads

    def loads(self, key: str, raw: bytes):
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] is raw:
                del self._kept[key]
                return kept[1]
        return loads(raw)

    def dumps(self, key: str, document) -> bytes:
        raw = document.encode() if type(document) is LiveDocument else compact_json(document)
        with self._lock:
            self._kept[key] = (raw, document)
            self._kept.move_to_end(key)
            while len(self._kept) > self.max_documents:
                self._kept.popitem(last=False)
        return raw
