"""At-least-once delivery made idempotent: each (source, id) is handled once per function.

A claim marks an event as being handled; when the handler succeeds the claim becomes a
"done" mark that keeps the replies it produced, so a redelivery (the Broker retrying after a
lost answer) gets the very same replies back instead of nothing — the chain never breaks and
nothing downstream is counted twice (reply ids are derived from the input).

A claim is a lease: it lives `lease_s` and its owner renews it while the handler runs
(`renewed`). A process that dies stops renewing, so its claim expires within one lease and
the Broker's next retry — the chain Triggers retry for ~45 s — takes the event over. Every
write of the owner (renew, release, done) is a compare-and-set on its token, so an owner
whose lease ran out and was taken over cannot overwrite the new owner's work (`ClaimLost`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

import redis

from kades.errors import TemporaryFailure
from kades.events.envelope import CloudEvent, from_structured, to_dict
from kades.keys import dedup_key
from kades.logs import log
from kades.runtime.ttlcache import TtlCache

if TYPE_CHECKING:
    from kades.runtime.function import Context

logger = logging.getLogger("kades.runtime")

# A claim's value is this prefix plus a token of its owner, so only the owner changes it.
_PROCESSING = b"processing:"


class _Script:
    """A Lua script called by its SHA-1 (EVALSHA), its text sent only to a server that does
    not know it yet (a restart, a failover, another node of a cluster). Every script here
    touches one key, so it runs on any Redis, one or a cluster."""

    def __init__(self, text: str):
        self.text, self.sha = text, hashlib.sha1(text.encode()).hexdigest()

    def __call__(self, client: redis.Redis, key: str, *args):
        try:
            return client.evalsha(self.sha, 1, key, *args)
        except redis.exceptions.NoScriptError:
            return client.eval(self.text, 1, key, *args)


# Each acts only while the claim still holds the owner's token (ARGV[1]).
_RELEASE = _Script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                   "return redis.call('DEL', KEYS[1]) end return 0")
_REPLACE = _Script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                   "return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return false")
_RENEW = _Script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                 "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0")


class ClaimLost(TemporaryFailure):
    """Our lease ran out and another owner took the event: its results win, ours are dropped."""


@dataclass(frozen=True)
class Claim:
    key: str
    # None: we own the claim. A list: already done, these were the replies.
    done_replies: list[CloudEvent] | None
    in_progress: bool = False
    token: bytes = b""
    lease_s: float = 0.0
    abandoned: TtlCache | None = field(default=None, repr=False, compare=False)


def abandoned_claims(ctx: Context) -> TtlCache:
    """A function's claims its process failed to give back (Redis went away mid-event): key
    -> our token, for a lease (then Redis has expired them). Nobody handles them any more, so
    a redelivery reaching this process takes them over at once instead of answering 503
    until the claim expires. One per Context (`ctx.local(abandoned_claims)`)."""
    return TtlCache(ttl_s=ctx.settings.claim_lease_s)


def is_done(stored: bytes | None) -> bool:
    """Whether a stored mark says "handled" (not absent, not a claim in progress)."""
    return stored is not None and not stored.startswith(_PROCESSING)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def source_and_id(event: CloudEvent) -> str:
    """CloudEvents core §3.1.1: (source, id) identifies an event."""
    return f"{event.source}\n{event.id}"


def claim(client: redis.Redis, function: str, event: CloudEvent,
          identity: Callable[[CloudEvent], str] | None = None, *, lease_s: float,
          abandoned: TtlCache) -> Claim:
    """Our claim of the event, or what others did with it. `abandoned`: this function's
    claims its process could not give back (`abandoned_claims`)."""
    key = dedup_key(function, (identity or source_and_id)(event))
    token = _PROCESSING + os.urandom(8).hex().encode()
    # SET NX, then GET only when it fails (a redelivery): a script doing both in one round
    # trip cost ~8 us more per new event (median of 40 interleaved rounds, 66 vs 58 us) to
    # save ~40 us per redelivery, a loss unless one event in six is redelivered.
    if client.set(key, token, nx=True, px=_ms(lease_s)):
        return Claim(key, None, token=token, lease_s=lease_s, abandoned=abandoned)
    stored = client.get(key)
    if stored is None:  # expired between the two calls: try once more
        return claim(client, function, event, identity, lease_s=lease_s, abandoned=abandoned)
    if stored.startswith(_PROCESSING):
        if abandoned.get(key) == stored and _REPLACE(client, key, stored, token, _ms(lease_s)):
            abandoned.pop(key)
            return Claim(key, None, token=token, lease_s=lease_s, abandoned=abandoned)
        return Claim(key, None, in_progress=True)
    return Claim(key, [from_structured(item) for item in json.loads(stored)])


def complete(client: redis.Redis, claim_: Claim, replies: list[CloudEvent], ttl_s: int) -> None:
    """Turn our claim into the done mark; ClaimLost if it is no longer ours."""
    try:
        done = _REPLACE(client, claim_.key, claim_.token,
                        json.dumps([to_dict(e) for e in replies]), _ms(ttl_s))
    except redis.RedisError:
        _abandon(claim_)
        raise
    if not done:
        raise ClaimLost(f"claim {claim_.key} expired and was taken over before it was done")


def release(client: redis.Redis, claim_: Claim) -> None:
    """Give the event back (the handler failed) so that a retry handles it again."""
    try:
        _RELEASE(client, claim_.key, claim_.token)
    except redis.RedisError:
        _abandon(claim_)
        raise


class Lease:
    """A claim being renewed; `lost` is set once a renewal finds it is no longer ours."""

    def __init__(self, client: redis.Redis, claim_: Claim):
        self.client, self.claim = client, claim_
        self.lost = threading.Event()
        self.due = time.monotonic() + claim_.lease_s / 3

    def check(self) -> None:
        """ClaimLost if another owner has the event now (so our results must not leave)."""
        if self.lost.is_set():
            raise ClaimLost(f"claim {self.claim.key} expired and was taken over")

    def renew(self) -> None:
        now = time.monotonic()
        try:
            kept = _RENEW(self.client, self.claim.key, self.claim.token, _ms(self.claim.lease_s))
        except redis.RedisError as error:
            # Try again sooner; if Redis stays away the claim may expire, which the
            # compare-and-set of the done mark then notices.
            log(logger, logging.WARNING, "claim not renewed", key=self.claim.key, error=str(error))
            self.due = now + self.claim.lease_s / 6
            return
        if kept:
            self.due = now + self.claim.lease_s / 3
        else:
            self.due = math.inf
            self.lost.set()
            log(logger, logging.WARNING, "claim lost: taken over by another owner",
                key=self.claim.key)


class _Renewer:
    """One thread per process renews every claim its handlers hold, a third of a lease apart."""

    def __init__(self):
        self._leases: set[Lease] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, lease: Lease) -> None:
        with self._changed:
            self._leases.add(lease)
            if self._thread is None or not self._thread.is_alive():  # first, or forked
                self._thread = threading.Thread(target=self._run, name="kades-claim-renewer",
                                                daemon=True)
                self._thread.start()
            self._changed.notify()

    def remove(self, lease: Lease) -> None:
        with self._changed:
            self._leases.discard(lease)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [lease for lease in self._leases if lease.due <= now]
                if not due:
                    soonest = min((lease.due for lease in self._leases), default=math.inf)
                    self._changed.wait(min(soonest - now, 60.0))
                    continue
            for lease in due:  # outside the lock: a slow Redis holds up no handler
                lease.renew()


# Process-wide on purpose, like the connection pools (kades.clients): one thread renews the
# leases of every function and Context of the process; it keeps no state past a handler's run.
_renewer = _Renewer()


@contextlib.contextmanager
def renewed(client: redis.Redis, claim_: Claim) -> Iterator[Lease]:
    """Keep `claim_` alive while the block runs (a handler may take longer than a lease)."""
    lease = Lease(client, claim_)
    _renewer.add(lease)
    try:
        yield lease
    finally:
        _renewer.remove(lease)


def _abandon(claim_: Claim) -> None:
    if claim_.abandoned is not None:
        claim_.abandoned.put(claim_.key, claim_.token)
