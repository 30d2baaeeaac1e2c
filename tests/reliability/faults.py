"""Faults injected during a steady stream, and how the system came back.

Each fault takes something away (Redis, PostgreSQL, a function process, the broker), keeps
it away for a while, gives it back, and measures the recovery time: from the moment the
dependency is back until every input accepted before that moment, and the first one accepted
after it, is handled by every function it was owed to. While it is away, the functions' /ready answers and the statuses
the ingress gave the load generator are recorded (503 is what the design promises).
Redis and PostgreSQL here are throwaway servers of this run, never the shared ones. The
sixth fault, a Redis primary killed under Sentinel, runs on a mesh of its own (failover.py).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kades.dev import services as devservices


@dataclass
class FaultResult:
    name: str
    away_s: float
    recovery_s: float | None
    ready_while_away: dict[str, int | None] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)

    @property
    def recovered(self) -> bool:
        return self.recovery_s is not None


@dataclass
class Services:
    """Throwaway Redis and PostgreSQL of one run."""

    data_dir: Path
    redis_port: int
    postgres_port: int
    user: str = "kades"
    database: str = "kades_reliability"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def database_url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.postgres_port}/{self.database}"

    def start_redis(self) -> None:
        devservices.ensure_redis(data_dir=self.data_dir, port=self.redis_port)

    def stop_redis(self) -> None:
        devservices.stop_redis(self.data_dir)  # SIGTERM: Redis saves its data set first

    def crash_redis(self) -> None:
        devservices.stop_redis(self.data_dir, crash=True)  # only the append-only file is left

    def start_postgres(self) -> None:
        devservices.ensure_postgres(data_dir=self.data_dir, port=self.postgres_port,
                                    user=self.user, database=self.database)

    def stop_postgres(self) -> None:
        devservices.stop_postgres(self.data_dir)

    def stop_all(self) -> None:
        self.stop_redis()
        self.stop_postgres()


def inject(name: str, take_away: Callable[[], None], give_back: Callable[[], None], *,
           away_s: float, mesh, load, tracker, recovery_timeout_s: float = 180) -> FaultResult:
    """Take something away for `away_s` during the stream, give it back, time the recovery."""
    refusals_before = Counter(load.refusals)
    in_hand = take_away()
    if isinstance(in_hand, list):  # a process killed mid-event: the claims it left behind
        name += f" ({len(in_hand)} event{'s' * (len(in_hand) != 1)} in hand)"
    taken_at = time.monotonic()
    time.sleep(min(2.0, away_s / 2))
    ready = mesh.ready_statuses()
    time.sleep(max(0.0, away_s - (time.monotonic() - taken_at)))
    give_back()
    back_at = time.monotonic()
    recovery = recovery_s(back_at, load=load, tracker=tracker, timeout_s=recovery_timeout_s)
    return FaultResult(name, back_at - taken_at, recovery, ready,
                       refusals_since(refusals_before, load))


def recovery_s(back_at: float, *, load, tracker, timeout_s: float) -> float | None:
    """Seconds from `back_at` until everything accepted before it, and the first input
    accepted after it, is handled (None: not within `timeout_s`)."""
    first_after = len(load.accepted) + 1
    while len(load.accepted) < first_after and time.monotonic() - back_at < timeout_s:
        time.sleep(0.05)
    waited = tracker.wait_done(first_after, timeout_s=timeout_s)
    return None if waited is None else time.monotonic() - back_at


def refusals_since(before: Counter, load) -> dict[str, int]:
    """The ingress refusals the load generator met since `before` (a copy of its counter)."""
    refusals = Counter(load.refusals)
    refusals.subtract(before)
    return {k: v for k, v in refusals.items() if v}


def every_fault(services: Services, mesh, *, away_s: float = 10.0,
                victim: str = "market-aggregator") -> list[tuple[str, Callable, Callable, float]]:
    """(name, take away, give back, seconds away) of the four faults of the issue, and a
    Redis crash (no final save). The function is killed with an event in hand: its claim
    stays until the lease (KADES_CLAIM_LEASE_S) runs out, and a retry of the broker's takes
    the event over in the new process (recovery includes that wait)."""
    return [
        ("Redis stopped", services.stop_redis, services.start_redis, away_s),
        ("Redis killed (SIGKILL), restarted", services.crash_redis, services.start_redis, 2.0),
        ("PostgreSQL stopped", services.stop_postgres, services.start_postgres, away_s),
        (f"{victim} killed mid-event (SIGKILL), restarted", lambda: mesh.kill_mid_event(victim),
         lambda: mesh.restart(victim), 2.0),
        ("broker killed (SIGKILL), restarted", lambda: mesh.kill("broker"),
         lambda: mesh.restart("broker"), 2.0),
    ]
