"""`make bench`: every figure beside a baseline measured in the same run, as a ratio.

The baseline is a no-op function on the same runtime and server (functions-framework with
gunicorn, as deployed), so the ratio shows what a function's own work costs on a shared,
noisy machine. Figures are printed, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from kades.dev import services as devservices
from kades.dev.services import free_port
from kades.settings import Settings
from kades.storage.migrate import migrate

ROOT = Path(__file__).resolve().parents[2]
NOOP = ROOT / "tests/runtime/functions/noop/main.py"
COLD_ROUNDS = 3  # cold starts per function (interleaved), of which the median is printed
ROUNDS = 3  # interleaved load rounds per function and batch size (the median is printed)
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def bench_stores(config: Settings, database: str, redis_db: int) -> tuple[str, str]:
    """(database URL, Redis URL) of a section's own database (created and migrated) and Redis
    database, on the servers of `config`."""
    devservices.ensure_database(config.database_url, database)
    database_url = config.database_url.rsplit("/", 1)[0] + f"/{database}"
    migrate(database_url)
    return database_url, config.redis_url.rsplit("/", 1)[0] + f"/{redis_db}"


class Server:
    """One function served in its own process as the image serves it (`python -m
    kades.runtime.serve`: functions-framework's gunicorn, the collector tuned once the module
    is imported), the no-op baselines as well."""

    def __init__(self, source: Path, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.source = source.parent.name
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kades.runtime.serve", "--target", "handle", "--source",
             str(source), "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def first_answer_s(self, request) -> float:
        """Seconds from process start until `request` (a callable) first succeeds."""
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            try:
                response = request(self.url)
            except httpx.TransportError:
                time.sleep(0.005)
                continue
            if response.status_code < 300:
                return time.perf_counter() - self.started
            if response.status_code < 500:  # our request is wrong: waiting will not help
                raise RuntimeError(f"{self.url} answered {response.status_code}: {response.text[:200]}")
            time.sleep(0.005)
        raise RuntimeError(f"{self.url} ({self.source}) did not answer within 60 s")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(10)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_worker(pid: int) -> int:
    """The gunicorn worker (the only child) of a functions-framework process."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


def start_sink() -> str:
    """A stand-in for the broker ingress that accepts every event (202), for emitted events."""
    import logging
    import threading

    from werkzeug.serving import make_server
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per accepted event
    from werkzeug.wrappers import Response
    server = make_server("127.0.0.1", 0, lambda environ, start: Response(status=202)(environ, start),
                         threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/kades/kades"


def tick_event(event_id: str, ticks: list[dict]) -> tuple[dict, bytes]:
    headers = {"ce-specversion": "1.0", "ce-id": event_id, "ce-source": "/bench",
               "ce-type": "ai.kades.market.tick.v1", "content-type": "application/json"}
    return headers, json.dumps({"ticks": ticks}).encode()


def make_ticks(step: int, count: int, tokens: int, prefix: str = "BenchToken") -> list[dict]:
    """`count` ticks spread over `tokens` tokens, all later than those of earlier steps."""
    ticks = []
    for i in range(count):
        n = step * count + i
        when = START + timedelta(seconds=5 * (n // tokens))
        ticks.append({"token": f"{prefix}{n % tokens:04d}", "price": 1.0 + 0.01 * ((n * 7919) % 13),
                      "volume": 100.0 + (n % 17), "time": when.isoformat().replace("+00:00", "Z")})
    return ticks


def first_requests(run: str, api_key: str) -> dict:
    """The first request each other function answers in the cold-start figures."""
    def post(event_type: str, data: dict):
        headers = {"ce-specversion": "1.0", "ce-id": f"{run}-cold-{event_type}", "ce-source": "/bench",
                   "ce-type": event_type, "content-type": "application/json"}
        return lambda url: httpx.post(url, headers=headers, content=json.dumps(data), timeout=10)

    tick = make_ticks(10**6, 1, 1)[0]
    anomaly = {"token": tick["token"], "time": tick["time"], "anomaly_type": "price_spike",
               "score": 0.9, "detector": "bench"}
    return {
        "market-aggregator": post("ai.kades.market.feed.v1", {"ticks": [tick]}),
        "risk-scoring": post("ai.kades.anomaly.detected.v1", {"anomalies": [anomaly]}),
        "dead-letter": post("ai.kades.market.tick.v1", {"ticks": [tick]}),
        # its first post loads the sentiment model (lazily, once per process)
        "sentiment-analysis": post("ai.kades.social.posts.v1", {"posts": [
            {"id": "1", "platform": "x", "author": "a", "text": "$BENCH to the moon",
             "time": tick["time"]}], "tracked": [{"token": tick["token"], "symbol": "BENCH"}]}),
        "api": lambda url: httpx.get(url + "/v1/anomalies?limit=1", timeout=10,
                                     headers={"X-API-Key": api_key}),
    }


def bench_api_key(database_url: str) -> str:
    import psycopg

    from kades.storage.apikeys import create_key
    with psycopg.connect(database_url) as conn:
        return create_key(conn, tier="enterprise", name="bench")[1]


RETRIES = 10  # a 503 (e.g. a token's state changed under the function 8 times) is retried


def load(url: str, *, requests: int, ticks_per_event: int, concurrency: int, run: str,
         first_step: int = 0) -> dict:
    """Post `requests` tick events with `concurrency` clients; throughput and latency (of
    the answer that succeeded, retries included). A 503 is posted again, as the Broker
    would; `retried` counts those. Each client posts the ticks of tokens of its own, in time
    order, from `first_step` on (a later load of the same batch size goes on where an
    earlier one ended, so its ticks are all new to the tokens; each batch size has tokens of
    its own), and its events are built before the clock starts. Tokens shared by the
    clients had each event's ticks arrive behind a later event's: up to 72 % of a 500-tick
    load's ticks were dropped as late, never analysed (docs/performance.md)."""
    latencies: list[float] = []
    retried: list[int] = []
    tokens = 50 if ticks_per_event == 1 else 10
    share = [len(range(index, requests, concurrency)) for index in range(concurrency)]
    events = [[tick_event(f"{run}-{index}-{step}", make_ticks(
                   step, ticks_per_event, tokens, f"Bench{ticks_per_event}x{index}-"))
               for step in range(first_step, first_step + share[index])]
              for index in range(concurrency)]

    def worker(worker_index: int) -> None:
        with httpx.Client(timeout=30) as client:
            for headers, body in events[worker_index]:
                began = time.perf_counter()
                for attempt in range(RETRIES + 1):
                    response = client.post(url, headers=headers, content=body)
                    if response.status_code != 503 or attempt == RETRIES:
                        break
                    retried.append(attempt)
                latencies.append(time.perf_counter() - began)
                if response.status_code >= 300:
                    raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"rps": requests / elapsed, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "retried": len(retried)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    config = Settings.from_env()
    database_url, redis_url = bench_stores(config, "kades_bench", 14)
    env = dict(os.environ, KADES_REDIS_URL=redis_url, KADES_DATABASE_URL=database_url,
               KADES_LOG_LEVEL="WARNING", KADES_SINK_URL=start_sink())
    import redis
    redis.Redis.from_url(redis_url).flushdb()
    run = str(int(time.time()))

    targets = [("no-op (baseline)", NOOP), ("temporal-analysis", ROOT / "functions/temporal-analysis/main.py")]
    batches = [(1, args.requests), (500, max(50, args.requests // 15))]  # (ticks per event, events)
    # Both servers up, their loads interleaved round after round: a moment of load from the
    # machine's other users touches both alike, and each round gives its own ratio.
    servers = {name: Server(source, dict(env, K_SERVICE=name)) for name, source in targets}
    figures: dict[tuple[str, int], list[dict]] = {}
    try:
        for name, server in servers.items():
            server.first_answer_s(lambda url: httpx.get(url + "/health", timeout=5))  # it is up
            load(server.url, requests=100, ticks_per_event=1, concurrency=args.concurrency,
                 run=f"{run}-warm-{name}", first_step=0)
        workers = {name: server_worker(server.process.pid) for name, server in servers.items()}
        for round_ in range(ROUNDS):
            for name, server in servers.items():
                for ticks, requests in batches:
                    first = (100 if ticks == 1 else 0) + round_ * requests  # after the warm-up's
                    cpu_before = cpu_s(workers[name])
                    figure = load(server.url, requests=requests, ticks_per_event=ticks,
                                  concurrency=args.concurrency,
                                  run=f"{run}-{round_}-{ticks}-{name}", first_step=first)
                    figure["cpu_ms"] = 1000 * (cpu_s(workers[name]) - cpu_before) / requests
                    figures.setdefault((name, ticks), []).append(figure)
        late = late_inputs(servers["temporal-analysis"].url)
    finally:
        for server in servers.values():
            server.stop()
    colds = cold_starts(env, run, bench_api_key(database_url))

    print(f"\nthroughput and latency ({args.concurrency} concurrent clients, {ROUNDS} interleaved "
          "rounds; medians, the ratios' range over the rounds in brackets; ratio = p50 / no-op p50 "
          "of the same round and batch size, and no-op req/s / req/s; the server's CPU a request "
          "from /proc, its gunicorn worker, and its ratio to the no-op's: the no-op's req/s on "
          "500 ticks is bound by the client, which shares the two cores)")
    print(f"{'what':<30}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'p50 ratio':>20}{'cost ratio':>20}"
          f"{'CPU ms':>8}{'CPU ratio':>20}")
    baseline = targets[0][0]
    for (name, ticks), rounds in figures.items():
        base = figures[(baseline, ticks)]
        p50s = [f["p50_ms"] / b["p50_ms"] for f, b in zip(rounds, base)]
        costs = [b["rps"] / f["rps"] for f, b in zip(rounds, base)]
        cpus = [f["cpu_ms"] / b["cpu_ms"] for f, b in zip(rounds, base)]
        label = f"{name}, {ticks} tick{'s' if ticks > 1 else ''}"
        print(f"{label:<30}{statistics.median(f['rps'] for f in rounds):>7.0f}"
              f"{statistics.median(f['p50_ms'] for f in rounds):>8.2f}"
              f"{statistics.median(f['p99_ms'] for f in rounds):>8.2f}"
              f"{_ratio(p50s):>20}{_ratio(costs):>20}"
              f"{statistics.median(f['cpu_ms'] for f in rounds):>8.2f}{_ratio(cpus):>20}")
    for (name, ticks), rounds in figures.items():
        retried = sum(f["retried"] for f in rounds)
        if retried:
            print(f"  {name}, {ticks} ticks: {retried} answers were 503, posted again as the "
                  "Broker would")
    sent = 100 + sum(ticks * requests * ROUNDS for ticks, requests in batches)
    print(f"  temporal-analysis dropped {late:.0f} of the {sent} ticks sent as late (each client "
          "posts its own tokens' ticks in time order: every tick is analysed)")
    cold_base = statistics.median(colds["no-op (baseline)"])
    print(f"\ncold start (process start to first answered request; median of {COLD_ROUNDS} rounds, "
          "each round every function once in turn; ratio of medians to the no-op's)")
    print(f"{'what':<34}{'median':>9}{'range ms':>16}{'ratio':>9}")
    for name, times in colds.items():
        spread = f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f}"
        print(f"{name:<34}{statistics.median(times) * 1000:>6.0f} ms{spread:>16}"
              f"{statistics.median(times) / cold_base:>8.2f}x")
    return 0


def late_inputs(url: str) -> float:
    """kades_late_inputs_total of the function served at `url` (its /metrics)."""
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith("kades_late_inputs_total{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _ratio(values: list[float]) -> str:
    """The median ratio and its range: '1.52x (1.41-1.60)'."""
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def cold_starts(env: dict, run: str, api_key: str) -> dict[str, list[float]]:
    """Seconds to each function's first answer, COLD_ROUNDS times, interleaved so that a
    moment of load on this shared machine touches every function alike (one sample each
    moved by ±20 % from run to run)."""
    times: dict[str, list[float]] = {}
    for round_ in range(COLD_ROUNDS):
        headers, body = tick_event(f"{run}-cold-{round_}", make_ticks(10**6, 1, 1))
        firsts = {name: (source, lambda url: httpx.post(url, headers=headers, content=body,
                                                         timeout=5)) for name, source in
                  [("no-op (baseline)", NOOP),
                   ("temporal-analysis", ROOT / "functions/temporal-analysis/main.py")]}
        firsts |= {name: (ROOT / f"functions/{name}/main.py", request) for name, request
                   in first_requests(f"{run}-{round_}", api_key).items()}
        for name, (source, request) in firsts.items():
            server = Server(source, dict(env, K_SERVICE=name))
            try:
                times.setdefault(name, []).append(server.first_answer_s(request))
            finally:
                server.stop()
    return times


if __name__ == "__main__":
    with devservices.services_for(Settings.from_env()):  # stops what it had to start
        sys.exit(main())
