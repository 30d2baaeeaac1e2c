"""The api's rate-limit leases (kades.api.ratelimit): what a replica serves from the tokens it
took from Redis at once, on real Redis. What GCRA grants is still what is served: no more
(the bound), none twice, and tokens left unused lapse instead of being carried on, back to Redis
with the next lease."""
from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from kades.api import ratelimit
from kades.api.ratelimit import LEASE_S, Leases, Limit, lease_size

T0 = 1_000_000.0  # wall time given to GCRA: fixed, so no token comes back during a test


def frozen_clock() -> float:
    """The leases' clock where none lapses: a slow machine must not change what is counted."""
    return 0.0


class Counted:
    """A Redis client that counts the limiter's script calls (round trips) and how many were
    in flight at once. A call that finds the script not loaded yet (a fresh Redis, a test run
    alone) is not counted: redis-py loads it and calls again."""

    def __init__(self, client):
        self.client, self.calls, self.in_flight, self.most_in_flight = client, 0, 0, 0
        self._lock = threading.Lock()

    def evalsha(self, *args):
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            result = self.client.evalsha(*args)
        finally:
            with self._lock:
                self.in_flight -= 1
        with self._lock:
            self.calls += 1
        return result

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
    counted, leases = Counted(redis_conn), Leases(clock=frozen_clock)
    decisions = [leases.check(counted, "k", limit, now_s=T0) for _ in range(1050)]
    allowed = [d for d in decisions if d.allowed]
    print(f"\n1,050 requests on a burst of 1,000: {len(allowed)} allowed, "
          f"{counted.calls} round trips")
    assert len(allowed) == 1000 and all(not d.allowed for d in decisions[1000:])
    assert counted.calls == 100 + 50  # a lease per 10 allowed; each refusal asks Redis
    # the headers count down one by one, leased tokens included
    assert [d.remaining for d in decisions[:25]] == list(range(999, 974, -1))
    assert decisions[-1].headers()["X-RateLimit-Remaining"] == "0"
    assert decisions[-1].headers()["Retry-After"] == "1"


def test_threads_of_one_replica_serve_no_more_and_lose_none(redis_conn):
    limit = Limit(rate_per_min=60, burst=2000)   # leases of 20
    counted = Counted(redis_conn)
    leases = Leases(clock=frozen_clock, refill_wait_s=60.0)  # a slow machine waits, no more

    def requests(count: int) -> int:
        return sum(leases.check(counted, "k", limit, now_s=T0).allowed for _ in range(count))

    with ThreadPoolExecutor(8) as pool:
        allowed = sum(pool.map(requests, [300] * 8))  # 2,400 asked
    print(f"\n8 threads, 2,400 requests on a burst of 2,000: {allowed} allowed, "
          f"{counted.calls} round trips")
    assert allowed == 2000
    assert counted.calls <= 100 + 400  # one refill at a time: a lease per 20, then refusals
    assert counted.most_in_flight == 1  # without the refill lock threads would refill at once


def test_two_replicas_together_serve_the_burst_and_refuse_at_most_a_lease_early(redis_conn):
    limit = Limit(rate_per_min=60, burst=1000)   # leases of 10
    replicas = [Leases(clock=frozen_clock), Leases(clock=frozen_clock)]
    first_refusal, allowed = None, 0
    for n in range(1100):
        decision = replicas[n % 3 % 2].check(redis_conn, "k", limit, now_s=T0)
        allowed += decision.allowed
        if not decision.allowed and first_refusal is None:
            first_refusal = allowed
    print(f"\ntwo replicas, burst 1,000: {allowed} allowed, "
          f"the first refusal after {first_refusal}")
    assert allowed == 1000  # what one replica held was served to the requests it got
    assert 1000 - lease_size(limit) <= first_refusal <= 1000


def test_leased_tokens_lapse_and_go_back_with_the_next_lease(redis_conn):
    limit = Limit(rate_per_min=60, burst=2000)   # leases of 20
    now = [0.0]
    counted, leases = Counted(redis_conn), Leases(clock=lambda: now[0])
    assert leases.check(counted, "k", limit, now_s=T0).remaining == 1999   # holds 19 more
    now[0] = LEASE_S - 0.01
    assert leases.check(counted, "k", limit, now_s=T0).allowed and counted.calls == 1
    now[0] = LEASE_S  # the 18 left lapse: served to nobody, given back with the next lease
    decision = leases.check(counted, "k", limit, now_s=T0)
    assert decision.allowed and counted.calls == 2
    assert decision.remaining == 2000 - 3  # the three served are all the key paid


def test_a_trickle_to_replicas_costs_a_key_only_what_it_is_served(redis_conn):
    """A request a second to each of two replicas: each lease has lapsed when its replica's next
    request comes. Were lapsed tokens lost, the key would pay 2 x 5 a second against its rate of
    5, lose its burst within 100 s, then be refused though far under its rate."""
    limit = Limit(rate_per_min=300, burst=500)   # premium: leases of 5
    now = [0.0]
    replicas = [Leases(clock=lambda: now[0]) for _ in range(2)]
    for second in range(30):
        now[0] = float(second)
        assert all(r.check(redis_conn, "k", limit, now_s=T0 + second).allowed for r in replicas)
    left = ratelimit.check(redis_conn, "k", limit, now_s=T0 + 29).remaining
    assert left >= 500 - 1 - 2 * lease_size(limit)  # this request, what the replicas hold


def test_requests_do_not_queue_behind_a_refill_that_hangs():
    """Redis accepts connections but never answers: each request fails on its own timeout, at
    once after the refill wait, not one after another behind the refill lock."""
    hole = socket.create_server(("127.0.0.1", 0))  # listens, never reads nor answers
    try:
        client = redis.Redis(port=hole.getsockname()[1], socket_timeout=0.3,
                             socket_connect_timeout=0.3, retry=Retry(NoBackoff(), 0))
        counted, leases = Counted(client), Leases(refill_wait_s=0.05)
        limit = Limit(rate_per_min=300, burst=500)   # premium: leases of 5
        barrier = threading.Barrier(4)

        def request() -> type:
            barrier.wait()
            try:
                leases.check(counted, "k", limit)
            except redis.RedisError as error:
                return type(error)
            return type(None)

        with ThreadPoolExecutor(4) as pool:
            failures = list(pool.map(lambda _: request(), range(4)))
        print(f"\n4 requests on a Redis that never answers: {failures}; "
              f"{counted.most_in_flight} calls waited at once")
        assert all(issubclass(f, redis.TimeoutError) for f in failures)
        assert counted.most_in_flight == 4  # one refill, three past the wait: none in line
    finally:
        hole.close()
