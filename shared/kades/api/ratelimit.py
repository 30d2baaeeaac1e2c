"""Rate limits per API key and tier, in Redis: GCRA, a sliding-window limiter without windows.

GCRA (the generic cell rate algorithm) keeps one number per key, the theoretical arrival
time: a request is allowed when it is at most `burst` request-intervals ahead of now. So a
key may send `burst` requests at once, then `rate_per_min` per minute, and no fixed window
boundary ever lets twice the rate through. One Lua call per request, atomic across replicas.
If Redis cannot be asked, the caller answers 503: the limiter fails closed, never open.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis

from kades.keys import RATE_LIMIT
from kades.settings import Settings

# KEYS[1]; ARGV: now_ms, interval_ms, burst, cost -> {allowed, remaining, retry_after_ms, reset_ms}
_GCRA = """
local now, interval, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, math.floor((now - (tat - interval * burst)) / interval), allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
"""


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


def check(client: redis.Redis, key_id: str, limit: Limit, *, scope: str = "http",
          cost: int = 1, now_s: float | None = None) -> Decision:
    """Count one request of `key_id`; raises redis errors (the caller answers 503)."""
    now_ms = (time.time() if now_s is None else now_s) * 1000
    interval_ms = 60_000 / limit.rate_per_min
    if not _scripts:  # EVALSHA after the first call: the script is not sent each time
        _scripts.append(client.register_script(_GCRA))
    allowed, remaining, retry_ms, reset_ms = _scripts[0](
        keys=[RATE_LIMIT.format(key_id=key_id, scope=scope)],
        args=[now_ms, interval_ms, limit.burst, cost], client=client)
    return Decision(bool(allowed), limit, int(remaining), float(retry_ms) / 1000,
                    float(reset_ms) / 1000)
