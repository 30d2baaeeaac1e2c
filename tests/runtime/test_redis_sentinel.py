"""A real Sentinel failover under the client of kades.clients (KADES_REDIS_SENTINELS): a
primary, its replica and one Sentinel (the same redis-server binary), the primary killed;
the client reaches the promoted replica within seconds, every error meanwhile is one the
runtime answers 503 (the Broker retries), and what was acknowledged by the replica is kept."""
from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis

from kades import clients
from kades.dev import services as devservices
from kades.dev.services import free_port
from kades.clients import sentinel_addresses
from kades.runtime.state import StateStore
from kades.settings import Settings, SettingsError

pytestmark = pytest.mark.slow


@pytest.fixture
def sentinel_group(tmp_path):
    """(settings for the group, the primary's process); every process stopped at the end."""
    try:
        binary = devservices.redis_binary()
    except devservices.DevServiceUnavailable as error:
        pytest.skip(str(error))
    primary, replica, sentinel = free_port(), free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    for port in (primary, replica):  # a full sync writes an RDB file there
        (tmp_path / str(port)).mkdir()
    processes = [subprocess.Popen([binary, "--port", str(primary), *common,
                                   "--dir", str(tmp_path / str(primary))],
                                  stdout=subprocess.DEVNULL),
                 subprocess.Popen([binary, "--port", str(replica), *common,
                                   "--dir", str(tmp_path / str(replica)),
                                   "--replicaof", "127.0.0.1", str(primary)],
                                  stdout=subprocess.DEVNULL)]
    config = tmp_path / "sentinel.conf"
    config.write_text(f"port {sentinel}\nbind 127.0.0.1\n"
                      f"sentinel monitor kades 127.0.0.1 {primary} 1\n"
                      f"sentinel known-replica kades 127.0.0.1 {replica}\n"  # no 10 s discovery
                      "sentinel down-after-milliseconds kades 1000\n"
                      "sentinel failover-timeout kades 5000\n")
    processes.append(subprocess.Popen([binary, str(config), "--sentinel"],
                                      stdout=subprocess.DEVNULL))
    settings = dataclasses.replace(Settings(), redis_url="redis://127.0.0.1/0",
                                   redis_sentinels=f"127.0.0.1:{sentinel}", redis_timeout_s=0.5)
    try:
        _wait_for_the_group(sentinel, primary)
        yield settings, processes[0]
    finally:
        clients.close_all()
        for process in processes:
            process.kill()
            process.wait()


def _wait_for_the_group(sentinel: int, primary: int) -> None:
    """The processes were just started: until the Sentinel listens and counts the primary
    up, and the primary listens, a client's first command fails (MasterNotFoundError, a
    refused connection)."""
    options = {"host": "127.0.0.1", "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    watcher, server = redis.Redis(port=sentinel, **options), redis.Redis(port=primary, **options)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                state = watcher.sentinel_masters().get("kades")
                # the test redis-py's discovery makes of the answer
                if (state and state["is_master"] and not state["is_sdown"]
                        and not state["is_odown"] and server.ping()):
                    return
            except clients.TEMPORARY_ERRORS:
                pass
            assert time.monotonic() < deadline, "the Sentinel and the primary did not come up"
            time.sleep(0.05)
    finally:
        watcher.close()
        server.close()


def test_a_killed_primary_is_replaced_within_seconds_and_nothing_acknowledged_is_lost(
        sentinel_group):
    settings, primary = sentinel_group
    client = clients.redis_client(settings)
    deadline = time.monotonic() + 10
    [(host, port)] = sentinel_addresses(settings.redis_sentinels)
    watcher = redis.Redis(host=host, port=port, decode_responses=True)
    while True:  # the replica must be in sync, and known to the Sentinel (it can promote it)
        try:
            client.set("ready", "1")
            if client.wait(1, 1000) == 1 and any(
                    "s_down" not in r["flags"] for r in watcher.sentinel_slaves("kades")):
                break
        except clients.TEMPORARY_ERRORS:
            pass
        assert time.monotonic() < deadline, "the group did not form"
        time.sleep(0.2)
    watcher.close()
    store = StateStore(ttl_s=600)
    state_keys = ["{t}a", "{t}b"]
    add = lambda states: ([{"n": (s or {"n": 0})["n"] + 1} for s in states], None)  # noqa: E731
    for _ in range(20):
        store.update(client, state_keys, add)
    assert client.wait(1, 2000) == 1  # acknowledged by the replica too

    primary.send_signal(signal.SIGKILL)
    primary.wait()
    killed, errors = time.monotonic(), []
    while True:
        try:
            store.update(client, state_keys, add)
            break
        except clients.TEMPORARY_ERRORS as error:  # the runtime answers 503: retried
            errors.append(type(error).__name__)
        assert time.monotonic() - killed < 30, f"no new primary: {errors[-3:]}"
        time.sleep(0.1)
    back_s = time.monotonic() - killed
    assert errors, "the primary's death went unnoticed: was it the primary?"
    assert back_s < 15, back_s
    # the 20 acknowledged updates, then the one made on the new primary
    assert StateStore(ttl_s=600).current(client, state_keys) == [{"n": 21}, {"n": 21}]
    print(f"back after {back_s:.1f} s, {len(errors)} temporary errors meanwhile")


def test_a_sentinel_that_is_gone_is_asked_once_before_the_next(sentinel_group):
    """The Sentinels' pods hold the Redis pods too: the first one listed gone with the
    primary's pod cost every discovery of the primary redis-py's 11 attempts with backoff
    (3.9 s for one that answers by closing; over 20 s for one that never answers)."""
    settings, _ = sentinel_group
    gone = socket.create_server(("127.0.0.1", 0))
    attempts = []

    def close_each():
        while True:
            try:
                connection, _ = gone.accept()
            except OSError:  # closed: the test is over
                return
            attempts.append(1)
            connection.close()

    threading.Thread(target=close_each, daemon=True).start()
    try:
        listed = dataclasses.replace(settings, redis_sentinels=(
            f"127.0.0.1:{gone.getsockname()[1]},{settings.redis_sentinels}"))
        client = clients.new_redis(listed)
        assert client.ping()
        assert len(attempts) == 1
    finally:
        gone.close()


def test_cluster_and_sentinels_together_or_a_bad_sentinel_list_are_refused():
    both = dataclasses.replace(Settings(), redis_cluster=True, redis_sentinels="127.0.0.1:1")
    with pytest.raises(SettingsError, match="set one of them"):
        clients.redis_client(both)
    with pytest.raises(SettingsError, match="KADES_REDIS_SENTINELS"):
        sentinel_addresses("host:port")
    assert Settings.from_env({"KADES_REDIS_CLUSTER": "yes",
                              "KADES_REDIS_SENTINEL_MASTER": "m"}).redis_sentinel_master == "m"
