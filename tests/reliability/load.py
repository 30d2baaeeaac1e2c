"""A steady stream of seeded events posted to the broker ingress, as a source would post them:
an event refused with 503 or a connection error is posted again (with backoff) until the
broker accepts it (202). A tracker measures, for every accepted input, when every function
it was owed to had handled it: the end-to-end latency and the lag (inputs not yet done)."""
from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from typing import Iterator

import httpx
import redis

from accounting import Ledger, mark_states
from kades.events.envelope import CloudEvent, to_binary
from kades.keys import dedup_key
from kades.runtime import dedup


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    if len(latencies_s) < 2:
        return {"p50": float("nan"), "p99": float("nan")}
    cuts = statistics.quantiles(latencies_s, n=100)
    return {"p50": cuts[49], "p99": cuts[98]}


class Load:
    """Posts `events` at `rate_per_s` in a thread until stopped or exhausted."""

    def __init__(self, ingress: str, events: Iterator[CloudEvent], *, rate_per_s: float):
        self.ingress, self.events, self.rate_per_s = ingress, events, rate_per_s
        self.accepted: list[tuple[CloudEvent, float]] = []
        self.refusals: Counter = Counter()  # "503", "ConnectError", ...
        self.rejected: list[tuple[CloudEvent, int]] = []  # 4xx: never retried
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def pause(self) -> None:
        """Stop posting after the current event (resume() goes on)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def start(self) -> "Load":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def running(self) -> bool:
        """Still posting (not every event posted yet, not stopped)."""
        return self._thread.is_alive()

    def wait(self, *, timeout_s: float) -> bool:
        """Wait until every event was posted; False when time ran out first."""
        self._thread.join(timeout=timeout_s)
        return not self._thread.is_alive()

    def _post(self, client: httpx.Client, event: CloudEvent) -> None:
        headers, body = to_binary(event)
        delay = 0.05
        while True:
            try:
                status = client.post(self.ingress, headers=headers, content=body).status_code
            except httpx.TransportError as error:
                status, reason = None, type(error).__name__
            else:
                reason = str(status)
            if status == 202:
                self.accepted.append((event, time.monotonic()))
                return
            if status is not None and 400 <= status < 500 and status not in (404, 408, 429):
                self.rejected.append((event, status))
                return
            self.refusals[reason] += 1
            if self._stop.is_set() and status is None:
                return
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _run(self) -> None:
        next_at = time.monotonic()
        with httpx.Client(timeout=10) as client:
            for event in self.events:
                while not self._running.wait(timeout=0.2):
                    next_at = time.monotonic()
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                self._post(client, event)
                next_at += 1.0 / self.rate_per_s  # read each time: the rate may change
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                else:
                    next_at = time.monotonic()  # behind: do not burst to catch up


class Tracker:
    """Polls the dedup marks of accepted inputs; latency = accepted -> handled everywhere owed."""

    def __init__(self, ledger: Ledger, client, load: Load, *, poll_s: float = 0.2):
        self.ledger, self.client, self.load, self.poll_s = ledger, client, load, poll_s
        self.latencies_s: list[float] = []
        self.lag_samples: list[tuple[float, int]] = []  # (time, inputs not yet handled)
        self._seen = 0
        self._waiting: dict[tuple[str, str], tuple[list[str], float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Tracker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except (redis.ConnectionError, redis.TimeoutError):
                pass  # Redis is being stopped (or failed over) on purpose: the next poll catches up
            time.sleep(self.poll_s)

    def poll(self) -> None:
        fresh = self.load.accepted[self._seen:]
        self._seen += len(fresh)
        for event, at in fresh:
            keys = [dedup_key(name, dedup.source_and_id(event))
                    for name, _ in self.ledger.owed(event)]
            with self._lock:
                self._waiting[(event.source, event.id)] = (keys, at)
        with self._lock:
            pending = list(self._waiting.items())
        states = mark_states(self.client, [k for _, (keys, _) in pending for k in keys])
        now, offset = time.monotonic(), 0
        for ident, (keys, at) in pending:
            mine = states[offset:offset + len(keys)]
            offset += len(keys)
            if all(dedup.is_done(s) for s in mine):
                self.latencies_s.append(now - at)
                with self._lock:
                    del self._waiting[ident]
        self.lag_samples.append((now, len(self._waiting)))

    def percentiles(self) -> dict[str, float]:
        return percentiles(self.latencies_s)

    @property
    def lag(self) -> int:
        return len(self._waiting)

    def waiting(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._waiting)

    def wait_done(self, upto: int, *, timeout_s: float) -> float | None:
        """Seconds until the first `upto` accepted inputs are all handled (None: not within
        `timeout_s`)."""
        idents = {(e.source, e.id) for e, _ in self.load.accepted[:upto]}
        began = time.monotonic()
        while time.monotonic() - began < timeout_s:
            if self._seen >= upto and not idents & self.waiting():
                return time.monotonic() - began
            time.sleep(self.poll_s / 2)
        return None
