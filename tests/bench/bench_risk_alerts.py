"""`make bench` section: how long risk-scoring holds an alert before deciding it (real Redis and
PostgreSQL, the handler called in process).

A token gets one anomaly that makes it critical and goes quiet; the figure is the wall time
until its alert is replied. The alert waits in event time for earlier input (docs/api.md,
"When an alert comes"): the lateness of wall clock, then the next event of any token or the
next stream-flush. Production clocks are scaled down 30 times (lateness 30 s -> 1 s,
stream-flush every 60 s -> 2 s, risk-decay every 300 s -> 10 s, pings at a random phase) and
figures are printed scaled back. Two loads: a quiet system (only the pings) and a busy one
(another token's anomaly every 3 s). Bound: lateness + flush period = 90 s; the delivery that
follows (broker -> alert-dispatch -> WebSocket) is bench_api.py's. Printed, never asserted.
"""
from __future__ import annotations

import dataclasses
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from kades.dev import services as devservices
from kades.events.catalogue import ALERT, ANOMALY_DETECTED, PING, new_event
from kades.risk.function import handle_anomalies as handle
from kades.runtime import Context
from kades.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import bench_stores  # noqa: E402

SCALE = 30
LATENESS_S, FLUSH_S, DECAY_S = 30 / SCALE, 60 / SCALE, 300 / SCALE
BUSY_EVERY_S = 3 / SCALE
TRIALS = 8


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def anomaly(ident: str, token: str, score: float):
    return new_event(ANOMALY_DETECTED, "/bench", {"anomalies": [{
        "token": token, "time": now_text(), "anomaly_type": "liquidity_removal",
        "score": score, "detector": "bench"}]}, event_id=ident)


def ping(job: str, ident: str):
    return new_event(PING, f"/apis/v1/namespaces/kades/pingsources/{job}", {"job": job},
                     time=now_text(), event_id=ident)


def alert_delay_s(ctx: Context, trial: int, *, busy: bool, rng: random.Random) -> float:
    """Wall seconds from a quiet token's anomaly to its alert (production scale)."""
    ctx.redis.flushdb()
    posted = time.monotonic()
    origin = posted - rng.uniform(0, DECAY_S)  # where the ping schedules stand
    next_flush = origin + FLUSH_S * (int((posted - origin) / FLUSH_S) + 1)
    next_decay = origin + DECAY_S * (int((posted - origin) / DECAY_S) + 1)
    next_busy, step, token = posted, 0, f"Quiet{trial}"
    handle(anomaly(f"q{trial}", token, 0.99), ctx)
    while time.monotonic() - posted < 2 * DECAY_S:
        moment, replies = time.monotonic(), []
        if busy and moment >= next_busy:
            replies += handle(anomaly(f"b{trial}-{step}", f"Busy{step % 20}", 0.05), ctx)
            next_busy, step = next_busy + BUSY_EVERY_S, step + 1
        if moment >= next_flush:
            replies += handle(ping("flush", f"f{trial}-{moment}"), ctx)
            next_flush += FLUSH_S
        if moment >= next_decay:
            replies += handle(ping("risk-decay", f"d{trial}-{moment}"), ctx)
            next_decay += DECAY_S
        if any(r.type == ALERT and r.subject == token for r in replies):
            return (time.monotonic() - posted) * SCALE
        time.sleep(0.005)
    return float("nan")


def main() -> int:
    config = Settings.from_env()
    database_url, redis_url = bench_stores(config, "kades_bench_risk", 13)
    settings = dataclasses.replace(config, database_url=database_url, redis_url=redis_url,
                                   reorder_lateness_s=LATENESS_S, reorder_idle_s=2 * LATENESS_S)
    ctx, rng = Context("risk-scoring", settings=settings), random.Random(5)
    print("\nrisk-scoring: a quiet token's anomaly -> its alert decided (s, production clocks; "
          "bound: lateness 30 s + stream-flush 60 s = 90 s)")
    print(f"{'load':<44}{'min':>6}{'median':>8}{'max':>6}")
    for name, busy in (("quiet system (pings only)", False),
                       ("busy system (another token every 3 s)", True)):
        delays = [alert_delay_s(ctx, trial, busy=busy, rng=rng)
                  for trial in range(TRIALS)]
        print(f"{name:<44}{min(delays):>6.0f}{statistics.median(delays):>8.0f}{max(delays):>6.0f}")
    return 0


if __name__ == "__main__":
    with devservices.services_for(Settings.from_env()):  # stops what it had to start
        sys.exit(main())
