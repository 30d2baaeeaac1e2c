"""An event is acknowledged only once a replica has it (KADES_REDIS_WAIT_REPLICAS): the done
mark, and every write made before it, is on a replica when the function answers 2xx; a
replica that does not answer in time, or a failover while the handler ran, is a 503 (the
Broker retries) and the retry is answered correctly. A real primary and replica (the same
redis-server binary) run beside the test Redis."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import pytest
import redis

from kades import clients
from kades.alerts import stream
from kades.dev import services as devservices
from kades.dev.services import free_port
from kades.events.catalogue import MARKET_TICK, new_event
from kades.events.envelope import CloudEvent
from kades.keys import ALERT_STREAM, outbox_key
from kades.runtime import dedup
from kades.runtime.state import StateStore
from kades.runtime.ttlcache import TtlCache
from kades.settings import Settings, SettingsError
from runtimetest import binary, tick_data

pytestmark = pytest.mark.slow


def _replid(client: redis.Redis) -> str:
    return client.info("replication")["master_replid"]


def _group(tmp_path, replicas: int):
    """A primary and `replicas` replicas in sync: (their clients, their processes)."""
    try:
        server = devservices.redis_binary()
    except devservices.DevServiceUnavailable as error:
        pytest.skip(str(error))
    ports = [free_port() for _ in range(1 + replicas)]
    processes = []
    for port in ports:
        follow = ["--replicaof", "127.0.0.1", str(ports[0])] if port != ports[0] else []
        (tmp_path / str(port)).mkdir()  # a full sync writes an RDB file there
        processes.append(subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(tmp_path / str(port)), *follow], stdout=subprocess.DEVNULL))
    nodes = [redis.Redis(port=port, socket_timeout=5) for port in ports]
    deadline = time.monotonic() + 10
    while True:
        try:
            nodes[0].set("ready", 1)
            if nodes[0].wait(replicas, 500) == replicas:
                break
        except redis.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the replicas did not sync"
        time.sleep(0.1)
    return nodes, processes


@pytest.fixture
def pair(tmp_path):
    """(primary client, replica client, the replica's process), the replica in sync."""
    (primary, replica), processes = _group(tmp_path, 1)
    try:
        yield primary, replica, processes[1]
    finally:
        _stop(processes)


@pytest.fixture
def trio(tmp_path):
    """(the clients, the processes) of a primary and two replicas in sync."""
    nodes, processes = _group(tmp_path, 2)
    try:
        yield nodes, processes
    finally:
        _stop(processes)


def _stop(processes) -> None:
    for process in processes:
        process.send_signal(signal.SIGCONT)  # a test may leave a replica stopped
        process.kill()
        process.wait()


def _event(event_id="e-1") -> CloudEvent:
    return new_event(MARKET_TICK, "/tests", tick_data(), event_id=event_id)


def _claim(client, event, *, abandoned=None, wait_s=0.5) -> dedup.Claim:
    return dedup.claim(client, "counter", event, lease_s=10, replicas=1, wait_s=wait_s,
                       abandoned=abandoned if abandoned is not None else TtlCache(ttl_s=10))


def test_the_done_mark_and_every_write_before_it_are_on_the_replica_when_complete_returns(pair):
    primary, replica, _ = pair
    claim = _claim(primary, _event())
    assert claim.token.endswith(b"@" + _replid(primary).encode())  # names its primary
    writes = primary.pipeline(transaction=False)
    for number in range(200):  # another connection's writes, as a handler's state commits
        writes.set(f"state:{number}", "x" * 100)
    writes.execute()
    dedup.complete(primary, claim, [], ttl_s=60)
    # no polling: WAIT returned only once the replica had acknowledged all of it
    assert dedup.is_done(replica.get(claim.key))
    assert replica.get("state:199") == b"x" * 100


def test_a_replica_that_does_not_answer_is_a_503_and_the_retry_is_acknowledged_once_it_does(
        pair):
    primary, replica, replica_process = pair
    event = _event()
    claim = _claim(primary, event, wait_s=0.2)
    replica_process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(dedup.NotReplicated, match="reached 0 of 1 replicas"):
            dedup.complete(primary, claim, [], ttl_s=60)
        # the redelivery finds the done mark, but it is on no replica yet either
        with pytest.raises(dedup.NotReplicated):
            _claim(primary, event, wait_s=0.2)
    finally:
        replica_process.send_signal(signal.SIGCONT)
    again = _claim(primary, event, wait_s=2.0)  # the replica catches up: done, not redone
    assert again.done_replies == [] and not again.in_progress
    assert dedup.is_done(replica.get(claim.key))


def _count(states):
    return [{"n": (states[0] or {"n": 0})["n"] + 1}], [1]


def test_a_claim_free_commit_returns_once_a_replica_has_it_and_so_does_its_redelivery(pair):
    """A function without a claim (temporal-analysis) has no done mark to wait on: its state
    commit waits itself, in the same round trip. A redelivery answered by the outbox waits
    too, on a connection that wrote nothing before. (Redis documents WAIT as covering the
    connection's own earlier writes, so the script touches the outbox first; this machine's
    Redis 6.2 waits for the primary's whole offset anyway, so only the wait is shown here.)"""
    primary, replica, replica_process = pair
    box = outbox_key("f", "/src", "e1")
    store = StateStore(ttl_s=60, replicas=1, wait_s=0.2)
    assert store.update(primary, ["{f}k"], _count, outbox=box, keep_empty=True) == [1]
    # no polling: the update returned only once the replica had acknowledged the commit
    assert json.loads(replica.get("{f}k")) == {"n": 1} and replica.get(box) == b"[1]"
    replica_process.send_signal(signal.SIGSTOP)
    try:
        fresh = redis.Redis(port=primary.connection_pool.connection_kwargs["port"],
                            socket_timeout=5)  # a connection that wrote nothing yet
        with pytest.raises(dedup.NotReplicated, match="reached 0 of 1 replicas"):
            StateStore(ttl_s=60, replicas=1, wait_s=0.2).update(
                fresh, ["{f}k"], _count, outbox=box, keep_empty=True)
        with pytest.raises(dedup.NotReplicated):  # a new event's commit as well
            store.update(primary, ["{f}k"], _count, outbox=outbox_key("f", "/src", "e2"))
    finally:
        replica_process.send_signal(signal.SIGCONT)
    again = StateStore(ttl_s=60, replicas=1, wait_s=2.0)  # the replica catches up
    assert again.update(fresh, ["{f}k"], _count, outbox=box, keep_empty=True) == [1]
    assert json.loads(primary.get("{f}k")) == {"n": 2}  # e1 once, e2 once (its 503 committed)


def _calls(client: redis.Redis, command: str) -> int:
    """How many times the server ran `command`, from scripts too (INFO commandstats)."""
    return client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)


def test_replies_are_on_a_replica_before_any_is_sent_and_a_retry_sends_the_first(pair):
    primary, replica, replica_process = pair
    event = _event()
    first = [new_event(MARKET_TICK, "/f", tick_data(price=p), event_id=f"r{p}") for p in (1, 2)]
    other = [new_event(MARKET_TICK, "/f", tick_data(price=p), event_id=f"r{p}") for p in (8, 9)]
    claim = _claim(primary, event)
    assert dedup.first_sent(primary, claim, first, ttl_s=60) == first
    assert replica.get(claim.sent_key) is not None  # there before the first is sent
    touched = _calls(primary, "pexpire")
    assert dedup.first_sent(primary, claim, other, ttl_s=60) == first  # the retry's: the first
    # and the retry wrote (the replies touched), so its WAIT counted replicas that have them
    assert _calls(primary, "pexpire") == touched + 1
    replica_process.send_signal(signal.SIGSTOP)
    try:  # a replica that does not answer: nothing may go out (the Broker retries)
        with pytest.raises(dedup.NotReplicated, match="replies of .* reached 0 of 1"):
            dedup.first_sent(primary, _claim(primary, _event("e-2"), wait_s=0.2), first, ttl_s=60)
    finally:
        replica_process.send_signal(signal.SIGCONT)


def test_the_done_mark_waits_for_every_replica_in_step_not_only_the_number_set(trio):
    """With two replicas and KADES_REDIS_WAIT_REPLICAS=1, the one that has the mark might not
    be the one Sentinel promotes: every replica in step with the primary must have it. One
    that stops answering drops out of step within IN_STEP_LAG_S (+1) s, and then one is enough."""
    (primary, *replicas), processes = trio
    probes = (_event(f"e-probe-{n}") for n in range(1000))
    for _ in range(3):  # a machine that stalls past IN_STEP_LAG_S here gets another go
        deadline = time.monotonic() + 10
        while _claim(primary, next(probes)).replicas != 2:  # both acknowledged lately
            assert time.monotonic() < deadline, primary.info("replication")
            time.sleep(0.05)
        processes[2].send_signal(signal.SIGSTOP)
        claim = _claim(primary, next(probes), wait_s=0.3)
        if claim.replicas == 2:  # the stopped replica is still in step: it acked just now
            break
        processes[2].send_signal(signal.SIGCONT)
    assert claim.replicas == 2, primary.info("replication")
    with pytest.raises(dedup.NotReplicated, match="reached 1 of 2 replicas"):
        dedup.complete(primary, claim, [], ttl_s=60)
    deadline = time.monotonic() + dedup.IN_STEP_LAG_S + 5
    while (late := _claim(primary, next(probes))).replicas != 1:  # it falls out of step
        assert time.monotonic() < deadline, primary.info("replication")
        time.sleep(0.2)
    dedup.complete(primary, late, [], ttl_s=60)  # one replica in step: it is enough
    assert dedup.is_done(replicas[0].get(late.key))
    processes[2].send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 10
    while (again := _claim(primary, next(probes))).replicas != 2:  # back in step
        assert time.monotonic() < deadline, primary.info("replication")
        time.sleep(0.2)
    dedup.complete(primary, again, [], ttl_s=60)
    assert all(dedup.is_done(replica.get(again.key)) for replica in replicas)


def test_a_failover_while_the_handler_ran_is_a_503_and_the_event_is_handled_again(pair):
    primary, replica, _ = pair
    event, abandoned = _event(), TtlCache(ttl_s=10)
    claim = _claim(primary, event, abandoned=abandoned)
    assert primary.wait(1, 2000) == 1  # the claim reached the replica...
    replica.replicaof("NO", "ONE")  # ...which is promoted: a new replication id
    new_primary, old_primary = replica, primary
    old_primary.replicaof("127.0.0.1", new_primary.connection_pool.connection_kwargs["port"])
    with pytest.raises(dedup.PrimaryChanged):
        dedup.complete(new_primary, claim, [], ttl_s=60)
    assert not dedup.is_done(new_primary.get(claim.key))  # the mark was not written
    # A redelivery to this process takes the claim over at once, on the new primary.
    deadline = time.monotonic() + 10
    while old_primary.info("replication")["master_link_status"] != "up":
        assert time.monotonic() < deadline, "the old primary did not follow the new one"
        time.sleep(0.1)
    retry = _claim(new_primary, event, abandoned=abandoned)
    assert retry.done_replies is None and not retry.in_progress
    assert retry.token.endswith(b"@" + _replid(new_primary).encode())
    dedup.complete(new_primary, retry, [], ttl_s=60)
    assert dedup.is_done(old_primary.get(retry.key))  # now on the replica too


class _Failover:
    """A client as a Sentinel pool can be mid-failover: a connection made before it still
    reaches the deposed primary (`before`), a new one the promoted replica (`after`)."""

    def __init__(self, before: redis.Redis, after: redis.Redis):
        self.evalsha, self.eval = before.evalsha, before.eval  # the claim's script
        self.pipeline = after.pipeline  # the wait after it


def test_a_done_mark_only_a_deposed_primary_has_is_not_acknowledged(pair, tmp_path):
    """Seen in the failover fault under load: Sentinel failed over twice, the first promoted
    replica went on as a primary for 11 s with no replica, and kept the done mark of an
    attempt it could not replicate (a 503). The retry's claim found that mark there, its
    wait ran on the new primary, which lacked it, and passed: acknowledged, then lost."""
    primary, replica, _ = pair
    (tmp_path / "deposed").mkdir()
    (deposed,), processes = _group(tmp_path / "deposed", 0)
    try:
        event = _event("e-deposed")
        claim = _claim(deposed, event, wait_s=0.2)
        with pytest.raises(dedup.NotReplicated):
            dedup.complete(deposed, claim, [], ttl_s=60)
        with pytest.raises(dedup.PrimaryChanged, match="not on the Redis that now answers"):
            _claim(_Failover(deposed, primary), event)
        retry = _claim(primary, event)  # handled again where the mark will last
        assert retry.done_replies is None and not retry.in_progress
        dedup.complete(primary, retry, [], ttl_s=60)
        assert dedup.is_done(replica.get(retry.key))
    finally:
        _stop(processes)


def test_the_endpoint_answers_503_without_a_replica_and_200_with_one(
        pair, client_of, kades_env, fresh_settings, redis_conn):
    if kades_env.redis_cluster:
        pytest.skip("the wait is refused with a Redis Cluster (a settings error)")
    primary, replica, _ = pair
    fresh_settings.setenv("KADES_REDIS_WAIT_REPLICAS", "1")
    fresh_settings.setenv("KADES_REDIS_WAIT_TIMEOUT_S", "0.05")
    headers, body = binary("e-alone", tick_data())
    lonely = client_of("counter").post("/", headers=headers, data=body)  # the test Redis
    assert lonely.status_code == 503, lonely.get_data(as_text=True)
    assert lonely.mimetype == "application/problem+json"
    assert lonely.get_json()["detail"] == "temporary failure: NotReplicated"
    assert redis_conn.get("test:ticks") == b"1"  # handled, not acknowledged

    clients.close_all()
    port = primary.connection_pool.connection_kwargs["port"]
    fresh_settings.setenv("KADES_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    app = client_of("counter")
    headers, body = binary("e-replicated", tick_data())
    answered = app.post("/", headers=headers, data=body)
    assert answered.status_code == 200, answered.get_data(as_text=True)
    assert replica.get("test:ticks") == b"1"
    metrics = app.get("/metrics").get_data(as_text=True)  # one registry per test process
    refused = re.search(r'kades_events_total\{function="counter",outcome="not_replicated",'
                        r'[^}]*\} ([0-9.]+)', metrics)
    assert refused and float(refused.group(1)) >= 1, metrics


@pytest.mark.parametrize("env", [
    {"KADES_REDIS_CLUSTER": "true", "KADES_REDIS_WAIT_REPLICAS": "1"},
    {"KADES_REDIS_WAIT_REPLICAS": "-1"},
    {"KADES_REDIS_WAIT_REPLICAS": "1", "KADES_REDIS_WAIT_TIMEOUT_S": "0"}])
def test_a_wait_that_cannot_work_is_refused_naming_its_settings(env):
    with pytest.raises(SettingsError, match="KADES_REDIS_WAIT_"):
        clients.redis_client(Settings.from_env(env))


def test_alerts_appended_are_on_a_replica_when_published_and_a_redelivery_waits_too(pair):
    """alert-dispatch takes no claim, so no done mark waited for its stream: an alert
    acknowledged, then lost with its primary, never reached a WebSocket client."""
    primary, replica, replica_process = pair
    assert stream.publish_many(primary, [("a1", {"n": 1})], replicas=1, wait_s=0.5)[0]
    assert replica.xlen(ALERT_STREAM) == 1  # no polling: it returned once the replica had it
    fresh = redis.Redis(port=primary.connection_pool.connection_kwargs["port"], socket_timeout=5)
    replica_process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(dedup.NotReplicated, match="reached 0 of 1 replicas"):
            stream.publish_many(fresh, [("a2", {"n": 2})], replicas=1, wait_s=0.2)
        marked = _calls(primary, "expire")
        with pytest.raises(dedup.NotReplicated):  # its redelivery, which appends nothing
            stream.publish_many(fresh, [("a2", {"n": 2})], replicas=1, wait_s=0.2)
        # but sets its mark again: a write its WAIT counts on a connection that wrote nothing
        # else (this machine's Redis 6.2 waits for the primary's whole offset anyway)
        assert _calls(primary, "expire") == marked + 1
    finally:
        replica_process.send_signal(signal.SIGCONT)
    assert stream.publish_many(fresh, [("a2", {"n": 2})], replicas=1, wait_s=2.0) == [None]
    assert replica.xlen(ALERT_STREAM) == 2  # appended once, and on the replica

