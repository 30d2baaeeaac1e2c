"""The multi-key operations on a real three-node Redis Cluster (issue 18): every function
handles a valid event once and a redelivery as a duplicate, state stores commit, conflict and
keep their outbox, risk-scoring's WATCH/MULTI, the alert stream's script and the development
broker's MULTIs all run unchanged. `make test` runs this module; KADES_TEST_REDIS_CLUSTER=1
runs every other test on the cluster too."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from redis.exceptions import RedisClusterException
from functions_framework import create_app

from kades import clients, keys
from kades.alerts import stream
from kades.broker.config import Delivery, Trigger
from kades.broker.filters import compile_trigger_filter
from kades.broker.queue import BrokerQueue
from kades.broker.routing import Router, lanes_of
from kades.dev import redisgroups
from kades.dev.services import free_port
from kades.events.catalogue import EXAMPLE_MINT, MARKET_TICK, example, new_event
from kades.events.envelope import to_binary
from kades.registry import FUNCTIONS, load
from kades.runtime import dedup
from kades.runtime.state import StateStore
from kades.runtime.ttlcache import TtlCache

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cluster(redis_cluster_settings, monkeypatch):
    """The cluster's client, emptied; KADES_* variables point new Contexts at it."""
    monkeypatch.setenv("KADES_REDIS_URL", redis_cluster_settings.redis_url)
    monkeypatch.setenv("KADES_REDIS_CLUSTER", "true")
    monkeypatch.setenv("KADES_DATABASE_URL", redis_cluster_settings.database_url)
    client = clients.redis_client(redis_cluster_settings)
    client.flushdb()
    return client


def test_it_is_a_cluster_of_three_primaries_that_refuses_keys_of_two_slots(cluster):
    assert len(cluster.get_primaries()) == 3
    # the tags are what keeps the operations below legal: untagged keys of one script are not
    with pytest.raises(RedisClusterException, match="same key slot"):
        cluster.eval("return 1", 2, "kades:a", "kades:b")
    # and the keyspaces do not all sit on one node
    nodes = {cluster.get_node_from_key(key).name
             for key in (keys.TEMPORAL_WAITING, keys.CHAIN_WAITING, keys.WHALES_WAITING,
                              keys.SENTIMENT_WAITING, keys.RISK_WAITING, keys.ALERT_STREAM,
                              keys.DLQ)}
    assert len(nodes) > 1


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_handles_an_event_once_on_the_cluster(cluster, db_conn, recording_sink,
                                                             name):
    app = create_app("handle", str(ROOT / "functions" / name / "main.py"), "http").test_client()
    for event_type in load(name).consumes or ["ai.kades.market.tick.v1"]:
        event = new_event(event_type, "/tests/cluster", example(event_type),
                          subject=EXAMPLE_MINT, event_id=f"cluster-{name}-{event_type}")
        headers, body = to_binary(event)
        first = app.post("/", headers=headers, data=body)
        assert first.status_code in (200, 202), first.data[:300]
        again = app.post("/", headers=headers, data=body)  # the Broker's redelivery
        assert (again.status_code, again.data) == (first.status_code, first.data)
        assert again.headers.get("ce-id") == first.headers.get("ce-id")


def test_state_updates_of_many_tokens_commit_conflict_and_keep_their_outbox(cluster):
    state_keys = [keys.TEMPORAL_STATE.format(token=t) for t in ("A", "B", "C")]
    outbox = keys.outbox_key("temporal-analysis", "/tests", "e1")

    def add(n):
        return lambda states: ([{"n": (s or {"n": 0})["n"] + n} for s in states], [n])

    mine, theirs = StateStore(ttl_s=60), StateStore(ttl_s=60)
    assert mine.update(cluster, state_keys, add(1)) == [1]
    assert theirs.update(cluster, state_keys, add(10)) == [10]  # mine's cache is stale now
    assert mine.update(cluster, state_keys, add(100), outbox=outbox) == [100]  # re-read, redone
    assert [s["n"] for s in StateStore(ttl_s=60).current(cluster, state_keys)] == [111] * 3
    # a retry of the same event gets the first attempt's result, and changes nothing
    assert theirs.update(cluster, state_keys, add(1000), outbox=outbox) == [100]
    assert [s["n"] for s in StateStore(ttl_s=60).current(cluster, state_keys)] == [111] * 3


def test_two_replicas_updating_one_token_both_count(cluster):
    key = [keys.CHAIN_TOKEN.format(token="A"), keys.CHAIN_POOL.format(pool="P")]

    def replica():
        store = StateStore(ttl_s=60, max_attempts=50)
        for _ in range(30):
            store.update(cluster, key, lambda s: ([{"n": (s[0] or {"n": 0})["n"] + 1}, {}], None))

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert StateStore(ttl_s=60).current(cluster, key)[0] == {"n": 60}


def test_a_watched_transaction_whose_connection_died_is_not_sent_again_without_its_watch(cluster):
    """risk-scoring's WATCH/MULTI: redis-py's cluster transaction sent the MULTI/EXEC that
    met a dead connection again on a new one, without the WATCH, and it committed over what
    another replica had written meanwhile. Now the error is raised (a 503), nothing written."""
    key = keys.RISK_STATE.format(token="W")
    cluster.set(key, "before")
    node = cluster.get_redis_connection(cluster.get_node_from_key(key))
    with cluster.pipeline(transaction=True) as pipe:
        pipe.watch(key)
        assert pipe.get(key) == b"before"
        cluster.set(key, "the other replica's")
        node.client_kill_filter(_type="normal", skipme=True)  # the watching connection too
        pipe.multi()
        pipe.set(key, "ours")
        with pytest.raises(clients.TEMPORARY_ERRORS + (redis.WatchError,)):
            pipe.execute()
    assert cluster.get(key) == b"the other replica's"
    # a slot that moved meanwhile is no retry either: a 503 too, once the slots are read again
    assert isinstance(redis.exceptions.MovedError(f"{cluster.keyslot(key)} 127.0.0.1:1"),
                      clients.TEMPORARY_ERRORS)
    with cluster.pipeline(transaction=True) as pipe:  # and a transaction still commits
        pipe.watch(key)
        pipe.multi()
        pipe.set(key, "ours")
        pipe.execute()
    assert cluster.get(key) == b"ours"


def test_the_replies_sent_first_are_kept_and_sent_again_on_the_cluster(cluster):
    event = new_event(MARKET_TICK, "/tests/cluster", example(MARKET_TICK), event_id="sent-1")
    claim = dedup.claim(cluster, "f", event, lease_s=10, abandoned=TtlCache(ttl_s=10))
    first, other = ([new_event(MARKET_TICK, "/f", example(MARKET_TICK), subject=s, event_id=s)
                     for s in names] for names in (("a", "b"), ("c", "d")))
    assert dedup.first_sent(cluster, claim, first, ttl_s=60) == first
    assert dedup.first_sent(cluster, claim, other, ttl_s=60) == first


def test_an_alert_is_appended_once(cluster):
    message = {"token": "A", "level": "high"}
    first = stream.publish(cluster, "/src#1", message)
    assert first is not None and stream.publish(cluster, "/src#1", message) is None
    assert [m for _id, m in stream.since(cluster, "0-0")] == [message]


def test_the_development_broker_routes_retries_and_parks_on_the_cluster(cluster):
    # two Triggers: the ingress MULTI adds the event to both lanes, the finish MULTI acks it
    # and parks a dead letter; the retry script moves it between the due set and the lane
    triggers = [Trigger("ns", name, "b", "http://127.0.0.1:9/", Delivery(),
                        compile_trigger_filter({})) for name in ("t", "u")]
    queue = BrokerQueue(cluster, "ns", "b", Router(triggers))
    lanes = [lanes_of(t)[0] for t in triggers]
    for lane in lanes:
        queue.ensure_group(lane)
    event = new_event("ai.kades.market.tick.v1", "/tests", example("ai.kades.market.tick.v1"))
    assert queue.enqueue([event]) == 2
    [(entry_id, document)] = queue.read(lanes[0], "w1", count=10, block_ms=10)
    assert document["id"] == event.id
    queue.schedule(lanes[0], entry_id, {"due": 0.0, "attempt": 1})
    assert queue.claim_due(lanes[0], "w2", now=1.0) == entry_id
    queue.finish(lanes[0], [entry_id], park={"event": "{}"})
    assert cluster.xlen(keys.DLQ) == 1
    assert [cluster.xlen(queue.stream(lane)) for lane in lanes] == [0, 1]


def test_kades_broker_started_on_any_node_of_the_cluster_delivers(cluster, tmp_path):
    # `kades broker` given the second node's address: a single-server client got MOVED there
    # for its {broker} keys (their slot is the first node's); the cluster client finds them
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 -- http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(self.headers.get("ce-id"))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            return

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True).start()
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
         "metadata": {"name": "kades", "namespace": "kades"}, "spec": {}},
        {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
         "metadata": {"name": "to-receiver", "namespace": "kades"},
         "spec": {"broker": "kades",
                  "subscriber": {"uri": f"http://127.0.0.1:{receiver.server_port}/"}}}]))
    port = free_port()
    env = dict(os.environ, KADES_REDIS_CLUSTER="true",
               KADES_REDIS_URL=f"redis://127.0.0.1:{redisgroups.CLUSTER_PORTS[1]}/0")
    log = open(tmp_path / "broker.log", "wb")
    broker = subprocess.Popen([sys.executable, "-m", "kades.cli", "broker", "--eventing-dir",
                               str(tmp_path), "--port", str(port)], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        ingress, deadline = f"http://127.0.0.1:{port}/kades/kades", time.monotonic() + 30
        answer = None  # none within the deadline: a failed assert below, not a NameError
        while broker.poll() is None and time.monotonic() < deadline:
            try:
                answer = httpx.post(ingress, content=b"{}", timeout=5, headers={
                    "ce-specversion": "1.0", "ce-id": "on-the-cluster", "ce-source": "/tests",
                    "ce-type": "ai.kades.test.v1", "content-type": "application/json"})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert broker.poll() is None, (tmp_path / "broker.log").read_text()[-2000:]
        assert answer is not None and answer.status_code == 202, answer and answer.text
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == ["on-the-cluster"]
    finally:
        broker.terminate()
        broker.wait(10)
        log.close()
        receiver.shutdown()
        receiver.server_close()
