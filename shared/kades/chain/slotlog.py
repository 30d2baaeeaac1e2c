"""Each slot's context as a function recorded it (the SOL fundings that seed wallets, the SOL
price), appended once per slot to a Redis stream, and each process's view of it.

chain-analysis and whale-detection kept these in one shared JSON document, compared and set
with the tokens of every event. A slot comes as one event per mint (kades.solana.parts), each
carrying the slot's context, so every event read, decoded, encoded and hashed the whole
document, and every event of every replica raced on its one key: at its 20,000 wallets (1 MB),
50 ms an event whose own work took 1 (docs/performance.md, "Fundings as a log").

A slot's context is a fact of that slot: the same in each of its parts and at every delivery.
So it needs no compare-and-set: the first event of a slot appends it (a sorted set of the slots
seen makes that once), and every event reads what was appended since its process last looked,
in the same round trip, and applies it to the process's view (kades.chain.funding.Fundings,
slot by slot in the stream's order, so that every process that read the same entries has the
same view, however many it took at a time). Analysis syncs after it has read the states it
analyses, at every attempt, and reads the view as of the slot it analyses (FundersAsOf): any
slot whose state another process committed had its context appended before that commit. A
process that was away longer than the stream keeps (the TTL and KEEP_S) builds its view
again from what the stream holds, as a new one does.

The log also keeps the slots' watermark: every slot up to it has a part committed by some
process (`arrived`, after each commit). With the links the source sends (each slot's previous
slot, kades.solana.parts), a mint's slot whose previous slot is within the watermark has
everything before it in: its fundings in the log, its launches in the creators' documents.
kades.chain.ordering releases such a slot at once rather than after the lateness. A slot
without a link, or after a gap (a source restarted, a part lost), waits as before: the
watermark is never behind the newest slot by more than the lateness.

Without a Redis client (offline eval, benchmarks, tests) the log is the process's own, and
has no watermark.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from operator import lt
from weakref import WeakKeyDictionary

from kades.chain.funding import Fundings
from kades.chain.ordering import KEEP_S, SLOT_SLACK_S
from kades.events.catalogue import MIN_SLOT_S
from kades.jsontext import compact_json, loads
from kades.keys import unblocked_key
from kades.runtime.state import OUTBOX_TTL_S

logger = logging.getLogger("kades.chain")
PRICES_KEPT = 256   # slots' SOL/USD kept: more than the reorder buffer's 75 slots of lateness
PRICE_TTL_S = 3600.0  # a slot's SOL/USD older than this prices nothing (price_as_of)
PAGE = 1000         # stream entries a sync reads at most in one call (a new process's first
                    # read of an hour's slots: a few calls, none near the client's timeout)
RESTART_SLOTS = 1500  # a slot committed this far (10 min) behind the newest restarts the watermark
UNBLOCKED_MAX = 100   # mints one commit has released for the watermark it moved, at most
SEEN_KEPT = 20_000  # slots remembered as appended (~2 h of slots); one older than all of them
                    # is not appended again (a replay of old events: its fundings expired)

# KEYS: the stream, the sorted set of slots appended. ARGV: the slot, its record ('' for
# none), the stream id read up to ('' for none), the oldest id kept, SEEN_KEPT, the keys' TTL.
# KEYS[3], when given: the watermark's hash (read).
# Returns the stream's first id ('' when empty), up to PAGE of its entries after the id read
# up to (none for the id '+': an append alone) and the watermark ('' for none).
_SYNC = """
local function new_slot(slot, kept)
  if redis.call('ZCARD', KEYS[2]) >= kept then
    local lowest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    if tonumber(slot) < tonumber(lowest[2]) then return false end
  end
  return redis.call('ZADD', KEYS[2], 'NX', slot, slot) == 1
end
if ARGV[2] ~= '' and new_slot(ARGV[1], tonumber(ARGV[5])) then
  redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[4], '*', 'r', ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[5]) - 1)
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
first = first[1] and first[1][1] or ''
if ARGV[3] == '+' then return {first, {}, ''} end
local from = ARGV[3] == '' and '-' or '(' .. ARGV[3]
local watermark = KEYS[3] and redis.call('HGET', KEYS[3], 'w') or false
return {first, redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', ARGV[7]), watermark or ''}
"""

# KEYS: the watermark's hash {w, newest, newest_s}, the sorted set of slots committed past it
# (each scored by its previous slot, or by itself when it has none), the sorted set of mints
# blocked (each scored by the watermark its waiting slot needs, the least kept), and, when
# given, the event's list of mints it took from that set (kades.keys.unblocked_key). ARGV: the
# slot committed, its previous slot ('' for none), its block time, the lateness in slots, the
# keys' TTL, the slack (s) and the shortest slot time (s) of kades.chain.ordering.impossible,
# RESTART_SLOTS, UNBLOCKED_MAX, the event list's TTL, then (needed, mint) of each mint the
# commit left blocked. Returns the watermark and up to UNBLOCKED_MAX mints it no longer
# blocks, taken out; an event that took some before (a retry) gets the same again. The first
# slot ever seen starts the watermark the lateness before that slot.
# Then a slot whose previous slot is within the watermark moves it to that slot, and on
# through the slots waiting past it; and it is never further behind the newest slot committed
# than the lateness (as a mint's buffer takes its own slots that far behind its newest), so
# that a gap (a source restarted, a lost slot) holds it no longer than the lateness does.
# A slot further past the newest than the time between their blocks allows is not taken; one
# RESTART_SLOTS behind the newest starts it again (lower, which only makes slots wait): the
# newest was not true (one block days ahead came first), or the stream went back.
_ARRIVED = """
local slot, previous, time_s = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local held = redis.call('HMGET', KEYS[1], 'w', 'newest', 'newest_s')
local w, newest, newest_s = tonumber(held[1]), tonumber(held[2]), tonumber(held[3])
for i = 11, #ARGV, 2 do redis.call('ZADD', KEYS[3], 'LT', ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[3], ARGV[5])
if newest ~= nil and slot > newest and
    slot - newest > math.max(0, time_s - newest_s + tonumber(ARGV[6])) / tonumber(ARGV[7]) then
  return {string.format('%d', w), {}}
end
if w == nil or slot < newest - tonumber(ARGV[8]) then
  w, newest, newest_s = math.floor(slot - tonumber(ARGV[4])), slot, time_s
  redis.call('DEL', KEYS[2])
end
if slot > newest then newest, newest_s = slot, time_s end
if slot > w then
  if previous ~= nil and previous <= w then w = slot
  else redis.call('ZADD', KEYS[2], previous or slot, slot) end
end
if newest - tonumber(ARGV[4]) > w then w = math.floor(newest - tonumber(ARGV[4])) end
while true do
  local ready = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', w)
  if #ready == 0 then break end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', w)
  for _, s in ipairs(ready) do
    if tonumber(s) > w then w = tonumber(s) end
  end
end
redis.call('HSET', KEYS[1], 'w', string.format('%d', w), 'newest', string.format('%d', newest),
           'newest_s', tostring(newest_s))
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local unblocked = KEYS[4] and redis.call('LRANGE', KEYS[4], 0, -1) or {}
if #unblocked == 0 then
  unblocked = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', w, 'LIMIT', 0, tonumber(ARGV[9]))
  if #unblocked > 0 then
    redis.call('ZREM', KEYS[3], unpack(unblocked))
    if KEYS[4] then
      redis.call('RPUSH', KEYS[4], unpack(unblocked))
      redis.call('EXPIRE', KEYS[4], ARGV[10])
    end
  end
end
return {string.format('%d', w), unblocked}
"""


def _stream_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class SlotLog:
    """One function's log of slot contexts (`stream_key`, `slots_key`: kades.keys) and this
    process's view of it: {"funded", "newest_s", "services"} as kades.chain.funding keeps
    them, and "sol_usd": [[slot, time_s, price], ...] in slot order."""

    def __init__(self, stream_key: str, slots_key: str, document_key: str | None = None,
                 watermark_keys: tuple[str, str, str] | None = None):
        self.stream_key, self.slots_key, self.document_key = stream_key, slots_key, document_key
        self.watermark_keys = watermark_keys  # (the hash, the slots past it, the mints blocked)
        self._lock = threading.Lock()  # a function serves requests on several threads
        self._migration = threading.Lock()
        self._fundings: Fundings | None = None
        self._prices: list = []
        self._read_to = ""                    # the stream id applied up to
        self._seen: set[int] = set()          # the slots applied to the view (SEEN_KEPT) ...
        self._seen_order: deque = deque()     # ... the oldest first

    def sync(self, client, record: dict | None, *, ttl_s: float) -> dict:
        """Append `record` ({"slot", "time_s", "fundings": seeding pairs, "sol_usd"?}) unless
        its slot is in the log already (None: only read), then the view with everything the
        log holds applied: read only (_view), and "watermark": every slot up to it has a part
        committed (None: not known)."""
        if client is None:
            with self._lock:
                if record is not None and record["slot"] not in self._seen:
                    self._apply([record], ttl_s)
                return self._view(ttl_s, None)
        if self.document_key is not None:  # once a process, one thread
            with self._migration:
                if self.document_key is not None:
                    self._take_document(client, ttl_s)
                    self.document_key = None
        if record is not None and record["slot"] in self._seen:
            record = None  # in the log already: a slot's later parts, a retry, send nothing
        first, entries, watermark = self._script(client, record, self._read_to, ttl_s)
        page = entries
        while len(page) == PAGE:  # more after this page: a new process's first read
            _, page, _ = self._script(client, None, page[-1][0].decode(), ttl_s)
            entries += page
        first, watermark = first.decode(), int(watermark) if watermark else None
        with self._lock:
            if self._read_to and first and _stream_id(first) > _stream_id(self._read_to):
                # what this process read last is gone from the stream, and perhaps more after
                # it: the view is built again from what the stream holds (this answer, all of
                # it, since it is everything after the id read up to)
                self._fundings, self._prices, self._read_to = None, [], ""
                self._seen, self._seen_order = set(), deque()
            read_to = _stream_id(self._read_to) if self._read_to else (-1, -1)
            new = [(_stream_id(i.decode()), fields) for i, fields in entries]
            new = [(at, fields) for at, fields in new if at > read_to]  # another thread's read
            if new:
                self._apply([loads(dict(zip(f[::2], f[1::2]))[b"r"]) for _, f in new], ttl_s)
                self._read_to = "%d-%d" % new[-1][0]
            return self._view(ttl_s, watermark)

    def _script(self, client, record: dict | None, read_to: str, ttl_s: float):
        retain_s = ttl_s + KEEP_S
        text = compact_json(record).decode() if record is not None and _says_anything(record) else ""
        oldest = f"{max(0, int((time.time() - retain_s) * 1000))}-0"
        return client.register_script(_SYNC)(
            keys=[self.stream_key, self.slots_key, *(self.watermark_keys or ())[:1]],
            args=[record["slot"] if record is not None else 0, text, read_to, oldest,
                  SEEN_KEPT, int(2 * retain_s), PAGE])

    def arrived(self, client, slot: int, previous: int | None, time_s: float, *,
                lateness_slots: float, ttl_s: float, blocked: dict[str, int] | None = None,
                outbox: str | None = None) -> tuple[int | None, list[str]]:
        """Say that a part of `slot` (of a block at `time_s`, whose previous slot the source
        named `previous`) was committed: after the commit, so that the watermark never passes a
        slot whose launches and states are not in Redis yet; and which mints the commit left
        waiting for the watermark alone (`blocked`: mint -> the watermark needed). The
        watermark after it (None without a Redis client or watermark keys: nothing is released
        early), and the mints blocked until it, whose slots the caller has released now: a
        mint's last slot (a rug's removal, often) waited for the stream-flush otherwise. Under
        the event's `outbox` the mints taken are kept, so that a retry releases the same (and
        reads what a release that committed found, from its own outbox)."""
        if client is None or self.watermark_keys is None:
            return None, []
        pairs = [value for mint, needed in (blocked or {}).items() for value in (needed, mint)]
        watermark, unblocked = client.register_script(_ARRIVED)(
            keys=[*self.watermark_keys, *([unblocked_key(outbox)] if outbox is not None else [])],
            args=[slot, "" if previous is None else previous, repr(float(time_s)), lateness_slots,
                  int(2 * (ttl_s + KEEP_S)), SLOT_SLACK_S, MIN_SLOT_S, RESTART_SLOTS,
                  UNBLOCKED_MAX, OUTBOX_TTL_S, *pairs])
        return (int(watermark) if watermark else None), [mint.decode() for mint in unblocked]

    def block(self, client, blocked: dict[str, int], *, ttl_s: float) -> None:
        """List mints whose slot waits for the watermark alone (mint -> the watermark needed)
        where no slot was committed to say it with (`arrived`): a stream-flush's, whose slots
        the next commit that moves the watermark there releases."""
        if client is None or self.watermark_keys is None or not blocked:
            return
        pipe = client.pipeline(transaction=False)
        pipe.zadd(self.watermark_keys[2], blocked, lt=True)
        pipe.expire(self.watermark_keys[2], int(2 * (ttl_s + KEEP_S)))
        pipe.execute()

    def _take_document(self, client, ttl_s: float) -> None:
        """The shared fundings document the log replaced, where a deployment still has one:
        its fundings and prices appended slot by slot (a slot the log has already is not),
        then the document deleted, so that the hour's fundings outlive the upgrade. Each
        process of the new code looks once, at its first sync; what a replica of the code
        before writes after the last of them started stays out of the log (a rolling upgrade's
        minutes), and its key expires. A document that is not one is logged and deleted."""
        raw = client.get(self.document_key)
        if raw is None:
            return
        slots: dict[int, dict] = {}
        try:
            document = loads(raw)
            for wallet, entries in (document.get("funded") or {}).items():
                for funder, time_s, slot in entries:
                    record = slots.setdefault(int(slot), {"slot": int(slot), "time_s": float(time_s),
                                                          "fundings": []})
                    record["fundings"].append([str(funder), str(wallet)])
            for slot, time_s, price in document.get("sol_usd") or []:
                slots.setdefault(int(slot), {"slot": int(slot), "time_s": float(time_s),
                                             "fundings": []})["sol_usd"] = float(price)
        except (ValueError, TypeError, AttributeError) as error:
            logger.warning("%s is no fundings document (%s): deleted, not taken in", self.document_key, error)
            slots = {}
        # a call a slot, not a pipeline of them: a Redis Cluster client's pipeline refuses
        # scripts (redis-py), and this runs once a process, at most an hour's slots
        for slot in sorted(slots):
            self._script(client, slots[slot], "+", ttl_s)
        client.delete(self.document_key)

    def _apply(self, records: list[dict], ttl_s: float) -> None:
        """The records' fundings and prices into the view, in their order (under the lock)."""
        if self._fundings is None:
            self._fundings = Fundings(ttl_s=ttl_s)
        self._fundings.ttl_s = ttl_s
        for record in records:
            self._fundings.record(record["slot"], record["time_s"], record.get("fundings") or [])
            if record["slot"] not in self._seen:
                self._seen.add(record["slot"])
                self._seen_order.append(record["slot"])
                if len(self._seen_order) > SEEN_KEPT:
                    self._seen.discard(self._seen_order.popleft())
        prices = [[r["slot"], r["time_s"], r["sol_usd"]] for r in records if r.get("sol_usd")]
        if prices:  # a new list: a reader keeps the one it took
            if (not self._prices or prices[0] > self._prices[-1]) and all(map(lt, prices, prices[1:])):
                # after the kept ones, in order (nearly every sync): what the merge below
                # gives, without its dict and sort (49 us an event with 256 prices kept)
                self._prices = (self._prices + prices)[-PRICES_KEPT:]
            else:
                known = {tuple(p): p for p in self._prices + prices}
                self._prices = sorted(known.values())[-PRICES_KEPT:]

    def _view(self, ttl_s: float, watermark: int | None) -> dict:
        """{"funded", "services", "newest_s"} (as Fundings.doc), "sol_usd" and "watermark": the fundings are
        the process's own, changed in place by later syncs (a wallet's list replaced, never
        changed): a reader may see fundings of slots recorded meanwhile, which reads as of its
        slot pass over."""
        fundings = self._fundings.doc() if self._fundings is not None else Fundings(ttl_s=ttl_s).doc()
        return {**fundings, "sol_usd": self._prices, "watermark": watermark}


def price_as_of(view: dict, slot: int, time_s: float) -> float | None:
    """SOL's price in a slot log's view as of `slot` (at `time_s`): the latest slot's up to it
    within PRICE_TTL_S; None when none is."""
    prices = [p for s, t, p in view.get("sol_usd", ()) if s <= slot and time_s - t <= PRICE_TTL_S]
    return prices[-1] if prices else None


def _says_anything(record: dict) -> bool:
    return bool(record.get("fundings")) or bool(record.get("sol_usd"))


_LOGS: WeakKeyDictionary = WeakKeyDictionary()
_LOGS_LOCK = threading.Lock()


def log_of(store, stream_key: str, slots_key: str, document_key: str | None = None,
           watermark_keys: tuple[str, str, str] | None = None) -> SlotLog:
    """The slot log a function's state store (one per process: its Context's) keeps beside
    it, so that whoever analyses through the same store reads the same view."""
    with _LOGS_LOCK:
        logs = _LOGS.setdefault(store, {})
        if stream_key not in logs:
            logs[stream_key] = SlotLog(stream_key, slots_key, document_key, watermark_keys)
        return logs[stream_key]
