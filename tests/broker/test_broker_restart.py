"""Durability: what the broker accepted is delivered by the next broker instance."""
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
from werkzeug.wrappers import Response

from brokertest import event_attrs, free_port, manifests, post_binary, trigger, wait_for
from kades.broker.queue import GROUP, BrokerQueue
from kades.broker.routing import Router


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
        "retry": 1, "backoffDelay": "PT0.5S", "deadLetterSink": {"uri": dls.url}}))
    first = run_broker(text)
    post_binary(first.ingress_url(), event_attrs())
    wait_for(lambda: failing.count() == 1, what="the first attempt")
    first.stop()
    queue = BrokerQueue(broker_redis, "kades", "kades", Router([]))
    [entry_id] = [i.decode() for i in broker_redis.hkeys(f"{queue.prefix}:state:t/0")]
    assert queue.state("t/0", entry_id)["attempt"] == 2
    run_broker(text)
    wait_for(lambda: dls.count() == 1, what="the dead letter")
    assert failing.count() == 2  # attempt 2 was the last: the count went on, it did not restart
    assert failing.times[1] - failing.times[0] >= 0.49


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
         "--redis-url", broker_redis_url, "--workers", "1"],
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
