"""The api's rate-limit leases (kades.api.ratelimit): what a replica serves from the tokens it
took from Redis at once, on real Redis. What GCRA grants is still what is served: no more
(the bound), none twice, and tokens left unused lapse instead of being carried on."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from kades.api import ratelimit
from kades.api.ratelimit import LEASE_S, Leases, Limit, lease_size

T0 = 1_000_000.0  # wall time given to GCRA: fixed, so no token comes back during a test


class Counted:
    """A Redis client that counts the limiter's script calls (round trips), then makes them."""

    def __init__(self, client):
        self.client, self.calls = client, 0
        self._lock = threading.Lock()

    def evalsha(self, *args):
        with self._lock:
            self.calls += 1
        return self.client.evalsha(*args)

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_take_grants_what_is_there_up_to_the_want(redis_conn):
    limit = Limit(rate_per_min=60, burst=3)
    granted, decision = ratelimit.take(redis_conn, "k", limit, want=5, now_s=T0)
    assert (granted, decision.allowed, decision.remaining) == (3, True, 0)
    granted, decision = ratelimit.take(redis_conn, "k", limit, want=5, now_s=T0 + 0.5)
    assert granted == 0 and not decision.allowed and 0.4 < decision.retry_after_s <= 0.5
    assert ratelimit.take(redis_conn, "k", limit, want=5, now_s=T0 + 2.0)[0] == 2  # 1/s back
    # all or none: two requests at once need two tokens
    assert not ratelimit.check(redis_conn, "k", limit, cost=2, now_s=T0 + 3.0).allowed
    assert ratelimit.check(redis_conn, "k", limit, cost=1, now_s=T0 + 3.0).allowed


def test_the_standard_tier_asks_redis_for_every_request(redis_conn):
    limit = Limit(rate_per_min=60, burst=100)
    assert lease_size(limit) == 1 and lease_size(Limit(300, 500)) == 5
    counted, leases = Counted(redis_conn), Leases()
    remaining = [leases.check(counted, "k", limit, now_s=T0).remaining for _ in range(5)]
    assert remaining == [99, 98, 97, 96, 95] and counted.calls == 5


def test_a_lease_serves_the_burst_exactly_with_one_round_trip_per_lease(redis_conn):
    limit = Limit(rate_per_min=60, burst=1000)   # leases of 10
    counted, leases = Counted(redis_conn), Leases()
    decisions = [leases.check(counted, "k", limit, now_s=T0) for _ in range(1050)]
    allowed = [d for d in decisions if d.allowed]
    print(f"\n1,050 requests on a burst of 1,000: {len(allowed)} allowed, {counted.calls} round trips")
    assert len(allowed) == 1000 and all(not d.allowed for d in decisions[1000:])
    assert counted.calls == 100 + 50  # a lease per 10 allowed; each refusal asks Redis
    # the headers count down one by one, leased tokens included
    assert [d.remaining for d in decisions[:25]] == list(range(999, 974, -1))
    assert decisions[-1].headers()["X-RateLimit-Remaining"] == "0"
    assert decisions[-1].headers()["Retry-After"] == "1"


def test_threads_of_one_replica_serve_no_more_and_lose_none(redis_conn):
    limit = Limit(rate_per_min=60, burst=2000)   # leases of 20
    counted, leases = Counted(redis_conn), Leases()

    def requests(count: int) -> int:
        return sum(leases.check(counted, "k", limit, now_s=T0).allowed for _ in range(count))

    with ThreadPoolExecutor(8) as pool:
        allowed = sum(pool.map(requests, [300] * 8))  # 2,400 asked
    print(f"\n8 threads, 2,400 requests on a burst of 2,000: {allowed} allowed, "
          f"{counted.calls} round trips")
    assert allowed == 2000
    assert counted.calls <= 100 + 400  # one refill at a time: a lease per 20, then refusals


def test_two_replicas_together_serve_the_burst_and_refuse_at_most_a_lease_early(redis_conn):
    limit = Limit(rate_per_min=60, burst=1000)   # leases of 10
    replicas = [Leases(), Leases()]
    first_refusal, allowed = None, 0
    for n in range(1100):
        decision = replicas[n % 3 % 2].check(redis_conn, "k", limit, now_s=T0)
        allowed += decision.allowed
        if not decision.allowed and first_refusal is None:
            first_refusal = allowed
    print(f"\ntwo replicas, burst 1,000: {allowed} allowed, the first refusal after {first_refusal}")
    assert allowed == 1000  # what one replica held was served to the requests it got
    assert 1000 - lease_size(limit) <= first_refusal <= 1000


def test_leased_tokens_lapse_instead_of_being_carried_on(redis_conn):
    limit = Limit(rate_per_min=60, burst=2000)   # leases of 20
    now = [0.0]
    counted, leases = Counted(redis_conn), Leases(clock=lambda: now[0])
    assert leases.check(counted, "k", limit, now_s=T0).remaining == 1999   # holds 19 more
    now[0] = LEASE_S - 0.01
    assert leases.check(counted, "k", limit, now_s=T0).allowed and counted.calls == 1
    now[0] = LEASE_S  # the 18 left lapse: counted in Redis, served to nobody
    decision = leases.check(counted, "k", limit, now_s=T0)
    assert decision.allowed and counted.calls == 2
    assert decision.remaining == 2000 - 40 + 19
