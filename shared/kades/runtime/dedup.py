"""At-least-once delivery made idempotent: each (source, id) is handled once per function.

A claim marks an event as being handled; when the handler succeeds the claim becomes a
"done" mark that keeps the replies it produced, so a redelivery (the Broker retrying after a
lost answer) gets the very same replies back instead of nothing — the chain never breaks and
nothing downstream is counted twice (reply ids are derived from the input).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

import redis

from kades.events.envelope import CloudEvent, from_structured, to_dict

# A claim's value is this prefix plus a token of its owner, so only the owner removes it.
_PROCESSING = b"processing:"
# A claim outlives any sane handler run; if the process dies mid-event the claim expires
# and the Broker's retry processes the event again.
CLAIM_TTL_S = 120

# Delete / replace a claim only while it still holds the given token.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_TAKE_OVER = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
              "return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end return false")

# Claims this process failed to give back (Redis went away mid-event): key -> (token, when).
# Nobody handles them any more, so a redelivery reaching this process takes them over at
# once instead of answering 503 until the claim expires.
_abandoned: dict[str, tuple[bytes, float]] = {}
_abandoned_lock = threading.Lock()


@dataclass(frozen=True)
class Claim:
    key: str
    # None: we own the claim. A list: already done, these were the replies.
    done_replies: list[CloudEvent] | None
    in_progress: bool = False
    token: bytes = b""


def is_done(stored: bytes | None) -> bool:
    """Whether a stored mark says "handled" (not absent, not a claim in progress)."""
    return stored is not None and not stored.startswith(_PROCESSING)


def _key(function: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode()).hexdigest()[:40]
    return f"kades:dedup:{function}:{digest}"


def source_and_id(event: CloudEvent) -> str:
    """CloudEvents core §3.1.1: (source, id) identifies an event."""
    return f"{event.source}\n{event.id}"


def claim(client: redis.Redis, function: str, event: CloudEvent,
          identity: Callable[[CloudEvent], str] | None = None) -> Claim:
    key = _key(function, (identity or source_and_id)(event))
    token = _PROCESSING + os.urandom(8).hex().encode()
    if client.set(key, token, nx=True, ex=CLAIM_TTL_S):
        return Claim(key, None, token=token)
    stored = client.get(key)
    if stored is None:  # expired between the two calls: try once more
        return claim(client, function, event, identity)
    if stored.startswith(_PROCESSING):
        if _was_abandoned(key, stored) and client.eval(_TAKE_OVER, 1, key, stored, token,
                                                        CLAIM_TTL_S):
            _forget(key)
            return Claim(key, None, token=token)
        return Claim(key, None, in_progress=True)
    return Claim(key, [from_structured(item) for item in json.loads(stored)])


def complete(client: redis.Redis, claim_: Claim, replies: list[CloudEvent], ttl_s: int) -> None:
    try:
        client.set(claim_.key, json.dumps([to_dict(e) for e in replies]), ex=ttl_s)
    except redis.RedisError:
        _abandon(claim_)
        raise


def release(client: redis.Redis, claim_: Claim) -> None:
    """Give the event back (the handler failed) so that a retry handles it again."""
    try:
        client.eval(_RELEASE, 1, claim_.key, claim_.token)
    except redis.RedisError:
        _abandon(claim_)
        raise


def _abandon(claim_: Claim) -> None:
    now = time.monotonic()
    with _abandoned_lock:
        for key in [k for k, (_, at) in _abandoned.items() if now - at > CLAIM_TTL_S]:
            del _abandoned[key]  # expired in Redis by now
        _abandoned[claim_.key] = (claim_.token, now)


def _was_abandoned(key: str, stored: bytes) -> bool:
    with _abandoned_lock:
        return key in _abandoned and _abandoned[key][0] == stored


def _forget(key: str) -> None:
    with _abandoned_lock:
        _abandoned.pop(key, None)
