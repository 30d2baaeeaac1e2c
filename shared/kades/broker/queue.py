"""The broker's durable queue: one Redis stream per Broker, one consumer group per Trigger.

Keys (`P` = `kades:broker:<namespace>:<broker>`):
- `P:events` — stream of accepted events (field `event`: the structured-mode JSON). An event
  is accepted (202) only once XADD returned, so it survives a broker restart.
- consumer group `<trigger>` on it — each Trigger sees every event (fan-out); an entry stays
  in the group's pending list until the Trigger is done with it (delivered, replied,
  dead-lettered or filtered out), then it is XACKed.
- `P:state:<trigger>` — hash entry-id -> JSON retry state (phase, attempt, last error).
- `P:due:<trigger>` — sorted set entry-id -> when the next attempt is due (epoch seconds).

Retry state lives in Redis, so a new broker instance continues the retries of the last one.
On start, `recover` XAUTOCLAIMs what the group still has pending (an old instance died
between read and ack) and schedules it now, unless a retry is already scheduled for it;
while running it is repeated for entries idle far longer than an attempt can take (an
attempt that hit a Redis outage half-way).
Every state change that must happen together (ack + reply + dead letter) is one MULTI.
"""
from __future__ import annotations

import json
import time
from typing import Iterable

import redis

from kades.broker.dlq import DLQ_STREAM
from kades.events.envelope import CloudEvent, to_dict

RECOVERY_CONSUMER = "recovered"

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


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def encode_event(event: CloudEvent) -> str:
    return json.dumps(to_dict(event), separators=(",", ":"), ensure_ascii=False)


class BrokerQueue:
    """Redis Streams operations of one Broker; every method is one or a few round trips."""

    def __init__(self, client: redis.Redis, namespace: str, broker: str):
        self.redis = client
        self.prefix = f"kades:broker:{namespace}:{broker}"
        self.events = f"{self.prefix}:events"
        self._claim_due = client.register_script(_CLAIM_DUE)

    def _due(self, trigger: str) -> str:
        return f"{self.prefix}:due:{trigger}"

    def _state(self, trigger: str) -> str:
        return f"{self.prefix}:state:{trigger}"

    # --- ingress ---------------------------------------------------------------------------

    def enqueue(self, events: Iterable[CloudEvent]) -> list[str]:
        """XADD every event in one transaction; their stream ids."""
        pipe = self.redis.pipeline(transaction=True)
        for event in events:
            pipe.xadd(self.events, {"event": encode_event(event)})
        return [_text(i) for i in pipe.execute()]

    # --- consumer groups -------------------------------------------------------------------

    def ensure_group(self, trigger: str) -> None:
        """A new Trigger sees the events accepted from now on (as in Knative)."""
        try:
            self.redis.xgroup_create(self.events, trigger, id="$", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def read_new(self, trigger: str, consumer: str, *, count: int,
                 block_ms: int) -> list[tuple[str, dict | None]]:
        reply = self.redis.xreadgroup(trigger, consumer, {self.events: ">"}, count=count,
                                      block=max(1, block_ms))
        entries = []
        for _stream, items in reply or []:
            for entry_id, fields in items:
                entries.append((_text(entry_id), _document(fields)))
        return entries

    def fetch(self, entry_id: str) -> dict | None:
        items = self.redis.xrange(self.events, entry_id, entry_id)
        return _document(items[0][1]) if items else None

    def recover(self, trigger: str, *, min_idle_ms: int = 0, now: float | None = None) -> int:
        """Take over what the group left pending and schedule it; how many entries."""
        now = time.time() if now is None else now
        start, recovered = "0-0", 0
        while True:
            reply = self.redis.xautoclaim(self.events, trigger, RECOVERY_CONSUMER,
                                          min_idle_time=min_idle_ms, start_id=start, count=100)
            start, claimed = _text(reply[0]), reply[1]
            ids = [_text(entry_id) for entry_id, _fields in claimed]
            if ids:
                # NX: an entry already waiting for its next retry keeps its due time.
                self.redis.zadd(self._due(trigger), {i: now for i in ids}, nx=True)
                recovered += len(ids)
            if start == "0-0":
                return recovered

    # --- retries ---------------------------------------------------------------------------

    def claim_due(self, trigger: str, consumer: str, now: float | None = None) -> str | None:
        return self.next_due(trigger, consumer, now)[0]

    def next_due(self, trigger: str, consumer: str,
                 now: float | None = None) -> tuple[str | None, float | None]:
        """(a due entry, now claimed by `consumer`, or None; else seconds until the next)."""
        now = time.time() if now is None else now
        entry_id, wait = self._claim_due(keys=[self._due(trigger), self.events],
                                         args=[repr(now), trigger, consumer])
        if entry_id:
            return _text(entry_id), 0.0
        wait = float(_text(wait))
        return None, (None if wait < 0 else max(0.0, wait))

    def ack(self, trigger: str, entry_ids: list[str]) -> None:
        """Done with entries that never had retry state (e.g. filtered out)."""
        if entry_ids:
            self.redis.xack(self.events, trigger, *entry_ids)

    def due_now(self, trigger: str, entry_ids: list[str], now: float | None = None) -> None:
        """Hand entries read by one worker to all workers (claim_due restarts their idle time)."""
        if entry_ids:
            now = time.time() if now is None else now
            self.redis.zadd(self._due(trigger), {i: now for i in entry_ids}, nx=True)

    def seconds_until_due(self, trigger: str, now: float | None = None) -> float | None:
        first = self.redis.zrange(self._due(trigger), 0, 0, withscores=True)
        if not first:
            return None
        now = time.time() if now is None else now
        return max(0.0, first[0][1] - now)

    def state(self, trigger: str, entry_id: str) -> dict | None:
        raw = self.redis.hget(self._state(trigger), entry_id)
        return json.loads(raw) if raw else None

    def schedule(self, trigger: str, entry_id: str, state: dict, due: float) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._state(trigger), entry_id, json.dumps(state))
        pipe.zadd(self._due(trigger), {entry_id: due})
        pipe.execute()

    def finish(self, trigger: str, entry_ids: Iterable[str], *,
               replies: Iterable[CloudEvent] = (), park: dict | None = None) -> None:
        """Done with entries: enqueue replies / park a dead letter, ack, forget retry state."""
        entry_ids = list(entry_ids)
        if not entry_ids:
            return
        pipe = self.redis.pipeline(transaction=True)
        for reply in replies:
            pipe.xadd(self.events, {"event": encode_event(reply)})
        if park is not None:
            pipe.xadd(DLQ_STREAM, park)
        pipe.xack(self.events, trigger, *entry_ids)
        pipe.hdel(self._state(trigger), *entry_ids)
        pipe.zrem(self._due(trigger), *entry_ids)
        pipe.execute()

    # --- housekeeping ----------------------------------------------------------------------

    def trim(self, triggers: Iterable[str]) -> None:
        """Drop stream entries every listed Trigger's group has finished with."""
        triggers = set(triggers)
        try:
            groups = self.redis.xinfo_groups(self.events)
        except redis.ResponseError:
            return  # no stream yet
        floors = []
        for group in groups:
            name = _text(group["name"])
            if name not in triggers:
                continue
            floor = _text(group["last-delivered-id"])
            if group["pending"]:
                oldest = _text(self.redis.xpending(self.events, name)["min"])
                floor = min(floor, oldest, key=_id_key)
            floors.append(floor)
        if floors:
            self.redis.xtrim(self.events, minid=min(floors, key=_id_key), approximate=False)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _document(fields) -> dict | None:
    if not fields:
        return None  # the entry was trimmed or deleted while pending
    raw = fields.get(b"event", fields.get("event"))
    return json.loads(raw) if raw is not None else None
