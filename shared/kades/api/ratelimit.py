"""Rate limits per API key and tier, in Redis: GCRA, a sliding-window limiter without windows.

GCRA (the generic cell rate algorithm) keeps one number per key, the theoretical arrival
time: a request is allowed when it is at most `burst` request-intervals ahead of now. So a
key may send `burst` requests at once, then `rate_per_min` per minute, and no fixed window
boundary ever lets twice the rate through. One Lua call, atomic across replicas.
If Redis cannot be asked, the caller answers 503: the limiter fails closed, never open.

Leases: a Redis round trip in the middle of a request cost the api's threaded server about
as much CPU as the rest of a cached answer (docs/performance.md, "API cached analysis").
So a replica takes up to 1 % of a key's burst at once (`lease_size`: none for the standard
tier's 100, 5 of premium's 500, at most LEASE_MAX) and serves the key's next requests from
them without asking Redis. What GCRA granted is still what is served: the tokens were
counted when taken. The cost is a bound instead of exactness: over any stretch of time a key
is served at most its limit plus one lease per replica, and while other replicas hold tokens
a replica may refuse the key that many early. Tokens unused LEASE_S after they were taken
lapse: never served later, they go back to Redis with the replica's next lease of the key
(lost, a request a second to each of two replicas would cost a premium key twice its rate).
A key with a lease size of 1 asks Redis for every request, as before.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import redis

from kades.keys import RATE_LIMIT
from kades.settings import Settings

# KEYS[1]; ARGV: now_ms, interval_ms, burst, want, least, returned
# -> {granted, remaining, retry_after_ms, reset_ms}: gives back `returned` tokens taken earlier
# and never served, then grants as many tokens as are there up to `want`, none when fewer than
# `least` (then retry_after_ms says when `least` will be). With want = least = cost >= 1 and
# nothing returned it decides and answers as before the leases (but `cost` for its allowed 1).
_GCRA = """
local now, interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local want, least, returned = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1]) - interval * returned
if tat < now then tat = now end
-- a guess by division, one more than fits; the loop's exact test decides (float rounding)
local granted = math.floor((now - (tat - interval * burst)) / interval) + 1
granted = math.min(want, math.max(least, granted))
while granted >= least and tat + interval * granted - interval * burst > now do
  granted = granted - 1
end
if granted < least then
  return {0, math.floor((now - (tat - interval * burst)) / interval),
          tat + interval * least - interval * burst - now, tat - now}
end
local new_tat = tat + interval * granted
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {granted, math.floor((now - (new_tat - interval * burst)) / interval), 0, new_tat - now}
"""

LEASE_SHARE = 100   # a lease is at most 1/LEASE_SHARE of a key's burst
LEASE_MAX = 64      # and at most this many tokens
LEASE_S = 1.0       # leased tokens unused this long after they were taken lapse
MAX_LEASED_KEYS = 10_000  # keys a process holds leases for; lapsed ones go first
REFILL_WAIT_S = 0.05  # a request waits this long for another's refill, then asks itself

# Process-wide: the script's text and SHA are the same for every Context and every client.
_scripts: list = []  # the registered GCRA script (its SHA), called with any client


@dataclass(frozen=True)
class Limit:
    rate_per_min: int
    burst: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: Limit
    remaining: int
    retry_after_s: float
    reset_s: float

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit.rate_per_min),
                   "X-RateLimit-Remaining": str(max(0, self.remaining)),
                   "X-RateLimit-Reset": str(math.ceil(self.reset_s))}
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_s)))
        return headers


def tier_limit(tier: str, settings: Settings) -> Limit:
    return {"standard": Limit(60, 100), "premium": Limit(300, 500),
            "enterprise": Limit(settings.enterprise_rate_per_min, settings.enterprise_burst)}[tier]


def lease_size(limit: Limit) -> int:
    """Tokens a replica takes from `limit` at once: 1 % of its burst, 1 to LEASE_MAX."""
    return max(1, min(LEASE_MAX, limit.burst // LEASE_SHARE))


def take(client: redis.Redis, key_id: str, limit: Limit, *, want: int = 1, least: int = 1,
         returned: int = 0, scope: str = "http",
         now_s: float | None = None) -> tuple[int, Decision]:
    """Take up to `want` tokens of `key_id`'s limit, none when fewer than `least` are there,
    after giving back `returned` tokens taken earlier and never served: (tokens taken, the
    decision for a request that needs `least`). Raises redis errors (the caller answers 503)."""
    now_ms = (time.time() if now_s is None else now_s) * 1000
    interval_ms = 60_000 / limit.rate_per_min
    if not _scripts:  # EVALSHA after the first call: the script is not sent each time
        _scripts.append(client.register_script(_GCRA))
    granted, remaining, retry_ms, reset_ms = _scripts[0](
        keys=[RATE_LIMIT.format(key_id=key_id, scope=scope)],
        args=[now_ms, interval_ms, limit.burst, want, least, returned], client=client)
    return int(granted), Decision(bool(granted), limit, int(remaining), float(retry_ms) / 1000,
                                  float(reset_ms) / 1000)


def check(client: redis.Redis, key_id: str, limit: Limit, *, scope: str = "http",
          cost: int = 1, now_s: float | None = None) -> Decision:
    """Count `cost` requests of `key_id` at once, all or none, in Redis (no lease)."""
    return take(client, key_id, limit, want=cost, least=cost, scope=scope, now_s=now_s)[1]


@dataclass
class _Lease:
    limit: Limit
    tokens: int          # taken from Redis, not used yet
    remaining: int       # what Redis had left when they were taken
    reset_s: float       # its X-RateLimit-Reset then
    taken_at: float      # clock time
    refill: threading.Lock
    lapsed: int = 0      # tokens that lapsed unused, given back with the next lease


class Leases:
    """The tokens this process took from keys' limits and has not used (`check`). One per
    api Context (`leases`). Thread-safe; one refill per key at a time: a thread finding the
    lease empty while another refills it waits for that refill (up to `refill_wait_s`)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 refill_wait_s: float = REFILL_WAIT_S):
        self.clock = clock
        self.refill_wait_s = refill_wait_s
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._lock = threading.Lock()

    def check(self, client: redis.Redis, key_id: str, limit: Limit, *, scope: str = "http",
              now_s: float | None = None) -> Decision:
        """Count one request of `key_id`: from this process's lease when it holds a token,
        else from Redis, taking a new lease (of `lease_size(limit)`) as it does."""
        size = lease_size(limit)
        if size == 1:
            return check(client, key_id, limit, scope=scope, now_s=now_s)
        name = (key_id, scope)
        used = self._use(name, limit)
        if used is not None:
            return used
        lease = self._lease(name, limit)
        # one refill at a time, others wait for it; but not behind a refill that hangs (Redis
        # slow or away: each would wait out its own timeout in turn): past refill_wait_s a
        # request asks Redis for its one token itself
        if not lease.refill.acquire(timeout=self.refill_wait_s):
            return check(client, key_id, limit, scope=scope, now_s=now_s)
        try:
            used = self._use(name, limit)
            if used is not None:
                return used
            with self._lock:
                returned, lease.lapsed = lease.lapsed, 0
            try:
                granted, decision = take(client, key_id, limit, want=size,
                                         returned=returned, scope=scope, now_s=now_s)
            except BaseException:  # not given back: the next refill gives them back
                with self._lock:
                    lease.lapsed += returned
                raise
            if granted > 1:
                # into the lease whose refill lock this is: one put in its place meanwhile
                # (another tier, _forget_some) has its own lock and tokens, not overwritten
                with self._lock:
                    lease.tokens, lease.remaining = granted - 1, decision.remaining
                    lease.reset_s, lease.taken_at = decision.reset_s, self.clock()
            return Decision(decision.allowed, limit, decision.remaining + max(0, granted - 1),
                            decision.retry_after_s, decision.reset_s)
        finally:
            lease.refill.release()

    def _use(self, name: tuple[str, str], limit: Limit) -> Decision | None:
        """A token of the lease, if it holds one that has not lapsed."""
        now = self.clock()
        with self._lock:
            lease = self._leases.get(name)
            if lease is None or lease.tokens <= 0 or lease.limit != limit:
                return None
            held_s = now - lease.taken_at
            if held_s >= LEASE_S:  # lapsed: given back with the next lease
                lease.lapsed, lease.tokens = lease.lapsed + lease.tokens, 0
                return None
            lease.tokens -= 1
            return Decision(True, limit, lease.remaining + lease.tokens, 0.0,
                            max(0.0, lease.reset_s - held_s))

    def _lease(self, name: tuple[str, str], limit: Limit) -> _Lease:
        with self._lock:
            lease = self._leases.get(name)
            if lease is None or lease.limit != limit:  # a new key, or its tier changed
                if len(self._leases) >= MAX_LEASED_KEYS:
                    self._forget_some()
                lease = self._leases[name] = _Lease(limit, 0, 0, 0.0, 0.0, threading.Lock())
            return lease

    def _forget_some(self) -> None:
        """Make room (under the lock): lapsed and empty leases go, else the oldest key's. Not
        one being refilled: it is empty only until its refill writes its tokens."""
        now = self.clock()
        idle = [name for name, lease in self._leases.items() if not lease.refill.locked()
                and (lease.tokens <= 0 or now - lease.taken_at >= LEASE_S)]
        for name in idle or [next(iter(self._leases))]:
            del self._leases[name]


def leases(ctx) -> Leases:
    """The api process's leases, one per Context (`ctx.local`)."""
    return Leases()
