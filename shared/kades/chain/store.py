"""chain-analysis's and whale-detection's StateStore: token documents kept in parts, and only
what changed written.

A token's document (kades.chain.state: its window of trades, transfers and early buys, its
holders, its launch and reorder buffer) was one JSON string, read, hashed and written whole by
every block that touched the token: about 1 MB per 2,000-record block, which the
compare-and-set script spent most of its time receiving, hashing and storing
(docs/performance.md, "Chain analysis and growth"). Here a token key is a Redis hash:

    v            the version: random, new at every commit that changes the token
    d            the document's other fields, compact JSON, in the document's key order,
                 with null in the place of each part
    k            the parts in order, each with how many entries of its first chunk are gone
                 (JSON object)
    <part>:<n>   a chunk of a part, n in the order they were written: rows that joined a row
                 list (trades, edges, early_buys; whale-detection's sends) or slots that came
                 to wait in the reorder buffer (reorder.pending) in one commit, comma-separated
                 JSON; or the entries of a dict part that changed in one commit (holders
                 whose amount changed; whale-detection's sizes, a trader's last swap sizes,
                 whose chunks are `sizes#<n>`: SIZES), the inside of a JSON object

A window loses rows at its front and gains them at its end (and the reorder buffer its
waiting slots: released at the front, arriving mostly at the end), so a commit writes the rows
that joined as one chunk and counts those that left in `k`, deleting a chunk once all of its rows
have gone; a dict part's chunks (the holders', the sizes') are read in order as one JSON
object (a wallet keeps the place it was first given, with its last value) and written anew as
one chunk when the dict was cut down (a new order; the sizes, which lose their oldest traders,
count those gone at the front instead) or its chunks hold twice as many entries as it has. A
part changed any other way is written anew. So a block writes, per token, a chunk per part
it changed, `d` when it changed and the version: a field per row was tried first and cost
the script more than the whole documents had (thousands of fields per block).

Each commit is one script that first checks every key is still the version this process read
(the optimistic compare-and-set of kades.runtime.state: the other keys -- pools, creators,
fundings -- stay JSON strings checked by their SHA-1, and the outbox works alike). A random version rather than a counter: a key that expired and was made
again can never look like the one a process remembers. A token key that still holds a JSON
string (written before this layout) is read as JSON and replaced by its hash at its next
commit, checked by the string's SHA-1.

The process keeps what it last read or committed of each key (bounded in bytes), so a block
of known tokens is one round trip, and builds each compute's documents fresh from it: new
lists of the same (immutable) rows, a copy of the holders and of the sizes (their lists
copied), the rest decoded. The documents a compute gets are those JSON would give (row lists
as rows, which kades.chain.state reads alike; the holders as a Holders, a dict that notes the
wallets set), so the detectors' results do not depend on the store.

All chain keys carry the {chain} hash tag (whale-detection's {whales}; kades.keys), so every
script's keys sit in one slot of a Redis Cluster.
"""
from __future__ import annotations

import functools
import json
import os
import threading
from collections import OrderedDict
from itertools import compress, islice, repeat
from operator import is_not, itemgetter, ne

from kades.chain.codec import ROWS, _default, _scalar_dict, _text
from kades.chain.ordering import WaitingSlot
from kades.jsontext import compact_json, loads
from kades.keys import CHAIN_TOKEN
from kades.runtime.bulkhead import PASSED_ON, StateNotEncoded
from kades.runtime.reorder import ReorderBuffer
from kades.runtime.state import (OUTBOX_TTL_S, KeyTurns, digest, outbox_ttl, worth_keeping,
                                 until_committed)

HOLDERS = "holders"
# whale-detection's traders' last swap sizes (kades.whales.state): a part whose chunks are the
# fields `sizes#<n>` (the traders gone at its front counted in `sizes.skip`), not listed in
# `k`, with {} in their place in `d`. A reader from before the part (which reads the
# `<part>:<n>` fields of the parts `k` lists) reads a token it wrote as one without sizes, and
# a writer from before writes its sizes in `d` again (_from_fields).
SIZES = "sizes"
_SIZES_HELD = b'"sizes":{}'  # `d` with the sizes in a part (or none), as compact JSON has it
_SIZES_SKIP = b"sizes.skip"  # the field of the sizes' keys gone at the front (none: 0)
PENDING = "reorder.pending"  # the reorder buffer's waiting slots, [time, id, payload, arrival] each
_ID = itemgetter(1)  # a waiting entry's id
MAX_CHUNKS = 128  # a part of more chunks is written anew as one (reading it stays cheap)
# What a process keeps of the keys it last read or committed, in bytes of memory, as counted by
# `_Token.size`. The busy tokens must fit: a token active in every slot holds the reorder
# buffer's 75 waiting slots, ~330 kB at 10 records a slot, and when they do not fit, every
# block reads and decodes each of them again (200 such tokens: 66 MB, and 1.4 s a
# 2,000-record block when 8 MB were kept; docs/performance.md). The function's memory limit
# is 512 Mi (functions/chain-analysis/func.yaml).
CACHE_BYTES = 128 << 20
# What a kept part costs in memory per byte of its JSON (tracemalloc, tokens read into a
# cache): rows and holders, kept as Python objects, 4.1x; waiting slots and the rest of the
# document, kept as their text, 1.1x.
ROWS_IN_MEMORY = 4
# Whether a key still holds what a process read: '' nothing, 's' .. SHA-1 a string (41
# characters), otherwise a hash of that version (16). Asked the way the key was read, so a
# key that changed type fails the check rather than the script (pcall).
_MATCHES = """
local function matches(key, was)
  if was == '' then return redis.call('EXISTS', key) == 0 end
  if #was == 41 then
    local raw = redis.pcall('GET', key)
    return type(raw) == 'string' and 's' .. redis.sha1hex(raw) == was
  end
  return redis.pcall('HGET', key, 'v') == was
end
"""
# KEYS: the n states, then the outbox key if any, then the waiting set if any. ARGV: n, the
# TTL, the outbox value and its TTL ('' '' without one), the number w of waiting-set pairs,
# then per key: what it was ('' absent, 's'..sha1 a string, else a
# hash's version), how to write it ('' unchanged, 'S' a string, 'H' hash fields, 'R' a hash
# replacing the key), its argument count m, then m arguments: S: the bytes; H and R: the
# number of fields to delete, those fields, then field, value pairs; then w (member, score)
# pairs (score '': nothing waits, the member leaves the set). Returns 0 on a conflict, 1 when
# committed, or the outbox value an earlier attempt committed.
_COMPARE_AND_WRITE = _MATCHES + """
local n, ttl, w = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[5])
local outbox = #KEYS > n + (w > 0 and 1 or 0)
if outbox then
  local earlier = redis.call('GET', KEYS[n + 1])
  if earlier then return earlier end
end
local at, writes = 6, {}
for i = 1, n do
  local was, mode, m = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
  if not matches(KEYS[i], was) then return 0 end
  writes[i] = {mode, at + 3, m, #was == 41}
  at = at + 3 + m
end
local function each(command, key, from, to, step)  -- in runs: unpack has a stack limit
  for at = from, to, step do redis.call(command, key, unpack(ARGV, at, math.min(at + step - 1, to))) end
end
for i = 1, n do
  local key, mode, first, m, was_string = KEYS[i], writes[i][1], writes[i][2], writes[i][3], writes[i][4]
  if mode == 'S' then
    redis.call('SET', key, ARGV[first], 'EX', ttl)
  elseif mode ~= '' then
    if mode == 'R' or was_string then redis.call('DEL', key) end
    local deletes = tonumber(ARGV[first])
    if mode == 'H' then each('HDEL', key, first + 1, first + deletes, 1000) end
    each('HSET', key, first + deletes + 1, first + m - 1, 1000)
    redis.call('EXPIRE', key, ttl)
  end
end
if outbox and ARGV[3] ~= '' then redis.call('SET', KEYS[n + 1], ARGV[3], 'EX', ARGV[4]) end
for i = 0, w - 1 do
  local member, score = ARGV[at + 2 * i], ARGV[at + 2 * i + 1]
  if score == '' then redis.call('ZREM', KEYS[#KEYS], member)
  else redis.call('ZADD', KEYS[#KEYS], score, member) end
end
return 1
"""
# KEYS: token keys. Each one's fields and values (flat), or {'', bytes} for a JSON string.
_READ = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('TYPE', key).ok == 'string' then out[i] = {'', redis.call('GET', key)}
  else out[i] = redis.call('HGETALL', key) end
end
return out
"""


class _Log:
    """A part as stored: its value (a row list's rows as a tuple, the waiting slots' ids, or a
    copy of the holders), its chunks [(number, entries, bytes of JSON)] in order (the text is
    written, not kept: the value is what is read), the entries of
    the first chunk that are gone (rows leave at the front), the next chunk's number and the
    chunks' size; for the waiting slots, `slots`: each one's (slot, id, WaitingSlot, arrival),
    the payload kept as its entry's text until released. For the sizes (SIZES), `skip` counts
    the keys gone at the front of what its chunks replay, and `gone` holds those keys."""

    __slots__ = ("value", "chunks", "skip", "next", "size", "slots", "gone")

    def __init__(self, value, chunks: list[tuple[int, int, int]], skip: int, next_number: int,
                 size: int | None = None, slots: tuple | None = None, gone: frozenset = frozenset()):
        self.value, self.chunks, self.skip, self.next = value, chunks, skip, next_number
        self.size = sum(length for _, _, length in chunks) if size is None else size
        self.slots, self.gone = slots, gone

    def replaced(self, name: str, value, text: str, entries: int) -> tuple[_Log, list[str], list[str]]:
        """This part written anew as one chunk: (the part, its old chunks' fields, the new one)."""
        deleted = [_field(name, n) for n, _, _ in self.chunks]
        if not entries:
            return _Log(value, [], 0, self.next, 0), deleted, []
        chunk = (self.next, entries, len(text))
        return _Log(value, [chunk], 0, self.next + 1, len(text)), deleted, [_field(name, self.next), text]

    def appended(self, name: str, value, skip: int, text: str, entries: int
                 ) -> tuple[_Log, list[str], list[str]]:
        """This part with `skip` entries gone at its front and a chunk of `entries` more."""
        gone, size = 0, self.size
        while gone < len(self.chunks) and skip >= self.chunks[gone][1]:
            skip -= self.chunks[gone][1]
            size -= self.chunks[gone][2]
            gone += 1
        deleted = [_field(name, n) for n, _, _ in self.chunks[:gone]]
        if not entries:
            return _Log(value, self.chunks[gone:], skip, self.next, size), deleted, []
        chunks = self.chunks[gone:] + [(self.next, entries, len(text))]
        return (_Log(value, chunks, skip, self.next + 1, size + len(text)), deleted,
                [_field(name, self.next), text])

    def entries(self) -> list:
        """The waiting slots' entries, a fresh list of them (a compute changes the list; an
        entry, never changed while it waits, is the tuple kept)."""
        return list(self.slots)


EMPTY = _Log(None, [], 0, 0)


def _field(name: str, number: int) -> str:
    """The field of a part's chunk: `<part>:<n>`, the sizes' `sizes#<n>` (SIZES)."""
    return f"{name}#{number}" if name == SIZES else f"{name}:{number}"


class Holders(dict):
    """A token's holders as a compute gets them (_Token.document): a copy of the stored ones
    that notes each wallet set in it, so that the commit finds what changed among the wallets
    set rather than by comparing every holder (_keyed_delta: 0.25 ms a token of ~5,000
    holders at every block; a holder set costs ~100 ns more than on a plain dict). Any other
    change (a wallet removed, `update`, `setdefault`, `|=`, ...) ends the noting: the commit
    then compares them all, as a plain dict's. Copied or pickled, it is a plain dict."""

    __slots__ = ("_base", "changed")

    def __init__(self, base: dict):
        super().__init__(base)
        self._base = base     # the stored value it copies (its _Log's); None: not noting
        # the wallets set, in the order first set: a new wallet's place in the holders is
        # where a reader meets it first, so the chunk must name the new ones in this order
        self.changed = {}

    def __setitem__(self, wallet, amount) -> None:
        self.changed[wallet] = None
        dict.__setitem__(self, wallet, amount)

    def __reduce__(self):
        return dict, (dict(self),)

    def copies(self, stored: dict | None) -> bool:
        """Whether these are the holders `stored` (a part's value) was copied into, changed
        only by setting wallets since."""
        return stored is not None and self._base is stored


def _ends_noting(method):
    @functools.wraps(method)
    def changes(self, *args, **kwargs):
        self._base = None
        return method(self, *args, **kwargs)
    return changes


for _mutator in ("__delitem__", "__ior__", "clear", "pop", "popitem", "setdefault", "update"):
    setattr(Holders, _mutator, _ends_noting(getattr(dict, _mutator)))
del _mutator


class _Token:
    """A token hash as this process last read or committed it."""

    __slots__ = ("version", "rest", "parts", "size", "skips")

    def __init__(self, version: str, rest: str, parts: dict[str, _Log]):
        self.version, self.rest, self.parts = version, rest, parts
        self.size = len(rest) + sum(part.size if name == PENDING else ROWS_IN_MEMORY * part.size
                                    for name, part in parts.items())
        # field k: the parts a reader from before the sizes part knows (SIZES)
        self.skips = _text({name: part.skip for name, part in parts.items() if name != SIZES})

    def document(self) -> dict:
        doc = loads(self.rest)
        for name, part in self.parts.items():
            if name == PENDING:  # decoded afresh: payloads are dicts, which nobody may share
                doc["reorder"]["pending"] = part.entries()
            elif name == HOLDERS:
                doc[name] = Holders(part.value)
            elif name == SIZES:  # its lists copied: a compute changes them in place
                doc[name] = _sizes_copy(part.value)
            else:
                doc[name] = list(part.value)
        return doc


def _from_fields(fields: dict[bytes, bytes]) -> _Token:
    """A token hash's fields (HGETALL) as a _Token."""
    skips = loads(fields[b"k"])
    chunks: dict[str, list] = {name: [] for name in skips}
    for field, value in fields.items():
        name, sep, number = field.decode().partition(":")
        if sep:
            chunks[name].append((int(number), value.decode()))
        else:
            name, sep, number = name.partition("#")
            if name == SIZES and sep:  # (v, d, k and sizes.skip are no chunks)
                chunks.setdefault(name, []).append((int(number), value.decode()))
    if SIZES in chunks or fields[b"d"].find(_SIZES_HELD) >= 0:
        # the sizes are a part where `d` holds {} in their place; otherwise a writer from
        # before the part wrote them in `d`, and its chunks are stale: left out, and gone at
        # the next commit that keeps the sizes as a part (a new part: the key written anew)
        if (loads(fields[b"d"]) or {}).get(SIZES) == {}:
            skips = {**skips, SIZES: int(fields.get(_SIZES_SKIP, 0))}
        else:
            chunks.pop(SIZES, None)
    parts = {}
    for name, skip in skips.items():
        found = sorted(chunks.get(name, ()))
        gone = frozenset()
        if name in KEYED:  # the chunks replayed in order: a wallet keeps its first place
            value = loads("{" + ",".join(text for _, text in found) + "}")
            counts = [len(loads("{" + text + "}")) for _, text in found]
            if name == SIZES and skip:  # keys gone at the front
                gone = frozenset(islice(value, skip))
                value = dict(islice(value.items(), skip, None))
        else:
            decoded = [loads("[" + text + "]") for _, text in found]
            counts = list(map(len, decoded))
            rows = [row for rows in decoded for row in rows][skip:]
            value = tuple(entry[1] for entry in rows) if name == PENDING else tuple(map(ROWS[name]._make, rows))
        slots = None if name != PENDING else tuple(  # a chunk of one slot is that slot's text
            slot for (_, text), entries in zip(found, decoded)
            for slot in _waiting_slots(entries, [text] if len(entries) == 1 else None))[skip:]
        parts[name] = _Log(value, [(n, c, len(text)) for (n, text), c in zip(found, counts)], skip,
                           found[-1][0] + 1 if found else 0, slots=slots, gone=gone)
    return _Token(fields[b"v"].decode(), fields[b"d"].decode(), parts)


def _rows_delta(name: str, old: _Log, rows: list) -> tuple[_Log, list[str], list[str]] | None:
    """The stored row list after `rows`, the fields to delete and the pairs to write (None
    when a new row is not of the list's kind). A window loses rows at its front and gains
    them at its end: when `rows` is a run of the old rows up to their end and then new
    ones, the front is skipped (its chunks deleted once wholly gone) and the new rows are
    one new chunk; otherwise (or at MAX_CHUNKS) the list is written anew. Rows are compared
    by value, which for the rows a window kept is by identity, at C speed; the waiting
    slots (PENDING) by their ids, unique per mint (a slot is never changed while it waits)."""
    if name == PENDING:
        # a tuple is an entry this store kept (_waiting_slots): only the others are checked,
        # which are few (a mint's 75 waiting slots take one more a block)
        fresh = compress(rows, map(is_not, map(type, rows), repeat(tuple)))
        if not all(type(e) is list and len(e) == 4 and type(e[1]) is str and _payload(e[2])
                   for e in fresh):
            return None
        keys, fits = tuple(map(_ID, rows)), (lambda new: True)
    else:
        kind = ROWS[name]
        keys, fits = tuple(rows), (lambda new: set(map(type, new)) <= {kind})
    before = old.value or ()
    if old.value is not None and keys == before:  # unchanged (most blocks leave some lists alone)
        return old, [], []
    kept, start = 0, len(before)
    if keys and before:
        try:
            start = before.index(keys[0])
        except ValueError:
            pass
        kept = min(len(keys), len(before) - start)
        if kept and before[start:start + kept] != keys[:kept]:
            kept = -1
    if kept >= 0 and start + kept == len(before) and len(old.chunks) < MAX_CHUNKS:
        new = rows[kept:]  # a run up to the old rows' end, then new ones
        if not fits(new):
            return None
        if name != PENDING:
            return old.appended(name, keys, old.skip + start, _text(new)[1:-1], len(new))
        slots = _waiting_slots(new)
        delta = old.appended(name, keys, old.skip + start, _joined(slots), len(new))
        delta[0].slots = (old.slots or ())[start:start + kept] + slots
        return delta
    if not fits(rows):
        return None
    if name != PENDING:
        return old.replaced(name, keys, _text(rows)[1:-1], len(rows))
    slots = _waiting_slots(rows)
    delta = old.replaced(name, keys, _joined(slots), len(rows))
    delta[0].slots = slots
    return delta


def _payload(value) -> bool:
    """Whether `value` is a waiting slot's payload (a mint_items payload: a dict)."""
    return type(value) is WaitingSlot or type(value) is dict


def _waiting_slots(entries: list, texts: list[str] | None = None) -> tuple:
    """The waiting slots `entries`, each (slot, id, WaitingSlot, arrival): an entry not yet
    kept gets its JSON text (`texts`' when given, as read from Redis)."""
    slots = []
    for k, entry in enumerate(entries):
        if type(entry) is not tuple:  # a list: [slot, id, payload, arrival]
            slot, slot_id, payload, arrival = entry
            text = texts[k] if texts is not None else _text(entry)
            entry = (slot, slot_id, WaitingSlot(text, payload if type(payload) is dict else
                                                loads(text)[2]), arrival)
        slots.append(entry)
    return tuple(slots)


def _joined(slots: tuple) -> str:
    """The chunk that holds `slots`: their texts, comma-separated."""
    return ",".join(slot[2].text for slot in slots)


def _sizes_dict(value) -> bool:
    """A dict of str -> list of numbers (whale-detection's sizes): a copy of it, its lists
    copied, is what JSON would give back."""
    return (type(value) is dict and set(map(type, value)) <= {str}
            and set(map(type, value.values())) <= {list}
            and all(set(map(type, sizes)) <= _NUMBERS for sizes in value.values()))


_NUMBERS = frozenset({int, float})
# The parts kept as a dict, written as chunks of the entries a commit changed and read back as
# those chunks' JSON objects replayed in order (an entry keeps its first place, with its last
# value): the check that a dict is one (else it stays in `d`), and the copy the store keeps of
# it (a compute changes the sizes' lists in place: the store's own are copies, compared with a
# compute's to find what changed).
KEYED = {HOLDERS: _scalar_dict, SIZES: _sizes_dict}


def _sizes_copy(sizes: dict) -> dict:
    return dict(zip(sizes, map(list, sizes.values())))


def _kept_copy(name: str, value: dict) -> dict:
    return _sizes_copy(value) if name == SIZES else dict(value)  # (a Holders: a plain dict)


def _keyed_delta(name: str, old: _Log, amounts: dict) -> tuple[_Log, list[str], list[str]] | None:
    """The stored keyed part (KEYED: the holders, or whale-detection's sizes) after `amounts`,
    the fields to delete and the pairs to write (None when not a dict of the part's kind):
    when the old keys are still the first ones, in order (a block adds wallets and changes
    their values), a chunk of what changed, replayed after the others when read; otherwise,
    or once the chunks hold twice the entries (or MAX_CHUNKS), the part anew as one chunk.
    Only what changed is checked and encoded."""
    before = old.value
    kept = len(before) if before is not None else 0
    if type(amounts) is Holders and amounts.copies(before):
        # only the wallets set can differ, and the old ones keep their places (nothing was
        # removed): the same chunk, the old wallets in it in another order (their places are
        # the stored ones'), the new ones in the order they joined (Holders.changed)
        chunk = {wallet: amounts[wallet] for wallet in amounts.changed
                 if wallet not in before or amounts[wallet] != before[wallet]}
        return _keyed_chunk(name, old, amounts, chunk)
    # the sizes lose their oldest traders at the front (whale-detection keeps the newest 5,000):
    # those gone are counted, as a row list's are
    start = _gone_at_front(before, amounts) if name == SIZES else 0
    kept -= start
    if (before is not None and len(amounts) >= kept
            and list(islice(amounts, kept)) == list(islice(before, start, None))):
        # what changed, in the part's order: the old keys whose value differs, found by
        # comparing the two dicts' values in step at C speed (a dict comprehension with a
        # lookup per wallet cost twice as much, a set of all their items three times), then
        # the new keys, which a dict keeps after the old ones
        differs = compress(islice(before, start, None),
                           map(ne, islice(amounts.values(), kept), islice(before.values(), start, None)))
        chunk = {wallet: amounts[wallet] for wallet in differs}
        chunk.update(islice(amounts.items(), kept, None))
        gone = old.gone.union(islice(before, start)) if start else old.gone
        if gone and not gone.isdisjoint(islice(amounts, kept, None)):
            return _keyed_anew(name, old, amounts)  # a key back after it went: its old place
        return _keyed_chunk(name, old, amounts, chunk, start, gone)
    return _keyed_anew(name, old, amounts)


def _gone_at_front(before: dict | None, amounts: dict) -> int:
    """How many of `before`'s first keys `amounts` no longer has, when its first key is one of
    `before`'s (0 otherwise, or when nothing went)."""
    if not before or not amounts:
        return 0
    first = next(iter(amounts))
    if first not in before or first == next(iter(before)):
        return 0
    return list(before).index(first)


def _keyed_chunk(name: str, old: _Log, amounts: dict, chunk: dict, start: int = 0,
                 gone: frozenset = frozenset()) -> tuple[_Log, list[str], list[str]] | None:
    """_keyed_delta's answer when the old keys keep their places: `chunk` (what changed)
    appended, `start` more keys gone at the front (`gone`: all those gone since the part was
    written anew), or the part anew once the chunks would hold twice its entries."""
    if not chunk and not start:
        return old, [], []
    if chunk and not KEYED[name](chunk):
        return None
    logged = sum(entries for _, entries, _ in old.chunks) + len(chunk)
    if logged > 2 * len(amounts) + 64 or len(old.chunks) >= MAX_CHUNKS:
        return _keyed_anew(name, old, amounts)
    value = _kept_copy(name, amounts)
    if chunk:
        log, deleted, written = old.appended(name, value, 0, _text(chunk)[1:-1], len(chunk))
    else:  # only keys gone at the front
        log, deleted, written = _Log(value, old.chunks, 0, old.next, old.size), [], []
    log.skip, log.gone = old.skip + start, gone
    return log, deleted, written


def _keyed_anew(name: str, old: _Log, amounts: dict) -> tuple[_Log, list[str], list[str]] | None:
    """The keyed part written anew as one chunk (None when not a dict of its kind)."""
    value = dict(amounts)  # a plain dict: the checks take a dict, not a Holders
    if not KEYED[name](value):
        return None
    value = _kept_copy(name, value)
    return old.replaced(name, value, _text(value)[1:-1], len(value))


def _token_write(old: _Token | None, doc: dict, plain: frozenset = frozenset()
                 ) -> tuple[_Token | None, str, list]:
    """(the token as it will be stored, the write mode, the mode's arguments); mode '' and
    None when the document is the one stored. Parts: the row lists of rows of their kind,
    the holders when a dict of str -> scalar, the reorder buffer's waiting slots; anything
    else goes in `d` as it is."""
    rest, parts, deleted, written = {}, {}, [], []
    values = {n: v for n, v in doc.items() if n not in plain
              and ((n in ROWS and type(v) is list) or (n in KEYED and type(v) in (dict, Holders)))}
    reorder = doc.get("reorder")
    if PENDING not in plain and type(reorder) is dict and type(reorder.get("pending")) is list:
        values[PENDING] = reorder["pending"]
    if SIZES in values:  # the last part, as a reader finds it (_from_fields)
        values[SIZES] = values.pop(SIZES)
    replace = old is None or list(old.parts) != list(values)
    for name, value in values.items():
        before = EMPTY if replace else old.parts[name]
        delta = _keyed_delta(name, before, value) if name in KEYED else _rows_delta(name, before, value)
        if delta is None:  # rows of another kind, holders not scalars: not a part after all
            return _token_write(old, doc, plain | {name})
        parts[name] = delta[0]
        deleted += delta[1]
        written += delta[2]
    for name, value in doc.items():
        # in a part's place null; in the sizes' {}, what a reader from before the part takes
        # for none: it loses what they held, not the token (_from_fields, docs/operations.md)
        rest[name] = value if name not in values else {} if name == SIZES else None
    if PENDING in values:
        rest["reorder"] = {**reorder, "pending": None}
    rest = compact_json(rest, _default).decode()
    token = _Token("", rest, parts)
    skips = token.skips
    if SIZES in parts:  # (not in k, which a reader from before the part reads)
        was = old.parts[SIZES].skip if not replace else 0
        if parts[SIZES].skip != was:
            written += [_SIZES_SKIP.decode(), str(parts[SIZES].skip)]
    if not replace and not deleted and not written and rest == old.rest and skips == old.skips:
        return None, "", []
    token.version = os.urandom(8).hex()
    written += ["v", token.version] + (["d", rest] if replace or rest != old.rest else [])
    written += ["k", skips] if replace or skips != old.skips else []
    deleted = [] if replace else deleted
    return token, "R" if replace else "H", [len(deleted), *deleted, *written]


class TokenStore:
    """kades.runtime.state.StateStore's contract (update, current, forget) for chain-analysis
    and whale-detection: token keys (those starting with `prefix`) in parts, every other key a
    JSON string."""

    def __init__(self, *, ttl_s: int, cache_bytes: int = CACHE_BYTES, max_attempts: int = 8,
                 prefix: str = CHAIN_TOKEN.format(token="")):
        self.ttl_s, self.cache_bytes, self.max_attempts = ttl_s, cache_bytes, max_attempts
        self.prefix = prefix
        # key -> what it was: a _Token, the bytes of a string (or None: absent)
        self._cache: OrderedDict[str, _Token | bytes | None] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()  # a function serves requests on several threads
        self._turns = KeyTurns()  # its threads take turns per key (as StateStore's)

    def update(self, client, keys: list[str], compute, *, outbox: str | None = None,
               outbox_ttl_s: int = OUTBOX_TTL_S, waiting: tuple[str, dict[str, str]] | None = None,
               keep_empty=False):
        """Apply `compute` to the states of `keys` atomically; its result once committed
        (kades.runtime.state.StateStore.update, outbox and `keep_empty` included). `waiting` (a sorted set's
        key, state key -> member) is kept true in the same script: each member scored with
        when its new state's reorder buffer's oldest item came, removed when none waits."""
        script = client.register_script(_COMPARE_AND_WRITE)

        def attempt():
            stored = self._read(client, keys)
            states, result = compute([self._document(key, was) for key, was in zip(keys, stored)])
            args, after = [], []
            for key, was, state in zip(keys, stored, states):
                try:
                    mode, write, now = self._write(key, was, state)
                except PASSED_ON:
                    raise
                except Exception as error:  # noqa: BLE001 - the caller's bulkhead's
                    raise StateNotEncoded(key) from error
                args += [self._version(was), mode, len(write), *write]
                after.append(now)
            kept, listed = "", []
            if outbox is not None and worth_keeping(result, keep_empty):
                kept = json.dumps(result, separators=(",", ":"))
            new = dict(zip(keys, states)) if waiting else {}
            for key, member in (waiting[1].items() if waiting else ()):
                wait = ReorderBuffer.oldest_wait_s((new[key] or {}).get("reorder") or {})
                listed += [member, "" if wait is None else repr(wait)]
            # Even when nothing changed (a replay) the script runs: it proves that the states
            # computed from were still the current ones.
            answer = script(keys=[*keys, *([outbox] if outbox is not None else []),
                                  *([waiting[0]] if listed else [])],
                            args=[len(keys), self.ttl_s, kept, outbox_ttl(result, outbox_ttl_s) if kept else "",
                                  len(listed) // 2, *args, *listed])

            def committed():
                for key, now in zip(keys, after):
                    self._remember(key, now)
            return answer, result, committed

        with self._turns.held(keys):
            return until_committed(attempt, max_attempts=self.max_attempts,
                                   forget=lambda: self._drop_all(keys))

    def _drop_all(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._drop(key)

    def current(self, client, keys: list[str]) -> list[dict | None]:
        """The states of `keys` as last committed (from this process's cache when it has them)."""
        return [self._document(key, was) for key, was in zip(keys, self._read(client, keys))]

    def forget(self) -> None:
        """Drop the in-process cache (tests; a state reset)."""
        with self._lock:
            self._cache.clear()
            self._cached_bytes = 0

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def _is_token(self, key: str) -> bool:
        return key.startswith(self.prefix)

    def _document(self, key: str, was):
        if was is None:
            return None
        if type(was) is _Token:
            return was.document()
        doc = loads(was)  # a string: any other key, or a token written before this layout
        if self._is_token(key) and type(doc) is dict:
            for name, kind in ROWS.items():
                rows = doc.get(name)
                if type(rows) is list and all(type(r) is list and len(r) == len(kind._fields) for r in rows):
                    doc[name] = list(map(kind._make, rows))
        return doc

    @staticmethod
    def _version(was) -> str:
        if was is None:
            return ""
        return was.version if type(was) is _Token else "s" + digest(was)

    def _write(self, key: str, was, state) -> tuple[str, list, object]:
        """(mode, arguments, what the key holds after) for the script."""
        if self._is_token(key) and type(state) is dict:
            now, mode, args = _token_write(was if type(was) is _Token else None, state)
            return (mode, args, now) if mode else ("", [], was)
        raw = compact_json(state, _default)
        if type(was) is _Token or self._is_token(key):  # not a token document: a string again
            return "S", [raw], raw
        return ("", [], was) if raw == was else ("S", [raw], raw)

    def _read(self, client, keys: list[str]) -> list:
        with self._lock:
            found = {key: self._cache[key] for key in keys if key in self._cache}
        tokens = [key for key in keys if key not in found and self._is_token(key)]
        others = [key for key in keys if key not in found and not self._is_token(key)]
        if tokens:
            read = client.register_script(_READ)
            for key, fields in zip(tokens, read(keys=tokens)):
                if not fields:
                    found[key] = None
                elif fields[0] == b"":
                    found[key] = fields[1]
                else:
                    found[key] = _from_fields(dict(zip(fields[::2], fields[1::2])))
        if others:
            found.update(zip(others, client.mget(others)))
        for key in tokens + others:
            self._remember(key, found[key])
        return [found[key] for key in keys]

    def _remember(self, key: str, was) -> None:
        with self._lock:
            self._drop(key)
            self._cache[key] = was
            self._cached_bytes += _size(key, was)
            while self._cached_bytes > self.cache_bytes and self._cache:
                self._drop(next(iter(self._cache)))  # the least recently used

    def _drop(self, key: str) -> None:
        if key in self._cache:
            self._cached_bytes -= _size(key, self._cache.pop(key))


def _size(key: str, was) -> int:
    if type(was) is _Token:
        return len(key) + was.size
    return len(key) + (len(was) if was else 0)
