"""Events under `MAX_EVENT_BYTES`: measuring them, splitting batches, joining numbered parts.

Producers split (a batch into several events, a chain block per mint and into parts) so that
no event KADES sends is refused by Kafka; what cannot be split (one record over the limit)
is refused at the producer with `EventTooLarge`, never sent to fail in the Broker.
A consumer of numbered parts keeps them in Redis until all have arrived (`assemble`), so it
computes on the same data whatever order the parts come in.
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Callable, Sequence

from kades.errors import KadesError
from kades.events.catalogue import MAX_EVENT_BYTES, derived_id, new_event
from kades.events.envelope import CloudEvent, to_binary
from kades.keys import PARTS, PARTS_GROUP_NAME
from kades.logs import log

logger = logging.getLogger("kades.events")

PARTS_TTL_S = 3600  # parts waiting for their siblings; a lost part's siblings expire
MakeEvent = Callable[[list, int, int], CloudEvent]  # (items, part index 1.., part count)


class EventTooLarge(KadesError, ValueError):
    """An event that no split can bring under the limit (a single record is too big)."""


def event_bytes(event: CloudEvent, *, encoded: tuple[dict, bytes] | None = None) -> int:
    """The event's size in binary mode: the body plus every header name and value
    (`encoded`: its `to_binary` output when the caller has it already)."""
    headers, body = encoded or to_binary(event)
    return len(body) + sum(len(name) + len(value.encode()) for name, value in headers.items())


def json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def check_size(event: CloudEvent, *, max_bytes: int = MAX_EVENT_BYTES,
               encoded: tuple[dict, bytes] | None = None) -> CloudEvent:
    """The event, or EventTooLarge (logged) when over the limit: refused whole, never cut."""
    size = event_bytes(event, encoded=encoded)
    if size > max_bytes:
        log(logger, logging.ERROR, "event too large", type=event.type, id=event.id,
            size_bytes=size, max_bytes=max_bytes)
        raise EventTooLarge(f"{event.type} event {event.id} is {size} bytes, over the "
                            f"{max_bytes}-byte limit of every KADES event; split it")
    return event


def check_sizes(events: Sequence[CloudEvent]) -> None:
    """Every event under the limit, or EventTooLarge before any of them is sent."""
    for event in events:
        check_size(event)


def pack(items: Sequence, *, budget_bytes: int) -> list[list]:
    """Consecutive items in groups whose JSON (items and commas) fits `budget_bytes`."""
    groups: list[list] = [[]]
    used = 0
    for item in items:
        size = json_bytes(item) + 1
        if groups[-1] and used + size > budget_bytes:
            groups.append([])
            used = 0
        groups[-1].append(item)
        used += size
    return groups


def split_batch(items: Sequence, make: MakeEvent, *, max_bytes: int = MAX_EVENT_BYTES) -> list[CloudEvent]:
    """Events made of consecutive items, each under `max_bytes`; one event when all fit.

    `make(items, index, count)` builds one event; its envelope is measured on an empty batch.
    """
    whole = make(list(items), 1, 1)
    if event_bytes(whole) <= max_bytes:
        return [whole]
    overhead = event_bytes(make([], 1, 2))
    groups = pack(items, budget_bytes=max_bytes - overhead - 64)  # 64: digits of index/count
    return [check_size(make(group, index, len(groups)), max_bytes=max_bytes)
            for index, group in enumerate(groups, start=1)]


def per_token_replies(cause: CloudEvent, source: str, event_type: str, field: str,
                      items: Sequence[dict], *, purpose: str,
                      time_of: Callable[[list[dict]], str]) -> list[CloudEvent]:
    """Events answering `cause` that carry `items` (each with a "token") as `data[field]`:
    one per token (subject = partitionkey = the token, tokens in order of first appearance),
    a token's items split into consecutive parts when they exceed the limit. Ids derive
    from `cause`, `purpose`, the token and the part: a retry with the same items gives the
    same events. `time_of(items)` is an event's time."""
    by_token: dict[str, list[dict]] = {}
    for item in items:
        by_token.setdefault(item["token"], []).append(item)
    events: list[CloudEvent] = []
    for token, group in by_token.items():
        def make(part: list, index: int, count: int, token=token, group=group) -> CloudEvent:
            name = f"{purpose}:{token}" + (f"#{index}/{count}" if count > 1 else "")
            return new_event(event_type, source, {field: part}, subject=token,
                             event_id=derived_id(cause, name), time=time_of(part or group))
        events += split_batch(group, make)
    return events


def group_id(*names: object) -> str:
    """A stable id for what a set of parts makes up (the same parts always give it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, PARTS_GROUP_NAME.format(names=":".join(map(str, names)))))


def join_parts(parts: list[dict]) -> dict:
    """One data object from its parts (in index order): lists concatenated, the rest from part 1."""
    parts = sorted(parts, key=lambda p: p["part"]["index"])
    whole = {name: value for name, value in parts[0].items() if name != "part"}
    for name, value in whole.items():
        if isinstance(value, list):
            whole[name] = [item for part in parts for item in part.get(name, [])]
    whole["part"] = {**parts[0]["part"], "index": 1, "count": 1}
    return whole


def assemble(client, consumer: str, event: CloudEvent) -> tuple[dict | None, CloudEvent]:
    """The whole data of a numbered part's group, once every part has arrived (else None),
    and the event to derive replies from: for a joined group, one with the group's id, so
    whichever part completes it the replies are the same."""
    part = event.data.get("part") if isinstance(event.data, dict) else None
    if not part or part["count"] == 1:
        return event.data, event
    key = PARTS.format(consumer=consumer, source=event.source, group=part["group"])
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, str(part["index"]), json.dumps(event.data, separators=(",", ":")))
    pipe.expire(key, PARTS_TTL_S)
    pipe.hgetall(key)
    stored = pipe.execute()[-1]
    wanted = {str(index).encode() for index in range(1, part["count"] + 1)}
    if not wanted <= set(stored):
        return None, event
    parts = [json.loads(stored[index]) for index in sorted(wanted, key=int)]
    if any(p["part"]["count"] != part["count"] for p in parts):  # parts of two splittings:
        return None, event  # whole only with every part of one (the group's TTL ends the rest)
    whole = join_parts(parts)
    cause = CloudEvent({**event.attributes, "id": part["group"]}, whole)
    return whole, cause
