"""At-least-once delivery made idempotent: each (source, id) is handled once per function.

A claim marks an event as being handled; when the handler succeeds the claim becomes a
"done" mark that keeps the replies it produced, so a redelivery (the Broker retrying after a
lost answer) gets the very same replies back instead of nothing — the chain never breaks and
nothing downstream is counted twice (reply ids are derived from the input).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable

import redis

from kades.events.envelope import CloudEvent, from_structured, to_dict

_PROCESSING = b"processing"
# A claim outlives any sane handler run; if the process dies mid-event the claim expires
# and the Broker's retry processes the event again.
CLAIM_TTL_S = 120


@dataclass(frozen=True)
class Claim:
    key: str
    # None: we own the claim. A list: already done, these were the replies.
    done_replies: list[CloudEvent] | None
    in_progress: bool = False


def _key(function: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode()).hexdigest()[:40]
    return f"kades:dedup:{function}:{digest}"


def source_and_id(event: CloudEvent) -> str:
    """CloudEvents core §3.1.1: (source, id) identifies an event."""
    return f"{event.source}\n{event.id}"


def claim(client: redis.Redis, function: str, event: CloudEvent,
          identity: Callable[[CloudEvent], str] | None = None) -> Claim:
    key = _key(function, (identity or source_and_id)(event))
    if client.set(key, _PROCESSING, nx=True, ex=CLAIM_TTL_S):
        return Claim(key, None)
    stored = client.get(key)
    if stored is None:  # expired between the two calls: try once more
        return claim(client, function, event, identity)
    if stored == _PROCESSING:
        return Claim(key, None, in_progress=True)
    return Claim(key, [from_structured(item) for item in json.loads(stored)])


def complete(client: redis.Redis, claim_: Claim, replies: list[CloudEvent], ttl_s: int) -> None:
    client.set(claim_.key, json.dumps([to_dict(e) for e in replies]), ex=ttl_s)


def release(client: redis.Redis, claim_: Claim) -> None:
    """Give the event back (the handler failed) so that a retry handles it again."""
    client.delete(claim_.key)
