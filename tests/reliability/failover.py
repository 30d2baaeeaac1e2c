"""The failover fault: the functions' Redis is a primary, two replicas and three Sentinels
(quorum 2, as in the prod overlay), and the primary is killed (SIGKILL) under load.

The functions run with KADES_REDIS_SENTINELS: after the kill they answer 503 (the broker
retries) until Sentinel has promoted the replica, then their client asks the Sentinels again
and writes to the new primary. The killed server comes back afterwards as a replica of the
new primary, as a restarted pod of the prod overlay does. The development broker keeps its
queue in a Redis of its own, as a cluster's Broker keeps it in Kafka, never in the functions'
Redis: the books read the broker's lanes and dead letters there and the functions' done marks
in the replicated Redis. "Away" is the time from the kill until Sentinel named the new
primary; recovery runs from then, as for the other faults.
"""
from __future__ import annotations

import dataclasses
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from accounting import Ledger, settle
from faults import FaultResult, recovery_s, refusals_since
from load import Load, Tracker
from mesh import Mesh

from kades import clients
from kades.dev import redisgroups
from kades.dev.services import free_port
from kades.events.envelope import CloudEvent
from kades.settings import Settings

NAME = "Redis primary killed (SIGKILL), Sentinel promotes a replica"


@dataclass
class SentinelRedis:
    """A primary, two replicas and three Sentinels on free ports, under `data_dir`, as the
    prod overlay's three pods. The functions wait for every replica in step with the primary
    (and at least one, KADES_REDIS_WAIT_REPLICAS=1): with one node killed a replica is left,
    so the wait still passes."""

    data_dir: Path
    ports: tuple[int, ...] = dataclasses.field(
        default_factory=lambda: (free_port(), free_port(), free_port()))
    sentinel_ports: tuple[int, int, int] = dataclasses.field(
        default_factory=lambda: (free_port(), free_port(), free_port()))
    killed: int | None = None
    promoted: int | None = None  # the replica the Sentinels named in answer to the kill
    down_after_ms: int = 1000  # Sentinel's down-after: the first part of the fault's "away"

    @property
    def env(self) -> dict[str, str]:
        """What the function processes are started with to follow a failover."""
        return {"KADES_REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports),
                "KADES_REDIS_SENTINEL_MASTER": redisgroups.SENTINEL_MASTER,
                "KADES_REDIS_WAIT_REPLICAS": "1"}

    def start(self) -> None:
        redisgroups.ensure_redis_sentinel(data_dir=self.data_dir, ports=self.ports,
                                          sentinel_ports=self.sentinel_ports,
                                          down_after_ms=self.down_after_ms)

    def primary(self) -> int | None:
        return redisgroups.redis_sentinel_primary(self.sentinel_ports)

    def kill_primary(self) -> None:
        self.killed = self.primary()
        redisgroups.crash_redis_node(self.data_dir, self.killed)

    def await_promotion(self, *, timeout_s: float = 60) -> None:
        """Return once the Sentinels name another primary than the one killed."""
        deadline = time.monotonic() + timeout_s
        while (named := self.primary()) in (self.killed, None):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no replica promoted within {timeout_s:.0f} s")
            time.sleep(0.05)
        self.promoted = named

    def problem(self) -> str | None:
        """Why the group is not whole (None once every node follows the one primary every
        Sentinel names)."""
        return redisgroups.sentinel_group_problem(self.ports, self.sentinel_ports,
                                                  redisgroups.SENTINEL_MASTER)

    def rejoin(self) -> None:
        """Start the killed server again: it comes back as a replica of the new primary."""
        self.start()

    def stop(self) -> None:
        redisgroups.stop_redis_sentinel(self.data_dir)


def kill_primary(group: SentinelRedis, mesh, load, tracker, *,
                 recovery_timeout_s: float = 180) -> FaultResult:
    """SIGKILL the primary; away until Sentinel promotes a replica, recovery from then.
    The functions' /ready is asked at once, beside the wait (its Redis client asks the
    Sentinels for the primary again, and they name the dead one until the promotion)."""
    refusals_before = Counter(load.refusals)
    group.kill_primary()
    killed_at = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        ready = pool.submit(mesh.ready_statuses)
        group.await_promotion()
        promoted_at = time.monotonic()
        recovery = recovery_s(promoted_at, load=load, tracker=tracker,
                              timeout_s=recovery_timeout_s)
        return FaultResult(NAME, promoted_at - killed_at, recovery, ready.result(),
                           refusals_since(refusals_before, load))


def failover_run(state_dir: Path, events: Iterator[CloudEvent], *, broker_redis_url: str,
                 database_url: str, rate_per_s: float, before_s: float = 10.0,
                 after_s: float = 10.0, settle_timeout_s: float = 180) -> dict:
    """A mesh whose functions use a Sentinel-managed Redis; `before_s` of load, the primary
    killed, `after_s` more of load once recovered, then the books. The result: the fault as
    the other faults report it (FaultResult fields), the books, and the seconds from the kill
    until the service answered again (`back_s`: promotion plus recovery)."""
    group = SentinelRedis(Path(state_dir) / "redis")
    group.start()
    mesh = Mesh(Path(state_dir) / "mesh", redis_url=broker_redis_url, database_url=database_url,
                env=group.env)
    functions = clients.redis_client(Settings.from_env({"KADES_REDIS_URL": broker_redis_url,
                                                        **group.env}))
    broker = clients.redis_client(Settings.from_env({"KADES_REDIS_URL": broker_redis_url}))
    load = tracker = None
    try:
        mesh.start()
        ledger = Ledger(mesh)
        load = Load(mesh.ingress, events, rate_per_s=rate_per_s).start()
        tracker = Tracker(ledger, functions, load).start()
        time.sleep(before_s)
        fault = kill_primary(group, mesh, load, tracker)
        group.rejoin()
        time.sleep(after_s)
        load.stop()
        books, _ = settle(ledger, functions, database_url, [e for e, _ in load.accepted],
                          broker_client=broker, timeout_s=settle_timeout_s)
        back = None if fault.recovery_s is None else fault.away_s + fault.recovery_s
        return {**dataclasses.asdict(fault), "books": books, "back_s": back,
                # the promotion the kill caused: on a loaded machine a 1 s down-after may
                # fail over again later (even back to the rejoined node), which the books allow
                "killed": group.killed, "promoted": group.promoted}
    finally:
        if load is not None:
            load.stop()
        if tracker is not None:
            tracker.stop()
        mesh.stop()
        functions.close()  # the broker's client is the caller's (one per URL)
        group.stop()
