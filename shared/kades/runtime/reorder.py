"""Event-time order from unordered delivery: a per-key reorder buffer with a watermark.

Knative's channel-based Broker delivers concurrently and in no order, and retries overtake
fresh events, so a token's ticks (posts, blocks) can arrive shuffled and twice. A detector
that learns one point at a time must still see them in time order, once each, to give the
same answers as an ordered feed. The buffer holds what arrives and releases, in time order:
- what is older than the newest time seen less the allowed lateness (the watermark);
- everything up to an item that has waited longer than the idle timeout of wall-clock time
  (a token that went quiet, or a feed that ended, still gets its last points analysed).
An item at or before what was already released arrives too late to be put in its place: it
is a duplicate when its id was released within the lateness (dropped, as a redelivery
should be) and otherwise late, returned apart so that the caller counts it
(`kades_late_inputs_total`) instead of losing it silently. Released ids are remembered only
as far back as the lateness, which keeps the state small (it is read and written whole on
every update): an older copy of a released point is returned as late too -- either way it
is never analysed twice, and the same event redelivered is stopped earlier, by the
runtime's (source, id) dedup or by the event's outbox (kades.runtime.state), which gives
back what the first delivery computed.

The buffer's state is a plain JSON dict kept inside the key's own state, so it commits with
the detector's state in one compare-and-set (kades.runtime.state).

>>> buffer = ReorderBuffer(lateness_s=10, idle_s=60)
>>> state = {}
>>> buffer.admit(state, [(5.0, "a", 1), (20.0, "c", 3)], now_s=0)
([(5.0, 'a', 1)], [])
>>> buffer.admit(state, [(12.0, "b", 2), (5.0, "a", 1)], now_s=1)  # b in time, a again
([], [])
>>> buffer.admit(state, [(31.0, "d", 4), (4.0, "z", 0)], now_s=2)  # z is too late
([(12.0, 'b', 2), (20.0, 'c', 3)], [(4.0, 'z', 0)])
>>> buffer.admit(state, [], now_s=100)  # quiet for longer than the idle timeout
([(31.0, 'd', 4)], [])
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable

Item = tuple[float, str, Any]   # (event time in s, id unique per key, payload)
RECENT_IDS = 512                # at most this many released ids remembered (the newest)
# a waiting entry is [time, id, payload, arrival]; a remembered one [time, id]
_TIME_AND_ID, _TIME, _ID, _ARRIVAL = itemgetter(0, 1), itemgetter(0), itemgetter(1), itemgetter(3)


@dataclass(frozen=True)
class ReorderBuffer:
    lateness_s: float   # how far behind the newest time an item may arrive and keep its place
    idle_s: float       # wall-clock time after which a waiting item is released anyway

    def admit(self, state: dict, items: list[Item], *, now_s: float,
              id_of: Callable[[float, Any], str] | None = None, release_to: float | None = None
              ) -> tuple[list[Item], list[Item]]:
        """Take `items` into the buffer `state` (changed in place); (released in time order,
        too late). Duplicates of waiting or released items are dropped. With `id_of`, an
        item's id may be None: id_of(time, payload) makes it where it is needed, for an item
        kept in the state or one that shares its time with another (a duplicate has its
        original's time), so a released or late item may keep None. (temporal-analysis's
        tick ids, a digest of each tick, were a tenth of a 500-tick event's time, and most of
        its ticks are released at once, never kept nor compared.) With `release_to`, what waits
        up to that time is released too: the caller knows nothing earlier is still to come
        (chain-analysis's slots, by the links the source sends: kades.chain.ordering)."""
        # (C-speed building blocks where they go over every entry: chain-analysis's mints
        # hold 75 waiting slots and as many released ones, and take one new slot a block)
        entries = state.get("pending", [])
        pending = dict(zip(map(_ID, entries), entries))
        released_to = state.get("released_to")
        recent_entries = state.get("recent", [])   # [time, id] in release order
        recent = set(map(_ID, recent_entries))
        # the times an item must have its id at: those of the items kept with theirs (with
        # every id given, as chain, sentiment and risk give them, none is made)
        named_times = set() if id_of is None else {entry[0] for entry in recent_entries}.union(
            entry[0] for entry in pending.values())
        unnamed: dict[float, list] = {}  # time -> a waiting item without its id (one a time)
        newest = state.get("max_seen")
        late = []
        for time_s, item_id, payload in items:
            if time_s in unnamed:  # another item at its time: both need their ids
                other = unnamed.pop(time_s)
                other[1] = id_of(time_s, other[2])
                pending[other[1]] = other
                named_times.add(time_s)
            if item_id is None and time_s in named_times:
                item_id = id_of(time_s, payload)
            if item_id is not None and (item_id in pending or item_id in recent):
                continue
            if released_to is not None and time_s <= released_to:
                late.append((time_s, item_id, payload))
                continue
            entry = [time_s, item_id, payload, now_s]
            if item_id is None:
                unnamed[time_s] = entry
            else:
                pending[item_id] = entry
                named_times.add(time_s)
            if newest is None or time_s > newest:  # max(newest, time_s), no call per item
                newest = time_s
        # (an item without its id has a time of its own: the ids are never compared to None)
        waiting = sorted([*pending.values(), *unnamed.values()], key=_TIME_AND_ID)
        cut = -1e300 if newest is None else newest - self.lateness_s
        if waiting and now_s - min(map(_ARRIVAL, waiting)) >= self.idle_s:
            cut = max(cut, max(entry[0] for entry in waiting if now_s - entry[3] >= self.idle_s))
        if release_to is not None and release_to > cut:
            cut = release_to
        split = bisect_right(waiting, cut, key=_TIME)  # in time order: the ready ones first
        ready, kept = waiting[:split], waiting[split:]
        state["pending"] = kept if id_of is None else [_named(entry, id_of) for entry in kept]
        state["max_seen"] = newest
        if ready:
            released_to = state["released_to"] = ready[-1][0]
            floor = released_to - self.lateness_s
            state["recent"] = [entry if len(entry) == 2 else [entry[0], _named(entry, id_of)[1]]
                               for entry in (recent_entries + ready)[-RECENT_IDS:]
                               if entry[0] >= floor]
        return [(entry[0], entry[1], entry[2]) for entry in ready], late

    @classmethod
    def from_settings(cls, settings) -> "ReorderBuffer":
        return cls(lateness_s=settings.reorder_lateness_s, idle_s=settings.reorder_idle_s)

    @staticmethod
    def oldest_wait_s(state: dict) -> float | None:
        """Wall-clock arrival of the longest-waiting item (None when nothing waits)."""
        pending = state.get("pending") or []
        return min(map(_ARRIVAL, pending)) if pending else None


def _named(entry: list, id_of) -> list:
    """A waiting item's entry with its id made (ReorderBuffer.admit's `id_of`)."""
    if entry[1] is None:
        entry[1] = id_of(entry[0], entry[2])
    return entry


def queue_waiting(pipe, waiting_key: str, keys, buffers: list[dict]) -> None:
    """Keep the sorted set `waiting_key` (key -> wall time its oldest item came) true for
    `keys`, whose buffer states are `buffers`, by commands queued on `pipe` (inside a MULTI
    they commit with the state; a StateStore lists them in its script instead, `Waiting`):
    one ZREM and one ZADD for all the keys (a command per key cost chain-analysis ~5% of a
    2,000-record block's time, docs/performance.md)."""
    oldest = {key: ReorderBuffer.oldest_wait_s(buffer) for key, buffer in zip(keys, buffers)}
    done = [key for key, wait in oldest.items() if wait is None]
    if done:
        pipe.zrem(waiting_key, *done)
    waiting = {key: wait for key, wait in oldest.items() if wait is not None}
    if waiting:
        pipe.zadd(waiting_key, waiting)


# The quiet keys one stream-flush ping releases, the longest-waiting first, the rest at the next
# minute: a flush bounded in time and in the keys of its one compare-and-set, whatever piled up
# (2,000 waiting minute-bar tokens took 1.8 s a flush attempt, all retried on any conflict).
FLUSH_BATCH = 500


def quiet_keys(client, waiting_key: str, *, now_s: float, idle_s: float,
               limit: int | None = None) -> list[str]:
    """Keys whose oldest waiting item came more than `idle_s` ago: the flush's work (the
    `limit` longest-waiting ones when given)."""
    page = {} if limit is None else {"start": 0, "num": limit}
    return [key.decode() for key in client.zrangebyscore(waiting_key, "-inf", now_s - idle_s,
                                                         **page)]
