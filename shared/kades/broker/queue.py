"""The broker's durable queue: one Redis stream per lane (see `routing`), one group on each.

Keys (kades.keys.BROKER_*; `P` = `kades:{broker}:<namespace>:<broker>`, `L` = a lane, e.g.
`whale-detection/2`):
- `P:lane:L` — stream of the events routed to lane L (field `event`: structured-mode JSON).
  The ingress answers 202 only once the MULTI adding an event to every lane it matches has
  run, so an accepted event is in all of them, or (503) in none, and survives a restart.
- consumer group `delivery` on it — an entry stays pending until its Trigger is done with
  it (delivered, replied, dead-lettered), then it is XACKed and XDELeted in the same MULTI
  that queues the reply or parks the dead letter: the stream holds only unfinished work.
- `P:state:L` — hash entry-id -> JSON retry state (phase, attempt, due, extensions).
- `P:due:L` — sorted set entry-id -> when the next attempt is due (unordered lanes only;
  an ordered lane's single worker waits for its retry itself, holding the lane).

Retry state lives in Redis, so a new broker instance continues the retries of the last one.
On start, `recover` XAUTOCLAIMs what a lane still has pending (an old instance died
between read and ack): an unordered lane schedules it now, unless a retry is already
scheduled; an ordered lane gives it to its one consumer, which re-reads its own pending
entries, in stream order, before anything new.
"""
from __future__ import annotations

import copy
import json
import threading
import time
from typing import Iterable

import redis

from kades.broker.routing import Router
from kades.deadletter import store as dead_letters
from kades.events.envelope import CloudEvent, to_dict
from kades.keys import BROKER_DUE, BROKER_LANE, BROKER_STATE

GROUP = "delivery"
RECOVERY_CONSUMER = "recovered"
RECHECK_DUE_S = 2.0  # how stale this process's idea of a lane's next due retry may get

# Pop the first due entry (score <= now), atomically across workers, and XCLAIM it so its
# idle time restarts: an entry being worked on is never idle long enough to be recovered.
# Nothing due: {false, seconds until the next one, or -1}.
_CLAIM_DUE = """
local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #m == 0 then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #first == 0 then return {false, '-1'} end
  return {false, tostring(tonumber(first[2]) - tonumber(ARGV[1]))}
end
redis.call('ZREM', KEYS[1], m[1])
redis.call('XCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, m[1], 'JUSTID')
return {m[1], '0'}
"""

# Done with entries of one or more lanes, delivered and nothing to add: what `finish` does
# in a MULTI, as one command. KEYS: per lane its stream, state hash, due set; ARGV: group,
# then per lane the number of its entries and their ids.
_FINISH_DONE = """
local at = 2
for k = 1, #KEYS, 3 do
  local n = tonumber(ARGV[at])
  local ids = {unpack(ARGV, at + 1, at + n)}
  redis.call('XACK', KEYS[k], ARGV[1], unpack(ids))
  redis.call('XDEL', KEYS[k], unpack(ids))
  redis.call('HDEL', KEYS[k + 1], unpack(ids))
  redis.call('ZREM', KEYS[k + 2], unpack(ids))
  at = at + n + 1
end
return 1
"""
ACK_BATCH = 256  # most entries one finishing script takes (Lua's unpack has a stack limit)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def encode_event(event: CloudEvent) -> str:
    return json.dumps(to_dict(event), separators=(",", ":"), ensure_ascii=False)


class _DueHints:
    """When each lane's next retry is due, as far as this process knows: the due sets are
    asked only once that time comes, or after `recheck_s` (another broker instance may have
    scheduled one), instead of before every read. Shared by the views of one BrokerQueue."""

    def __init__(self, recheck_s: float):
        self.recheck_s = recheck_s
        self._due: dict[str, tuple[float, float]] = {}  # lane -> (due, asked at), epoch s
        self._lock = threading.Lock()

    def wait_s(self, lane: str, now: float) -> float | None:
        """Seconds until the lane's due set must be asked; None: ask now."""
        due, asked = self._due.get(lane, (0.0, 0.0))
        if now >= due or now - asked >= self.recheck_s:
            return None
        return due - now

    def asked(self, lane: str, now: float, wait: float | None) -> None:
        with self._lock:
            self._due[lane] = (now + (self.recheck_s if wait is None else wait), now)

    def scheduled(self, lane: str, due: float) -> None:
        with self._lock:
            known, asked = self._due.get(lane, (0.0, 0.0))
            self._due[lane] = (min(known, due), asked)


class _DoneAcks:
    """Group commit of delivered-and-done entries: the first worker to finish one runs the
    script for it and, until nothing is left, for whatever others finished meanwhile, while
    they go back to work. Under load one script acks many entries; alone, each its own.
    Until that script ran, an entry is still pending in Redis: a crash redelivers it
    (at-least-once, as Knative's Kafka dispatcher commits its offsets after delivering)."""

    def __init__(self, *, held: bool = False):
        self._lock = threading.Lock()
        self._waiting: list[tuple[str, str]] = []  # (lane, entry id)
        self._flushing = False
        self.held = held  # added entries wait for `flush_left` (one thread's own batches)

    def add(self, lane: str, entry_id: str, flush) -> None:
        with self._lock:
            self._waiting.append((lane, entry_id))
            if self._flushing or self.held:
                return  # the worker running the script takes it in its next round
            self._flushing = True
        self._drain(flush)

    def flush_left(self, flush) -> None:
        """Run the script for what waits with nobody flushing (left by a failed batch)."""
        with self._lock:
            if self._flushing or not self._waiting:
                return
            self._flushing = True
        self._drain(flush)

    def _drain(self, flush) -> None:
        """`flush(batch)` until nothing waits; the caller holds the flushing turn. A failed
        batch waits again, for the next one."""
        while True:
            with self._lock:
                batch, self._waiting = self._waiting[:ACK_BATCH], self._waiting[ACK_BATCH:]
                if not batch:
                    self._flushing = False
                    return
            try:
                flush(batch)
            except BaseException:
                with self._lock:
                    self._waiting[:0] = batch
                    self._flushing = False
                raise


class BrokerQueue:
    """Redis Streams operations of one Broker; every method is one or a few round trips.

    A delivery worker uses its own view (`for_worker`): the same queue on a Redis client
    that keeps one connection, so its commands skip the pool's checkout and checks."""

    def __init__(self, client: redis.Redis, namespace: str, broker: str, router: Router,
                 *, recheck_due_s: float = RECHECK_DUE_S):
        self.redis, self.router = client, router
        self.names = {"namespace": namespace, "broker": broker}
        self._claim_due = client.register_script(_CLAIM_DUE)
        self._finish_done = client.register_script(_FINISH_DONE)
        self._hints = _DueHints(recheck_due_s)
        self._acks = _DoneAcks()

    def for_worker(self, *, held_acks: bool = False) -> "BrokerQueue":
        """`held_acks`: the view's done entries are acked by its `flush_acks`, in batches
        (a thread with many deliveries in flight, which no other thread's script takes
        along), instead of at once or with other workers'."""
        cluster = type(self.redis) is not redis.Redis  # a Redis Cluster client routes per key
        if cluster and not held_acks:
            return self
        view = copy.copy(self)
        if held_acks:
            view._acks = _DoneAcks(held=True)
        if not cluster:
            view.redis = redis.Redis(connection_pool=self.redis.connection_pool,
                                     single_connection_client=True)
            view._claim_due = view.redis.register_script(_CLAIM_DUE)
            view._finish_done = view.redis.register_script(_FINISH_DONE)
        return view

    def stream(self, lane: str) -> str:
        return BROKER_LANE.format(**self.names, lane=lane)

    def _due(self, lane: str) -> str:
        return BROKER_DUE.format(**self.names, lane=lane)

    def _state(self, lane: str) -> str:
        return BROKER_STATE.format(**self.names, lane=lane)

    # --- ingress ---------------------------------------------------------------------------

    def _routes(self, events: Iterable[CloudEvent]) -> list[tuple[str, dict]]:
        """(stream, fields) of every entry the events make: one per lane each matches."""
        routes = []
        for event in events:
            lanes = self.router.lanes(event)
            if lanes:
                fields = {"event": encode_event(event)}
                routes += [(self.stream(lane), fields) for lane in lanes]
        return routes

    def _route(self, pipe, events: Iterable[CloudEvent]) -> None:
        for stream, fields in self._routes(events):
            pipe.xadd(stream, fields)

    def enqueue(self, events: Iterable[CloudEvent]) -> int:
        """Add every event to the lanes it matches, all in one MULTI (one entry needs none);
        how many entries. An event no Trigger wants is accepted and dropped, as Knative's
        Broker does."""
        routes = self._routes(events)
        if len(routes) == 1:
            self.redis.xadd(*routes[0])
            return 1
        pipe = self.redis.pipeline(transaction=True)
        for stream, fields in routes:
            pipe.xadd(stream, fields)
        return len(pipe.execute()) if routes else 0

    # --- consumer groups -------------------------------------------------------------------

    def ensure_group(self, lane: str) -> None:
        """The group reads the lane from its start: everything in it was routed to it."""
        try:
            self.redis.xgroup_create(self.stream(lane), GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def read(self, lane: str, consumer: str, *, count: int, block_ms: int | None = None,
             pending: bool = False) -> list[tuple[str, dict | None]]:
        """New entries (blocking up to `block_ms`), or with `pending` the consumer's own
        unfinished ones, oldest first (None for an entry deleted meanwhile)."""
        reply = self.redis.xreadgroup(GROUP, consumer, {self.stream(lane): "0" if pending else ">"},
                                      count=count, block=None if pending else max(1, block_ms or 1))
        return [(_text(entry_id), _document(fields))
                for _stream, items in reply or [] for entry_id, fields in items]

    def read_lanes(self, lanes: list[str], consumer: str, *, count: int,
                   block_ms: int | None) -> list[tuple[str, str, dict | None]]:
        """New entries of several lanes in one XREADGROUP, at most `count` of each,
        blocking up to `block_ms` while there are none (None: not at all):
        (lane, entry id, document)."""
        streams = {self.stream(lane): lane for lane in lanes}
        reply = self.redis.xreadgroup(GROUP, consumer, dict.fromkeys(streams, ">"), count=count,
                                      block=None if block_ms is None else max(1, block_ms))
        return [(streams[_text(stream)], _text(entry_id), _document(fields))
                for stream, items in reply or [] for entry_id, fields in items]

    def fetch(self, lane: str, entry_id: str) -> dict | None:
        items = self.redis.xrange(self.stream(lane), entry_id, entry_id)
        return _document(items[0][1]) if items else None

    def recover(self, lane: str, *, consumer: str = RECOVERY_CONSUMER, schedule: bool = True,
                min_idle_ms: int = 0, now: float | None = None) -> int:
        """Take over what the lane left pending (and schedule it); how many entries."""
        now = time.time() if now is None else now
        start, recovered = "0-0", 0
        while True:
            reply = self.redis.xautoclaim(self.stream(lane), GROUP, consumer,
                                          min_idle_time=min_idle_ms, start_id=start, count=100)
            start, claimed = _text(reply[0]), reply[1]
            ids = [_text(entry_id) for entry_id, _fields in claimed]
            if ids and schedule:
                # NX: an entry already waiting for its next retry keeps its due time.
                self.redis.zadd(self._due(lane), {i: now for i in ids}, nx=True)
                self._hints.scheduled(lane, now)
            recovered += len(ids)
            if start == "0-0":
                return recovered

    def redrive(self, lane: str, entry_id: str, now: float | None = None) -> bool:
        """Schedule an entry a worker dropped mid-attempt (Redis went away), if it is still
        unfinished and not already waiting for a retry; whether it was."""
        if not self.redis.xpending_range(self.stream(lane), GROUP, min=entry_id, max=entry_id,
                                         count=1):
            return False  # finished after all: its MULTI ran before the connection broke
        now = time.time() if now is None else now
        self._hints.scheduled(lane, now)
        return bool(self.redis.zadd(self._due(lane), {entry_id: now}, nx=True))

    def redrive_orphans(self, lane: str, consumer: str, in_hand: set[tuple[str, str]],
                        now: float | None = None) -> int:
        """Schedule the entries pending for `consumer` that it does not hold (`in_hand`: (lane,
        entry id)): a read whose reply was lost with its connection (Redis going away
        mid-read) left them pending for nobody. How many; one already waiting for a retry
        keeps its due time."""
        pending = self.redis.xpending_range(self.stream(lane), GROUP, min="-", max="+",
                                            count=10_000, consumername=consumer)
        ids = [entry_id for entry_id in (_text(p["message_id"]) for p in pending)
               if (lane, entry_id) not in in_hand]
        if ids:
            now = time.time() if now is None else now
            self.redis.zadd(self._due(lane), {i: now for i in ids}, nx=True)
            self._hints.scheduled(lane, now)
        return len(ids)

    # --- retries ---------------------------------------------------------------------------

    def claim_due(self, lane: str, consumer: str, now: float | None = None) -> str | None:
        return self.next_due(lane, consumer, now)[0]

    def next_due(self, lane: str, consumer: str,
                 now: float | None = None) -> tuple[str | None, float | None]:
        """(a due entry, now claimed by `consumer`, or None; else seconds until the next).
        The due set is asked only when this process's hint says a retry may be due."""
        now = time.time() if now is None else now
        hinted = self._hints.wait_s(lane, now)
        if hinted is not None:
            return None, hinted
        entry_id, wait = self._claim_due(keys=[self._due(lane), self.stream(lane)],
                                         args=[repr(now), GROUP, consumer])
        if entry_id:
            return _text(entry_id), 0.0  # the hint stays: more may be due
        wait = float(_text(wait))
        wait = None if wait < 0 else max(0.0, wait)
        self._hints.asked(lane, now, wait)
        return None, wait

    def seconds_until_due(self, lane: str, now: float | None = None) -> float | None:
        first = self.redis.zrange(self._due(lane), 0, 0, withscores=True)
        if not first:
            return None
        now = time.time() if now is None else now
        return max(0.0, first[0][1] - now)

    def state(self, lane: str, entry_id: str) -> dict | None:
        raw = self.redis.hget(self._state(lane), entry_id)
        return json.loads(raw) if raw else None

    def schedule(self, lane: str, entry_id: str, state: dict, *, wake: bool = True) -> None:
        """Keep the retry state; with `wake`, any worker takes the entry at `state["due"]`."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._state(lane), entry_id, json.dumps(state))
        if wake:
            pipe.zadd(self._due(lane), {entry_id: state["due"]})
        pipe.execute()
        if wake:
            self._hints.scheduled(lane, state["due"])

    def finish(self, lane: str, entry_ids: Iterable[str], *,
               replies: Iterable[CloudEvent] = (), park: dict | None = None,
               copies: Iterable[CloudEvent] = ()) -> None:
        """Done with entries: route replies / park a dead letter, ack, delete, forget state.
        `copies` go to the end of the same lane again (the chaos switch's duplicates)."""
        entry_ids, replies, copies = list(entry_ids), list(replies), list(copies)
        if not entry_ids:
            return
        if len(entry_ids) == 1 and not replies and not copies and park is None:
            # The common case, delivered and done: one script, shared with other workers'.
            self._acks.add(lane, entry_ids[0], self._run_finish_done)
            return
        pipe = self.redis.pipeline(transaction=True)
        self._route(pipe, replies)
        for duplicate in copies:
            pipe.xadd(self.stream(lane), {"event": encode_event(duplicate)})
        if park is not None:
            dead_letters.append(pipe, park)
        pipe.xack(self.stream(lane), GROUP, *entry_ids)
        pipe.xdel(self.stream(lane), *entry_ids)
        pipe.hdel(self._state(lane), *entry_ids)
        pipe.zrem(self._due(lane), *entry_ids)
        pipe.execute()


    def _run_finish_done(self, batch: list[tuple[str, str]]) -> None:
        by_lane: dict[str, list[str]] = {}
        for lane, entry_id in batch:
            by_lane.setdefault(lane, []).append(entry_id)
        keys, args = [], [GROUP]
        for lane, ids in by_lane.items():
            keys += [self.stream(lane), self._state(lane), self._due(lane)]
            args += [len(ids), *ids]
        self._finish_done(keys=keys, args=args)

    def flush_acks(self) -> None:
        """Finish the delivered entries left waiting by a failed script, if any."""
        self._acks.flush_left(self._run_finish_done)


def _document(fields) -> dict | None:
    if not fields:
        return None  # the entry was deleted while pending
    raw = fields.get(b"event", fields.get("event"))
    return json.loads(raw) if raw is not None else None
