"""Claims are leases: a killed handler's event is taken over by the retry well before the
Trigger's retries run out, a slow handler keeps its claim by renewing it, and an owner whose
lease was taken over writes nothing (the done mark is a compare-and-set on its token)."""
from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis

from kades.broker.config import load_eventing
from kades.events.envelope import decode
from kades.runtime import dedup
from kades.runtime.ttlcache import TtlCache
from kades.settings import Settings
from runtimetest import binary, start_function, stop, tick_data, wait_for_line

EVENTING = Path(__file__).resolve().parents[2] / "eventing"
LEASE_S = 1.0  # short, so that each test waits only a few leases


def claim_keys(redis_conn) -> list[bytes]:
    return list(redis_conn.scan_iter("kades:dedup:counter:*"))  # every node of a cluster


def wait_until(condition, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def post_in_background(client, headers: dict, body: str, redis_conn):
    """Post a sleeping event through a test client in a thread; return once its handler runs."""
    answers = []
    thread = threading.Thread(target=lambda: answers.append(
        client.post("/", headers=headers, data=body)))
    thread.start()
    started = f"test:started:{headers['ce-id']}"
    wait_until(lambda: redis_conn.get(started) == b"1", timeout_s=5, what="the handler to start")
    return thread, answers


@pytest.fixture
def counter_process(kades_settings, redis_conn, tmp_path):
    """`start(name)`: a new process of the counter function with a 1 s lease; (url, process)."""
    processes = []

    def start(name: str):
        log_path = tmp_path / f"{name}.log"
        process = start_function("counter", log_path, KADES_REDIS_URL=kades_settings.redis_url,
                                 KADES_REDIS_CLUSTER=str(kades_settings.redis_cluster),
                                 KADES_CLAIM_LEASE_S=str(LEASE_S), GUNICORN_LOG_LEVEL="info")
        processes.append(process)
        listening = wait_for_line(log_path, lambda l: "Listening at" in l["message"],
                                  process=process)
        return re.search(r"http://[\d.]+:\d+", listening["message"]).group(0), process
    yield start
    for process in processes:
        stop(process)


@pytest.mark.slow
def test_killed_handler_event_is_taken_over_by_the_retry(counter_process, redis_conn):
    (first_url, first), (second_url, _) = counter_process("first"), counter_process("second")
    headers, body = binary(event_id="killed", data=tick_data(sleep_s=60))
    hung = threading.Thread(target=lambda: _post_ignoring_errors(first_url, headers, body),
                            daemon=True)
    hung.start()
    wait_until(lambda: redis_conn.get("test:started:killed") == b"1", timeout_s=10,
               what="the first process to start handling the event")
    time.sleep(1.5 * LEASE_S)
    (key,) = claim_keys(redis_conn)
    assert redis_conn.get(key).startswith(b"processing:")  # renewed past its first lease

    os.killpg(first.pid, signal.SIGKILL)  # master and worker: no cleanup, the claim stays
    first.wait()
    killed_at = time.monotonic()
    statuses = []
    while not statuses or statuses[-1] == 503:  # the Broker's retries, every 0.1 s
        assert time.monotonic() - killed_at < LEASE_S + 2, statuses
        statuses.append(httpx.post(second_url + "/", headers=headers, content=body,
                                   timeout=10).status_code)
        time.sleep(0.1)
    taken_over_s = time.monotonic() - killed_at
    assert statuses[0] == 503 and statuses[-1] == 200, statuses  # held, then taken over
    assert set(statuses[:-1]) == {503}
    assert taken_over_s <= LEASE_S + 0.5
    assert int(redis_conn.get("test:ticks")) == 1  # handled once, by the second process
    assert dedup.is_done(redis_conn.get(key))
    again = httpx.post(second_url + "/", headers=headers, content=body, timeout=10)
    assert again.status_code == 200 and int(redis_conn.get("test:ticks")) == 1


def _post_ignoring_errors(url: str, headers: dict, body: str) -> None:
    try:
        httpx.post(url + "/", headers=headers, content=body, timeout=30)
    except httpx.TransportError:
        pass  # the process was killed under this request, as intended


def test_default_lease_frees_a_claim_well_within_every_trigger_retry_span():
    """A dead owner's claim is gone at most one lease after its last renewal; the retries
    of every Trigger (and the Broker's default) last several leases."""
    lease_s = Settings().claim_lease_s
    for trigger in load_eventing(EVENTING).triggers:
        delivery = trigger.delivery
        span_s = sum(delivery.backoff_s(attempt) for attempt in range(1, delivery.retry + 1))
        assert span_s >= 3 * lease_s, (trigger.name, span_s)


def test_handler_slower_than_the_lease_keeps_its_claim_and_is_done_once(client_of, redis_conn,
                                                                        monkeypatch):
    monkeypatch.setenv("KADES_CLAIM_LEASE_S", "0.3")
    client, other_replica = client_of("counter"), client_of("counter")
    headers, body = binary(event_id="slow", data=tick_data(sleep_s=1.2))  # four leases
    slow, answers = post_in_background(client, headers, body, redis_conn)
    time.sleep(0.7)  # past two leases: only renewal keeps the claim
    (key,) = claim_keys(redis_conn)
    assert 0 < redis_conn.pttl(key) <= 300
    assert other_replica.post("/", headers=headers, data=body).status_code == 503
    slow.join(timeout=5)
    assert answers[0].status_code == 200
    assert redis_conn.get("test:started:slow") == b"1"  # the handler ran once
    assert int(redis_conn.get("test:ticks")) == 1 and dedup.is_done(redis_conn.get(key))
    duplicate = other_replica.post("/", headers=headers, data=body)
    assert duplicate.status_code == 200 and duplicate.data == answers[0].data
    assert int(redis_conn.get("test:ticks")) == 1


def test_renewal_stops_and_done_is_refused_once_another_owner_took_the_claim(redis_conn):
    event = decode(*binary(event_id="fenced"))[0]
    claim = dedup.claim(redis_conn, "counter", event, lease_s=0.3, abandoned=TtlCache(ttl_s=0.3))
    with dedup.renewed(redis_conn, claim) as lease:
        redis_conn.set(claim.key, b"processing:intruder", px=5000)  # expired, taken over
        assert lease.lost.wait(timeout=1)  # the next renewal (0.1 s) notices
        with pytest.raises(dedup.ClaimLost):
            lease.check()
        time.sleep(0.3)  # three more renewal periods: none extends the new owner's claim
        assert redis_conn.pttl(claim.key) <= 4700
    with pytest.raises(dedup.ClaimLost):
        dedup.complete(redis_conn, claim, [], 60)
    dedup.release(redis_conn, claim)  # the failed attempt gives back only what it owns
    assert redis_conn.get(claim.key) == b"processing:intruder"


def test_a_claim_taken_while_the_renewer_sleeps_towards_another_is_renewed(redis_conn):
    """The renewer is woken only for a lease due before it wakes anyway (not for every event):
    a claim taken after another, while the renewer sleeps towards the first's renewal, is
    still renewed in time, lease after lease."""
    def claim(event_id: str):
        event = decode(*binary(event_id=event_id))[0]
        return dedup.claim(redis_conn, "counter", event, lease_s=0.3,
                           abandoned=TtlCache(ttl_s=0.3))

    first, second = claim("first"), claim("second")
    with dedup.renewed(redis_conn, first) as earlier:
        wait_until(lambda: dedup._renewer._wakes_at == earlier.due, timeout_s=5,
                   what="the renewer to sleep towards the first claim's renewal")
        with dedup.renewed(redis_conn, second) as lease:
            assert dedup._renewer._wakes_at <= lease.due  # so adding it woke nothing
            time.sleep(1.0)  # three leases: only renewals keep it
            assert not lease.lost.is_set() and 0 < redis_conn.pttl(second.key) <= 300
            lease.check()


class CountedLease:
    """What the renewer needs of a Lease, without Redis: renew() counts."""

    def __init__(self, lease_s: float):
        self.lease_s, self.renewals = lease_s, 0
        self.due = time.monotonic() + lease_s / 3

    def renew(self) -> None:
        self.renewals += 1
        self.due = time.monotonic() + self.lease_s / 3


def test_a_forked_child_renews_only_its_own_claims_and_its_renewer_is_woken():
    """A child forked while the renewer sleeps starts afresh: the parent's thread left a
    waiter in the Condition that took the child's first wake-up (a lease due sooner went
    unrenewed), and the parent's leases are its handlers', not the child's."""
    held = CountedLease(30.0)
    dedup._renewer.add(held)
    try:
        wait_until(lambda: dedup._renewer._wakes_at == held.due, timeout_s=5,
                   what="the renewer to sleep towards the held claim's renewal")
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                longer, shorter = CountedLease(3.0), None
                dedup._renewer.add(longer)  # starts the child's renewer, due in 1 s
                wait_until(lambda: dedup._renewer._wakes_at == longer.due, timeout_s=5,
                           what="the child's renewer to sleep")
                shorter = CountedLease(0.3)  # due in 0.1 s: must wake it
                dedup._renewer.add(shorter)
                time.sleep(0.25)
                status = 0 if shorter.renewals and held not in dedup._renewer._leases else 1
            finally:
                os._exit(status)
        assert os.waitpid(pid, 0)[1] == 0
    finally:
        dedup._renewer.remove(held)


def test_a_claim_this_process_could_not_give_back_is_taken_over_at_once_here(redis_conn):
    event = decode(*binary(event_id="abandoned"))[0]
    now = [0.0]
    abandoned = TtlCache(ttl_s=60.0, clock=lambda: now[0])
    claim = dedup.claim(redis_conn, "counter", event, lease_s=60.0, abandoned=abandoned)
    away = redis.Redis(port=1, socket_connect_timeout=0.2)  # Redis gone while giving it back
    with pytest.raises(redis.ConnectionError):
        dedup.release(away, claim)
    again = dedup.claim(redis_conn, "counter", event, lease_s=60.0, abandoned=abandoned)
    assert again.done_replies is None and not again.in_progress and again.token != claim.token
    # Another process (its own memory) must wait for the lease; so must this one after it.
    assert dedup.claim(redis_conn, "counter", event, lease_s=60.0,
                       abandoned=TtlCache(ttl_s=60.0)).in_progress
    with pytest.raises(redis.ConnectionError):
        dedup.release(away, again)
    now[0] = 60.0
    assert dedup.claim(redis_conn, "counter", event, lease_s=60.0, abandoned=abandoned).in_progress


def test_taken_over_handler_answers_503_and_leaves_the_new_owner_alone(client_of, redis_conn,
                                                                       monkeypatch):
    monkeypatch.setenv("KADES_CLAIM_LEASE_S", "0.3")
    client = client_of("counter")
    headers, body = binary(event_id="overtaken", data=tick_data(sleep_s=0.6))
    slow, answers = post_in_background(client, headers, body, redis_conn)
    (key,) = claim_keys(redis_conn)
    redis_conn.set(key, b"processing:intruder", px=5000)
    slow.join(timeout=5)
    assert answers[0].status_code == 503
    assert "ClaimLost" in answers[0].get_json()["error"]["message"]
    assert redis_conn.get(key) == b"processing:intruder"  # no done mark over the new owner's
    metrics = client.get("/metrics").data.decode()
    assert re.search(r'kades_events_total\{function="counter",outcome="claim_lost",'
                     r'type="ai.kades.market.tick.v1"\} 1.0', metrics)
