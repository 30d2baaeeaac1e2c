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

Behind a primary with replicas (Settings.redis_wait_replicas) replication is asynchronous,
so an acknowledged event could vanish with a primary that dies before passing it on. There
the claim records the primary it was taken on (its replication id, which a promoted replica
changes), the done mark is written only on that same primary, and the event is acknowledged
only once a WAIT on the done mark's connection says every replica in step with the primary
(and at least the number set) has it -- and with it every write made before it, so whichever
replica Sentinel promotes has it. A failover while the handler ran (`PrimaryChanged`) or replicas
that are slow to answer (`NotReplicated`) is a 503: the Broker retries.
"""
from __future__ import annotations

import contextlib
import functools
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
from kades.keys import dedup_key, sent_key
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

    def then_wait(self, client: redis.Redis, key: str, *args, replicas: int, timeout_ms: int):
        """(the script's answer, how many replicas have its writes): `eval_then_wait`."""
        return eval_then_wait(client, self.sha, self.text, [key], args, replicas=replicas,
                              timeout_ms=timeout_ms)


def eval_then_wait(client: redis.Redis, sha: str, text: str, keys: list, args, *,
                   replicas: int, timeout_ms: int):
    """(the script's answer, how many replicas have its writes): the script (by its SHA-1,
    its text if the server lacks it) and a WAIT pipelined on one connection, one round trip
    (WAIT counts that connection's writes)."""
    for command, script in (("EVALSHA", sha), ("EVAL", text)):
        pipe = client.pipeline(transaction=False)
        pipe.execute_command(command, script, len(keys), *keys, *args)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        answer, acked = pipe.execute(raise_on_error=False)
        if not isinstance(answer, redis.exceptions.NoScriptError):
            break
    for result in (answer, acked):
        if isinstance(result, Exception):
            raise result
    return answer, acked


# Each acts only while the claim still holds the owner's token (ARGV[1]).
_RELEASE = _Script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                   "return redis.call('DEL', KEYS[1]) end return 0")
_REPLACE = _Script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                   "return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return false")
_RENEW = _Script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                 "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0")

# With replicas: a claim is "<token>@<replication id of the primary it was taken on>".
_PRIMARY = "string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)')"
# The primary's replicas in step with it: online, and acknowledged within the last
# IN_STEP_LAG_S seconds (a replica acknowledges every second; a stopped one drops out).
IN_STEP_LAG_S = 2
# Lua: sets `in_step` (and `primary`, its replication id); also kades.runtime.state's commit.
IN_STEP_SCRIPT = ("local info, in_step = redis.call('INFO', 'replication'), 0 "
                  "for lag in string.gmatch(info, "
                  "'slave%d+:[^\\r\\n]*state=online[^\\r\\n]*lag=(%d+)') do "
                  f"if tonumber(lag) <= {IN_STEP_LAG_S} then in_step = in_step + 1 end end "
                  "local primary = string.match(info, 'master_replid:(%x+)') ")
# ARGV: token, lease ms. {1, our claim, replicas in step} or {0, what is stored, in step}.
_CLAIM_ON_PRIMARY = _Script(
    IN_STEP_SCRIPT + "local claim = ARGV[1] .. '@' .. primary "
    "if redis.call('SET', KEYS[1], claim, 'NX', 'PX', ARGV[2]) then return {1, claim, in_step} end "
    "return {0, redis.call('GET', KEYS[1]), in_step}")
# ARGV: the abandoned claim, our token, lease ms. Our claim, or nil if it is not there any more.
_TAKE_OVER_ON_PRIMARY = _Script(
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end "
    f"local claim = ARGV[2] .. '@' .. {_PRIMARY} "
    "redis.call('SET', KEYS[1], claim, 'PX', ARGV[3]) return claim")
# ARGV: our claim, the done mark, its ms. 1 done, 0 not our claim, -1 another primary now.
_DONE_ON_PRIMARY = _Script(
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
    f"if string.match(ARGV[1], '@(%x+)$') ~= {_PRIMARY} then return -1 end "
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1")

# ARGV: the replies, their ms. nil when they were kept, else the replies kept before, which
# are touched (the same time to live, as _STILL_DONE does): a write, so that a WAIT after it
# on this connection counts the replicas that have them. Without it a retry on another
# connection waited for nothing and sent them, perhaps from a primary that never passed
# them on: a failover then, and the next retry would send other content under their ids.
_KEEP_FIRST = _Script("if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
                      "return false end "
                      "local ttl = redis.call('PTTL', KEYS[1]) "
                      "if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end "
                      "return redis.call('GET', KEYS[1])")

# Whether this server has a done mark of the event (1) or not (0); if it has, a write that
# changes nothing (the same time to live), so that a WAIT after it on the same connection
# says whether the replicas have the mark, which came before it. The claim and the wait can
# reach different servers while Sentinel fails over (a pool's older connections to a deposed
# primary beside new ones to the promoted replica): a WAIT where the mark is not proves nothing.
_STILL_DONE = _Script(f"local mark = redis.call('GET', KEYS[1]) "
                      f"if not mark or string.sub(mark, 1, {len(_PROCESSING)}) == "
                      f"'{_PROCESSING.decode()}' then return 0 end "
                      "local ttl = redis.call('PTTL', KEYS[1]) "
                      "if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end return 1")


class ClaimLost(TemporaryFailure):
    """Our lease ran out and another owner took the event: its results win, ours are dropped."""


class PrimaryChanged(TemporaryFailure):
    """Redis failed over while the handler ran: writes the old primary had not passed on
    may be lost, so the event is handled again on the new one."""


class NotReplicated(TemporaryFailure):
    """The done mark is on the primary but not yet on enough replicas to survive its loss."""


@dataclass(frozen=True)
class Claim:
    key: str
    # None: we own the claim. A list: already done, these were the replies.
    done_replies: list[CloudEvent] | None
    in_progress: bool = False
    token: bytes = b""
    lease_s: float = 0.0
    abandoned: TtlCache | None = field(default=None, repr=False, compare=False)
    replicas: int = 0   # the done mark waits for this many replicas (Settings.redis_wait_replicas)
    wait_s: float = 0.0

    @property
    def sent_key(self) -> str:
        """Where the replies sent to the sink are kept (first_sent)."""
        return sent_key(self.key)


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
          identity: Callable[[CloudEvent], str] | None = None, **options) -> Claim:
    """Our claim of the event, `identity(event)` (by default its source and id), or what
    others did with it: `claim_identity`."""
    return claim_identity(client, function, (identity or source_and_id)(event), **options)


def claim_options(ctx: Context) -> dict:
    """The options of `claim` as a function's Context sets them."""
    return {"lease_s": ctx.settings.claim_lease_s, "abandoned": ctx.local(abandoned_claims),
            "replicas": ctx.settings.redis_wait_replicas,
            "wait_s": ctx.settings.redis_wait_timeout_s}


def claim_identity(client: redis.Redis, function: str, identity: str, *, lease_s: float,
                   abandoned: TtlCache, replicas: int = 0, wait_s: float = 0.5) -> Claim:
    """Our claim of what `identity` names (an event; a request kept undecoded), or what
    others did with it. `abandoned`: this function's claims its process could not give back
    (`abandoned_claims`). `replicas`: the done mark waits for at least that many
    (Settings.redis_wait_replicas) and for every replica in step with the primary at the
    claim, and the claim names its primary."""
    key = dedup_key(function, identity)
    token = _PROCESSING + os.urandom(8).hex().encode()
    if replicas:
        # Wait for every replica in step with the primary, not only `replicas` of them:
        # Sentinel may promote any of them (it ranks them by offsets it read up to 10 s
        # before), and one without the done mark would lose an acknowledged event.
        taken, stored, in_step = _CLAIM_ON_PRIMARY(client, key, token, _ms(lease_s))
        replicas = max(replicas, in_step)
    ours = functools.partial(Claim, key, None, lease_s=lease_s, abandoned=abandoned,
                             replicas=replicas, wait_s=wait_s)
    if replicas:
        if taken:
            return ours(token=stored)
    else:
        # SET NX, then GET only when it fails (a redelivery): a script doing both in one
        # round trip cost ~8 us more per new event (median of 40 interleaved rounds, 66 vs
        # 58 us) to save ~40 us per redelivery, a loss unless one in six is redelivered.
        if client.set(key, token, nx=True, px=_ms(lease_s)):
            return ours(token=token)
        stored = client.get(key)
        if stored is None:  # expired between the two calls: try once more
            return claim_identity(client, function, identity, lease_s=lease_s,
                                  abandoned=abandoned)
    if stored.startswith(_PROCESSING):
        if abandoned.get(key) == stored:
            taken = (_TAKE_OVER_ON_PRIMARY(client, key, stored, token, _ms(lease_s)) if replicas
                     else _REPLACE(client, key, stored, token, _ms(lease_s)) and token)
            if taken:
                abandoned.pop(key)
                return ours(token=taken)
        return Claim(key, None, in_progress=True)
    replies = [from_structured(item) for item in json.loads(stored)]
    if replicas:  # done: the attempt that did it may have been refused for want of replicas
        there, acked = _STILL_DONE.then_wait(client, key, replicas=replicas,
                                             timeout_ms=_ms(wait_s))
        if not there:
            raise PrimaryChanged(f"the done mark of {key} is not on the Redis that now answers "
                                 "(a failover): handled again")
        if acked < replicas:
            raise NotReplicated(f"the done mark of {key} reached {acked} of {replicas} "
                                f"replicas within {wait_s} s")
    return Claim(key, replies)


def complete(client: redis.Redis, claim_: Claim, replies: list[CloudEvent], ttl_s: int, *,
             sent: bool = False) -> None:
    """Turn our claim into the done mark; ClaimLost if it is no longer ours. With replicas,
    PrimaryChanged or NotReplicated (each a 503) unless the mark is on the claim's primary
    and on enough replicas. `sent`: replies went to the sink (first_sent kept them), which
    the done mark now answers for: their copy is let go."""
    done, acked = json.dumps([to_dict(e) for e in replies]), None
    try:
        if claim_.replicas:
            answer, acked = _DONE_ON_PRIMARY.then_wait(
                client, claim_.key, claim_.token, done, _ms(ttl_s),
                replicas=claim_.replicas, timeout_ms=_ms(claim_.wait_s))
        else:
            answer = 1 if _REPLACE(client, claim_.key, claim_.token, done, _ms(ttl_s)) else 0
    except redis.RedisError:
        _abandon(claim_)
        raise
    if answer == 0:
        raise ClaimLost(f"claim {claim_.key} expired and was taken over before it was done")
    if answer == -1:
        _abandon(claim_)  # ours still, on the new primary: a redelivery here takes it at once
        raise PrimaryChanged(f"Redis failed over while {claim_.key} was handled: handled again")
    if acked is not None and acked < claim_.replicas:
        raise NotReplicated(f"the done mark of {claim_.key} reached {acked} of "
                            f"{claim_.replicas} replicas within {claim_.wait_s} s")
    if sent:
        client.delete(claim_.sent_key)


def first_sent(client: redis.Redis, claim_: Claim, replies: list[CloudEvent],
               ttl_s: int) -> list[CloudEvent]:
    """The replies to send: ours, unless an earlier attempt of the event already sent some
    to the sink (and then failed), whose replies are sent again as they were. An event is its
    source and id (CloudEvents §3.1.1), yet a retry computes its replies afresh, from state
    that other events may have moved on meanwhile (sentiment-analysis summarises a token's
    hour as it stands): it would send other content under the same ids, and receivers that
    keep the first copy they see would disagree. With replicas, kept on enough of them
    before any is sent (else NotReplicated, a 503: nothing has gone out)."""
    value = json.dumps([to_dict(e) for e in replies])
    if claim_.replicas:
        kept, acked = _KEEP_FIRST.then_wait(client, claim_.sent_key, value, _ms(ttl_s),
                                           replicas=claim_.replicas, timeout_ms=_ms(claim_.wait_s))
        if acked < claim_.replicas:
            raise NotReplicated(f"the replies of {claim_.key} reached {acked} of "
                                f"{claim_.replicas} replicas within {claim_.wait_s} s")
    else:
        kept = _KEEP_FIRST(client, claim_.sent_key, value, _ms(ttl_s))
    return replies if kept is None else [from_structured(item) for item in json.loads(kept)]


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
    """One thread per process renews every claim its handlers hold, a third of a lease apart.

    It is woken only for a lease due before it wakes anyway (a shorter lease, or the first
    after it found none); the others are renewed when it wakes. Woken for every event, it cost
    each event a thread switch and a GIL hand-over (docs/performance.md, "Runtime and Redis").
    A lease falls due a third of a lease after it is taken, so while handlers run one after
    another it wakes about once per third of a lease."""

    def __init__(self):
        self._leases: set[Lease] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wakes_at = math.inf  # when the thread wakes by itself (monotonic)

    def add(self, lease: Lease) -> None:
        with self._changed:
            self._leases.add(lease)
            if self._thread is None or not self._thread.is_alive():  # first, or it died
                self._thread = threading.Thread(target=self._run, name="kades-claim-renewer",
                                                daemon=True)
                self._thread.start()
            elif lease.due < self._wakes_at:
                self._changed.notify()

    def remove(self, lease: Lease) -> None:
        with self._changed:
            self._leases.discard(lease)

    def _forked(self) -> None:
        """In a child after os.fork(), start afresh: the parent's thread is gone, but the
        waiter it left in the Condition is not, and would take the next notify (the child's
        thread would sleep through a lease due sooner); its lock may be held; and the leases
        are those of the parent's handlers, which run there, not here."""
        self.__init__()

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [lease for lease in self._leases if lease.due <= now]
                if not due:
                    soonest = min((lease.due for lease in self._leases), default=math.inf)
                    self._wakes_at = min(soonest, now + 60.0)
                    self._changed.wait(self._wakes_at - now)
                    continue
                self._wakes_at = -math.inf  # renewing: it looks again before it sleeps
            for lease in due:  # outside the lock: a slow Redis holds up no handler
                lease.renew()


# Process-wide on purpose, like the connection pools (kades.clients): one thread renews the
# leases of every function and Context of the process; it keeps no state past a handler's run.
_renewer = _Renewer()
os.register_at_fork(after_in_child=_renewer._forked)


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
