"""Redis stopped under a function: 503 (the Broker retries), nothing lost once it is back."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import redis
from functions_framework import create_app

from runtimetest import FUNCTIONS, binary, tick_data
from kades import clients
from kades.dev import redisgroups, services as devservices
from kades.dev.services import free_port
from kades.settings import SettingsError


@pytest.fixture
def counter(tmp_path, fresh_settings):
    """The counter function on a Redis of its own, which the test may stop; (client, port)."""
    port = free_port()
    devservices.ensure_redis(data_dir=tmp_path, port=port)
    fresh_settings.setenv("KADES_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    yield create_app("handle", str(FUNCTIONS / "counter" / "main.py"), "http").test_client(), port
    devservices.stop_redis(tmp_path)
    clients.close_all()


def test_redis_stopped_gives_503_then_recovers(counter, tmp_path):
    client, port = counter
    headers, body = binary(event_id="before")
    assert client.post("/", headers=headers, data=body).status_code == 200

    devservices.stop_redis(tmp_path)
    headers, body = binary(event_id="during")
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"
    not_ready = client.get("/ready")
    assert not_ready.status_code == 503 and not_ready.headers["Retry-After"] == "1"
    assert client.get("/health").status_code == 200  # alive, just not ready

    devservices.ensure_redis(data_dir=tmp_path, port=port)
    assert client.get("/ready").status_code == 200
    assert client.post("/", headers=headers, data=body).status_code == 200  # the retry
    assert int(clients.redis_client().get("test:ticks")) == 2


def test_redis_dying_mid_event_does_not_hold_the_retry(counter, tmp_path):
    """The claim of an event whose handler lost Redis stays behind (Redis saved it); the
    process could not give it back, so it takes it over on the retry instead of answering
    503 until the claim expires."""
    client, port = counter
    headers, body = binary(event_id="mid-event", data=tick_data(source="redis-dies"))
    assert client.post("/", headers=headers, data=body).status_code == 503

    devservices.ensure_redis(data_dir=tmp_path, port=port)
    redis_client = clients.redis_client()
    claims = [redis_client.get(k) for k in redis_client.keys("kades:dedup:*")]
    assert len(claims) == 1 and claims[0].startswith(b"processing:")  # left behind
    assert client.post("/", headers=headers, data=body).status_code == 200  # the retry
    assert int(redis_client.get("test:ticks")) == 1
    assert client.post("/", headers=headers, data=body).status_code == 200  # a duplicate
    assert int(redis_client.get("test:ticks")) == 1  # not counted twice


@pytest.fixture
def cluster_counter(tmp_path, fresh_settings):
    """The counter function on a one-node Redis Cluster of its own (every slot on one node),
    which the test may stop; (client, port)."""
    port = free_port(cluster_node=True)
    try:
        redisgroups.ensure_redis_cluster(data_dir=tmp_path, ports=(port,))
    except devservices.DevServiceUnavailable as error:
        pytest.skip(f"cannot start a Redis Cluster node: {error}")
    fresh_settings.setenv("KADES_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    fresh_settings.setenv("KADES_REDIS_CLUSTER", "1")
    yield create_app("handle", str(FUNCTIONS / "counter" / "main.py"), "http").test_client(), port
    redisgroups.stop_redis_cluster(tmp_path)
    clients.close_all()


def test_a_cluster_wholly_away_gives_503_then_recovers(cluster_counter, tmp_path):
    """A cluster client that finds no node when it reads the slots again raises redis-py's
    RedisClusterException, not a ConnectionError: kades.clients makes it a ClusterUnreachable
    (one of TEMPORARY_ERRORS), or the event would be a 500, which the Broker does not retry."""
    client, port = cluster_counter
    headers, body = binary(event_id="before")
    assert client.post("/", headers=headers, data=body).status_code == 200

    redisgroups.stop_redis_cluster(tmp_path)
    headers, body = binary(event_id="during")
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 503, response.get_json()
    assert response.get_json()["error"]["code"] == "unavailable"
    assert response.get_json()["error"]["message"] == "temporary failure: ClusterUnreachable"

    redisgroups.ensure_redis_cluster(data_dir=tmp_path, ports=(port,))  # empty: keeps no data
    assert client.post("/", headers=headers, data=body).status_code == 200  # the retry
    assert int(clients.redis_client().get("test:ticks")) == 1


def test_a_programs_error_on_a_cluster_stays_a_program_error(cluster_counter):
    """Keys of two slots are the program's fault: no 503 retried forever."""
    cluster = clients.redis_client()
    with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot") as raised:
        cluster.mget("kades:a", "kades:b")
    assert not isinstance(raised.value, clients.TEMPORARY_ERRORS)


def test_a_pipeline_on_a_cluster_wholly_away_reads_the_slots_once(cluster_counter, tmp_path,
                                                                   monkeypatch):
    """redis-py's cluster pipeline retries whatever is a ConnectionError, 10 times and at once,
    each time connecting and reading the slots again: a ClusterUnreachable that was one took
    11 slot reads to fail (of a hung cluster, 11 times every node's timeouts), where one
    command, and the pipeline before the translation, took one."""
    cluster = clients.redis_client()
    cluster.set("test:ticks", 1)
    reads, real = [], clients._Nodes.initialize

    def counted(self, *args, **kwargs):
        reads.append(kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(clients._Nodes, "initialize", counted)
    redisgroups.stop_redis_cluster(tmp_path)
    pipe = cluster.pipeline(transaction=False)
    pipe.get("test:ticks")
    pipe.get("test:ticks")
    with pytest.raises(clients.TEMPORARY_ERRORS) as raised:
        pipe.execute()
    assert type(raised.value) is clients.ClusterUnreachable
    assert len(reads) == 1


def test_a_cluster_client_of_a_node_not_in_cluster_mode_is_the_settings_error(base_settings):
    """KADES_REDIS_CLUSTER pointed at a Redis that is not a cluster node, or at a database
    other than 0: a 500 the operator must mend, not a 503 the Broker retries for ever. A
    cluster none of whose nodes answers is the 503. Said as the settings' error, which the
    CLIs print as one line (`kades broker`: a broken configuration, 1), where redis-py's RedisClusterException was a traceback."""
    standalone = base_settings.redis_url.rsplit("/", 1)[0] + "/0"  # the single Redis, always
    for url, why in ((standalone, "Cluster mode is not enabled"),
                     (f"redis://127.0.0.1:{free_port()}/1", "can only be 0")):
        config = dataclasses.replace(base_settings, redis_url=url, redis_cluster=True)
        with pytest.raises(SettingsError, match=f"KADES_REDIS_CLUSTER with .*{why}") as raised:
            clients.new_redis(config)
        assert not isinstance(raised.value, clients.TEMPORARY_ERRORS), url
    command = subprocess.run([sys.executable, "-m", "kades.cli", "broker", "--port",
                              str(free_port())], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "KADES_REDIS_URL": standalone,
                                  "KADES_REDIS_CLUSTER": "true"})
    assert command.returncode == 1 and "Traceback" not in command.stderr, command.stderr
    assert command.stderr.count("\n") == 1 and "Cluster mode is not enabled" in command.stderr
    away = dataclasses.replace(base_settings, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                               redis_cluster=True)
    with pytest.raises(clients.TEMPORARY_ERRORS):
        clients.new_redis(away)


def test_a_primary_without_its_replicas_is_a_503_the_broker_retries(counter):
    """The prod overlay's min-replicas-to-write 1: a primary whose replica is away (the
    seconds after a failover) answers NOREPLICAS to writes, which was a 500 and a traceback."""
    client, port = counter
    admin = redis.Redis(port=port)
    admin.config_set("min-replicas-to-write", 1)  # and no replica: every write refused
    try:
        headers, body = binary(event_id="while-alone")
        response = client.post("/", headers=headers, data=body)
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.get_json()["error"]["code"] == "unavailable"
    finally:
        admin.config_set("min-replicas-to-write", 0)
    assert client.post("/", headers=headers, data=body).status_code == 200  # the retry
    assert int(admin.get("test:ticks")) == 1


def test_a_full_or_unpersisting_redis_is_a_503_the_broker_retries(counter, tmp_path):
    """Redis at maxmemory (noeviction, as every overlay sets) answers OOM, and one that
    failed to write its snapshot (a full disk) MISCONF: both were a 500 and a traceback,
    where docs/operations.md promises the Broker a 503 to retry on."""
    import time
    client, port = counter
    admin = redis.Redis(port=port)
    headers, body = binary(event_id="first")
    assert client.post("/", headers=headers, data=body).status_code == 200
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    for event_id in ("while-full", "first"):  # a new event, and the redelivery of a done one
        headers, body = binary(event_id=event_id)
        response = client.post("/", headers=headers, data=body)
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.get_json()["error"]["code"] == "unavailable"
    admin.config_set("maxmemory", 0)
    saved_dir = admin.config_get("dir")["dir"]
    admin.config_set("save", "900 1")
    admin.config_set("dir", "/proc")  # no file can be made there, not even by root
    admin.bgsave()
    deadline = time.monotonic() + 10
    while admin.info("persistence")["rdb_last_bgsave_status"] != "err":
        assert time.monotonic() < deadline, "the snapshot did not fail"
        time.sleep(0.05)
    headers, body = binary(event_id="while-unpersisting")
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 503, response.get_data(as_text=True)
    admin.config_set("dir", saved_dir)
    admin.config_set("save", "")
    admin.save()  # a good snapshot: writes are taken again
    for event_id in ("while-full", "while-unpersisting"):  # the Broker's retries
        headers, body = binary(event_id=event_id)
        assert client.post("/", headers=headers, data=body).status_code == 200
    assert int(admin.get("test:ticks")) == 3


def test_database_connections_find_a_silent_server(kades_settings):
    """Every pooled connection's socket probes an idle server and bounds unacknowledged
    sends (clients.DATABASE_TCP): a database that falls silent without closing (its node
    lost, a partition) fails the query in ~20-25 s, where a handler waiting for a result
    waited for ever. A silent network cannot be made here (no netfilter, no netem qdisc), so
    the socket's own options are read: what libpq set, not what it was asked. (A server
    stopped whole can be made: test_stopped_database.py.)"""
    import socket

    with clients.db_pool(kades_settings).connection() as conn:
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            options = {"keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                       "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                       "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                       "count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                       "user_timeout_ms": sock.getsockopt(socket.IPPROTO_TCP,
                                                          socket.TCP_USER_TIMEOUT)}
        finally:
            sock.close()
    assert options == {"keepalive": 1, "idle": 10, "interval": 5, "count": 3,
                       "user_timeout_ms": 20_000}
