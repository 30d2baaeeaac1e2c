"""Redis in the shapes production runs it, started locally for the tests and `make reliability`.

`ensure_redis_cluster`: a three-node Redis Cluster (the suite's multi-key operations on a
cluster, tests/conftest.py). `ensure_redis_sentinel`: a primary, its replicas and three
Sentinels (quorum 2, as in the prod overlay; the failover fault of tests/reliability). Both
run the same redis-server binary as kades.dev.services, under `<data_dir>/redis-cluster/`
and `<data_dir>/redis-sentinel/`, and are stopped by their pid files.
"""
from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import redis

from kades.dev.services import (HOST, DevServiceError, foreign_service, log_tail, port_open,
                                redis_answers, redis_binary, redis_data_dir, redis_group_dir,
                                stop_redis_by_pid_file, wait_until)


# --- a Redis Cluster ------------------------------------------------------------------------

CLUSTER_PORTS = (7391, 7392, 7393)
_SLOTS = 16384


def redis_cluster_dir(data_dir: Path) -> Path:
    return redis_group_dir(data_dir, "cluster")


def ensure_redis_cluster(*, data_dir: Path, ports: tuple[int, ...] = CLUSTER_PORTS,
                         timeout_s: float = 20.0) -> bool:
    """Make this checkout's Redis Cluster answer on 127.0.0.1:`ports`: one primary per port
    (the same redis-server binary, in cluster mode), each under
    `<data_dir>/redis-cluster/<port>`, the slots split evenly; True if we started a node.
    It keeps nothing on disk but its nodes.conf: a test cluster, never a store."""
    base = redis_cluster_dir(data_dir)
    started = False
    for port in ports:
        directory = base / str(port)
        if redis_answers(port):
            if (found := redis_data_dir(port)) != directory:
                raise foreign_service("Redis", port, found, directory, "KADES_TEST_REDIS_CLUSTER")
            continue
        if port_open(port):
            raise DevServiceError(f"something that is not Redis listens on {HOST}:{port}")
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run([redis_binary(), "--bind", HOST, "--port", str(port), "--daemonize", "yes",
                        "--pidfile", str(directory / "redis.pid"),
                        "--logfile", str(directory / "redis.log"), "--dir", str(directory),
                        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                        "--cluster-node-timeout", "2000", "--appendonly", "no", "--save", ""],
                       check=True)
        started = True
    for port in ports:
        wait_until(lambda: redis_answers(port), timeout_s=timeout_s, what="redis-server",
                    log=base / str(port) / "redis.log")
    _form_cluster(ports, timeout_s=timeout_s, log=base / str(ports[0]) / "redis.log")
    return started


def _form_cluster(ports: tuple[int, ...], *, timeout_s: float, log: Path) -> None:
    """Give each node its share of the slots and introduce them, unless they already form
    this cluster (a node restarted keeps both in its nodes.conf)."""
    nodes = [redis.Redis(host=HOST, port=port, socket_timeout=2.0, decode_responses=True)
             for port in ports]
    try:
        if not all(_cluster_whole(node, len(ports)) for node in nodes):
            for index, node in enumerate(nodes):
                node.flushall()  # a node that holds keys refuses to join
                node.execute_command("CLUSTER", "RESET", "HARD")
                share = range(index * _SLOTS // len(nodes), (index + 1) * _SLOTS // len(nodes))
                node.execute_command("CLUSTER", "ADDSLOTS", *share)
            for node in nodes[1:]:
                node.execute_command("CLUSTER", "MEET", HOST, ports[0])
        wait_until(lambda: all(_cluster_whole(node, len(ports)) for node in nodes),
                    timeout_s=timeout_s, what="the Redis Cluster", log=log)
    finally:
        for node in nodes:
            node.close()


def _cluster_whole(node: redis.Redis, size: int) -> bool:
    info = node.execute_command("CLUSTER", "INFO")
    info = dict(line.split(":", 1) for line in info.split() if ":" in line)
    return (info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == str(size)
            and info.get("cluster_slots_ok") == str(_SLOTS))


def stop_redis_cluster(data_dir: Path, *, timeout_s: float = 10.0) -> bool:
    """Stop the cluster nodes started in `data_dir`; True if any was running."""
    pid_files = sorted(redis_cluster_dir(data_dir).glob("*/redis.pid"))
    return any([stop_redis_by_pid_file(pid_file, timeout_s=timeout_s, crash=False)
                for pid_file in pid_files])


# --- a replicated Redis under Sentinel -----------------------------------------------------

SENTINEL_MASTER = "kades"


def redis_sentinel_dir(data_dir: Path) -> Path:
    return redis_group_dir(data_dir, "sentinel")


def _sentinel_id(port: int) -> str:
    """A Sentinel's fixed run id (as the prod overlay derives one from the pod name): one
    that restarts keeps its identity, so the others never count a stale Sentinel."""
    return hashlib.sha1(f"sentinel-{port}".encode()).hexdigest()


def ensure_redis_sentinel(*, data_dir: Path, ports: tuple[int, ...],
                          sentinel_ports: tuple[int, int, int], master: str = SENTINEL_MASTER,
                          down_after_ms: int = 1000, timeout_s: float = 45.0) -> bool:
    """Make a replicated Redis answer: `ports[0]` the first primary, the others its replicas,
    watched by three Sentinels on `sentinel_ports` (quorum 2, as in the prod overlay), each
    node and Sentinel under `<data_dir>/redis-sentinel/<port>`, with the append-only file on.
    A node that is not running is started as a replica of the primary the Sentinels name now
    (so after a failover the old primary comes back as a replica); True if anything started."""
    base = redis_sentinel_dir(data_dir)
    primary = redis_sentinel_primary(sentinel_ports, master) or ports[0]
    started = False
    for port in ports:
        if redis_answers(port):
            continue
        directory = base / str(port)
        directory.mkdir(parents=True, exist_ok=True)
        follow = [] if port == primary else ["--replicaof", HOST, str(primary)]
        subprocess.run([redis_binary(), "--bind", HOST, "--port", str(port), "--daemonize", "yes",
                        "--pidfile", str(directory / "redis.pid"),
                        "--logfile", str(directory / "redis.log"), "--dir", str(directory),
                        "--appendonly", "yes", "--appendfsync", "everysec", *follow], check=True)
        started = True
    for port in sentinel_ports:
        if redis_answers(port):
            continue
        directory = base / str(port)
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "sentinel.conf"
        if not config.exists():  # else the one it rewrote: it knows the current primary
            config.write_text("\n".join([
                f"port {port}", f"bind {HOST}", "daemonize yes",
                f"pidfile {directory / 'redis.pid'}", f"logfile {directory / 'redis.log'}",
                f"dir {directory}", f"sentinel myid {_sentinel_id(port)}",
                f"sentinel monitor {master} {HOST} {primary} 2",
                f"sentinel down-after-milliseconds {master} {down_after_ms}",
                f"sentinel failover-timeout {master} {max(5000, 4 * down_after_ms)}",
                # known at once, rather than after the 10 s discovery of replicas and the
                # 2 s hello messages of the other Sentinels
                *(f"sentinel known-replica {master} {HOST} {p}" for p in ports if p != primary),
                *(f"sentinel known-sentinel {master} {HOST} {p} {_sentinel_id(p)}"
                  for p in sentinel_ports if p != port), ""]))
        subprocess.run([redis_binary(), str(config), "--sentinel"], check=True)
        started = True
    deadline = time.monotonic() + timeout_s
    while (problem := sentinel_group_problem(ports, sentinel_ports, master)) is not None:
        if time.monotonic() > deadline:
            logs = "\n".join(log_tail(base / str(port) / "redis.log", lines=12)
                              for port in sentinel_ports)
            raise DevServiceError(f"the Redis Sentinel group was not whole within "
                                  f"{timeout_s:.0f} s: {problem}\n{logs}")
        time.sleep(0.1)
    return started


def redis_sentinel_primary(sentinel_ports: tuple[int, ...],
                           master: str = SENTINEL_MASTER) -> int | None:
    """The port of the primary the first Sentinel that answers names (None: none answers)."""
    for port in sentinel_ports:
        if not port_open(port):
            continue
        client = redis.Redis(host=HOST, port=port, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            address = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master)
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            continue
        finally:
            client.close()
        if address:
            return int(address[1])
    return None


def sentinel_group_problem(ports: tuple[int, ...], sentinel_ports: tuple[int, ...],
                            master: str) -> str | None:
    """Why the group is not yet whole (None once it is): every replica synced with the
    primary, every Sentinel agreeing on that primary and seeing every replica up (so it
    can promote one)."""
    primary = redis_sentinel_primary(sentinel_ports, master)
    if primary is None:
        return "no Sentinel names a primary"
    if silent := [p for p in ports if not redis_answers(p)]:
        return f"nodes {silent} do not answer"
    for port in ports:
        client = redis.Redis(host=HOST, port=port, socket_timeout=1.0, decode_responses=True)
        try:
            info = client.info("replication")
        finally:
            client.close()
        expected = "master" if port == primary else "slave"
        if info["role"] != expected or (expected == "slave" and (
                info.get("master_port") != primary or info.get("master_link_status") != "up")):
            return (f"node {port} is {info['role']} (of {info.get('master_port')}, link "
                    f"{info.get('master_link_status')}), not the {expected} the Sentinels "
                    f"expect with primary {primary}")
    for port in sentinel_ports:
        client = redis.Redis(host=HOST, port=port, socket_timeout=1.0, decode_responses=True)
        try:
            named = redis_sentinel_primary((port,), master)
            if named != primary:
                return f"Sentinel {port} names primary {named}, another {primary}"
            replicas = client.execute_command("SENTINEL", "REPLICAS", master)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            return f"Sentinel {port}: {error}"
        finally:
            client.close()
        up = {int(r["port"]) for r in replicas if "s_down" not in r["flags"]
              and "disconnected" not in r["flags"]}
        if not up >= set(ports) - {primary}:
            seen = {r["port"]: r["flags"] for r in replicas}
            return f"Sentinel {port} sees replicas {seen}"
    return None


def crash_redis_node(data_dir: Path, port: int) -> bool:
    """SIGKILL the node (or Sentinel) of the group on `port`: no final save, as a crash."""
    return stop_redis_by_pid_file(redis_sentinel_dir(data_dir) / str(port) / "redis.pid",
                                   timeout_s=10.0, crash=True)


def stop_redis_sentinel(data_dir: Path, *, timeout_s: float = 10.0) -> bool:
    """Stop every node and Sentinel started in `data_dir`; True if any was running."""
    pid_files = sorted(redis_sentinel_dir(data_dir).glob("*/redis.pid"))
    return any([stop_redis_by_pid_file(pid_file, timeout_s=timeout_s, crash=False)
                for pid_file in pid_files])
