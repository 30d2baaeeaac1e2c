"""Durability: what the broker accepted is delivered by the next broker instance."""
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from werkzeug.wrappers import Response

from brokertest import event_attrs, manifests, post_binary, trigger, wait_for
from kades.dev.services import free_port
from kades.dev import services as devservices
from kades.broker import DevBroker, load_eventing
from kades.broker.queue import GROUP, BrokerQueue
from kades.broker.routing import Router
from kades.keys import BROKER_STATE


def test_accepted_events_survive_a_broker_that_never_delivered(run_broker, subscribers):
    sub = subscribers()
    text = manifests(trigger("t", sub.url))
    first = run_broker(text, dispatch=False)
    for i in range(3):
        assert post_binary(first.ingress_url(), event_attrs(id_=f"e{i}")).status_code == 202
    first.stop()
    run_broker(text)
    wait_for(lambda: sub.count() == 3, what="the 3 accepted events")
    time.sleep(0.3)
    assert sorted(r["headers"]["ce-id"] for r in sub.requests) == ["e0", "e1", "e2"]


def test_a_stopped_broker_acked_what_it_delivered(run_broker, subscribers, broker_redis):
    """The reader acks its deliveries in batches; a stop while they are in flight waits for
    their answers and acks every one, so the next instance delivers none of them again."""
    sub = subscribers(lambda _request: (time.sleep(0.3), Response(status=202))[1])
    text = manifests(trigger("t", sub.url))
    first = run_broker(text, workers=20)
    for i in range(20):
        assert post_binary(first.ingress_url(), event_attrs(id_=f"e{i}")).status_code == 202
    wait_for(lambda: sub.count() == 20, what="the 20 events")  # arrived, not yet answered
    first.stop()
    [lane] = [key for key in broker_redis.scan_iter("*lane*") if broker_redis.type(key) == b"stream"]
    assert broker_redis.xpending(lane, GROUP)["pending"] == 0
    run_broker(text)
    time.sleep(0.5)
    assert sorted(r["headers"]["ce-id"] for r in sub.requests) == sorted(f"e{i}" for i in range(20))


def test_entries_left_pending_by_a_dead_consumer_are_reclaimed(run_broker, subscribers, broker_redis):
    sub = subscribers()
    text = manifests(trigger("t", sub.url))
    first = run_broker(text, dispatch=False)
    post_binary(first.ingress_url(), event_attrs(id_="stuck"))
    first.stop()
    queue = BrokerQueue(broker_redis, "kades", "kades", Router([]))
    queue.ensure_group("t/0")
    # A broker read it into its pending list and died before acking.
    assert queue.read("t/0", "crashed", count=10)
    assert broker_redis.xpending(queue.stream("t/0"), GROUP)["pending"] == 1
    run_broker(text)
    wait_for(lambda: sub.count() == 1, what="the reclaimed event")
    wait_for(lambda: broker_redis.xpending(queue.stream("t/0"), GROUP)["pending"] == 0,
             what="the ack")
    time.sleep(0.2)
    assert sub.count() == 1


def test_retry_state_carries_over_to_the_next_instance(run_broker, subscribers, broker_redis):
    dls = subscribers()
    failing = subscribers(lambda _r: Response(status=500))
    text = manifests(trigger("t", failing.url, delivery={
        "retry": 1, "backoffPolicy": "exponential", "backoffDelay": "PT0.5S",
        "deadLetterSink": {"uri": dls.url}}))
    first = run_broker(text)
    post_binary(first.ingress_url(), event_attrs())
    wait_for(lambda: failing.count() == 1, what="the first attempt")
    first.stop()
    queue = BrokerQueue(broker_redis, "kades", "kades", Router([]))
    [entry_id] = [i.decode() for i in broker_redis.hkeys(BROKER_STATE.format(namespace="kades", broker="kades", lane="t/0"))]
    assert queue.state("t/0", entry_id)["attempt"] == 2
    run_broker(text)
    wait_for(lambda: dls.count() == 1, what="the dead letter")
    assert failing.count() == 2  # attempt 2 was the last: the count went on, it did not restart
    assert failing.times[1] - failing.times[0] >= 0.49


@pytest.mark.slow
def test_a_killed_broker_process_loses_nothing(tmp_path, run_broker, subscribers, broker_redis_url):
    """SIGKILL the `kades broker` process mid-delivery: the next instance delivers again."""
    release = threading.Event()

    def hold(_request):
        release.wait(10)
        return Response(status=202)

    sub = subscribers(hold)
    text = manifests(trigger("t", sub.url))
    (tmp_path / "eventing").mkdir()
    (tmp_path / "eventing" / "all.yaml").write_text(text)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from kades.broker import main_broker; "
                               "sys.exit(main_broker(sys.argv[1:]))",
         "--eventing-dir", str(tmp_path / "eventing"), "--port", str(port),
         "--redis-url", broker_redis_url, "--workers", "2"],
        env={**os.environ, "KADES_LOG_LEVEL": "WARNING"}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _healthy(port), timeout_s=20, what="the broker process")
        url = f"http://127.0.0.1:{port}/kades/kades"
        assert post_binary(url, event_attrs(id_="in-flight")).status_code == 202
        wait_for(lambda: sub.count() == 1, what="the first delivery to start")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        release.set()
    run_broker(text)
    wait_for(lambda: sub.count() == 2, what="redelivery by the next instance")
    assert [r["headers"]["ce-id"] for r in sub.requests] == ["in-flight", "in-flight"]


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_an_entry_whose_finish_hit_a_redis_outage_is_finished_soon(tmp_path, subscribers):
    """Redis goes away between a delivery and its ack: the delivered entry's ack waits in
    the broker and is made once Redis is back (the worker and the reader both try it),
    instead of the entry being left to housekeeping minutes later."""
    port = free_port()
    devservices.ensure_redis(data_dir=tmp_path, port=port)
    # No retries in the client: the outage outlasts them (with them, a short one is hidden).
    client = redis.Redis(port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))

    def shut_redis_once(_request):
        if len(sub.requests) == 1:
            # One try: a retrying client would shut the restarted Redis down again.
            redis.Redis(port=port, retry=Retry(NoBackoff(), 0)).shutdown(save=True)
        return Response(status=202)

    sub = subscribers(shut_redis_once)
    directory = tmp_path / "eventing"
    directory.mkdir()
    (directory / "all.yaml").write_text(manifests(trigger("t", sub.url)))
    broker = DevBroker(load_eventing(directory), client, workers_per_trigger=1,
                       idle_wait_s=0.1).start()
    try:
        assert post_binary(broker.ingress_url(), event_attrs(id_="cut")).status_code == 202
        wait_for(lambda: sub.count() == 1, what="the first delivery")
        time.sleep(1.5)
        devservices.ensure_redis(data_dir=tmp_path, port=port)
        queue = BrokerQueue(client, "kades", "kades", Router([]))
        wait_for(lambda: client.xlen(queue.stream("t/0")) == 0, 10.0, what="the finish")
        assert client.xpending(queue.stream("t/0"), "delivery")["pending"] == 0
        time.sleep(0.5)  # nothing scheduled it again: it was delivered, once
        assert [r["headers"]["ce-id"] for r in sub.requests] == ["cut"]
    finally:
        broker.stop(timeout_s=5)
        client.close()
        devservices.stop_redis(tmp_path)


@pytest.mark.slow
def test_what_the_ingress_accepted_survives_a_redis_crash(tmp_path, subscribers):
    """Redis killed (no final save) right after the ingress answered 202: the local Redis
    writes its append-only file before it answers, so every accepted event is delivered."""
    port = free_port()
    devservices.ensure_redis(data_dir=tmp_path, port=port)
    client = redis.Redis(port=port, socket_timeout=5)
    sub = subscribers()
    directory = tmp_path / "eventing"
    directory.mkdir()
    (directory / "all.yaml").write_text(manifests(trigger("t", sub.url)))
    ingress_only = DevBroker(load_eventing(directory), client, dispatch=False).start()
    try:
        for i in range(20):
            assert post_binary(ingress_only.ingress_url(), event_attrs(id_=f"e{i}")).status_code == 202
    finally:
        ingress_only.stop(timeout_s=5)
    assert devservices.stop_redis(tmp_path, crash=True)
    devservices.ensure_redis(data_dir=tmp_path, port=port)
    broker = DevBroker(load_eventing(directory), client, idle_wait_s=0.1).start()
    try:
        wait_for(lambda: sub.count() == 20, what="the 20 accepted events")
        assert sorted(r["headers"]["ce-id"] for r in sub.requests) == sorted(
            f"e{i}" for i in range(20))
    finally:
        broker.stop(timeout_s=5)
        client.close()
        devservices.stop_redis(tmp_path)
