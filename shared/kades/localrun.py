"""`kades up` / `kades down`: the whole system on one machine, the way `make run` shows it.

Starts real Redis and PostgreSQL (kades.devservices), migrates, starts every function with
functions-framework on its own port and the development broker, feeds the seeded demo
stream and prints the anomalies the system found beside the ones the simulator injected.
Everything keeps running in the background until `kades down` (`make stop`).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from kades import devservices
from kades.events.envelope import to_binary
from kades.registry import FUNCTIONS, HTTP_FUNCTIONS
from kades.settings import DEFAULT_BROKER_PORT, Settings, function_port


def _dirs(state_dir: Path) -> tuple[Path, Path]:
    """Where pid files and logs of the processes go."""
    run, logs = state_dir / "run", state_dir / "logs"
    run.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    return run, logs


def _spawn(name: str, command: list[str], env: dict, run: Path, logs: Path) -> None:
    log_file = open(logs / f"{name}.log", "ab")
    process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    (run / f"{name}.pid").write_text(str(process.pid))


def _wait_healthy(urls: dict[str, str], timeout_s: float, logs: Path) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = dict(urls)
    while waiting and time.monotonic() < deadline:
        for name, url in list(waiting.items()):
            try:
                if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                    del waiting[name]
            except httpx.HTTPError:
                pass  # not listening yet: keep waiting until the deadline
        time.sleep(0.2)
    if waiting:
        tails = "\n".join(f"--- {n}.log ---\n{_tail(logs / f'{n}.log')}" for n in waiting)
        raise SystemExit(f"not healthy after {timeout_s:.0f}s: {', '.join(waiting)}\n{tails}")


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def start_system(root: Path, config: Settings, *, broker_port: int,
                 state_dir: Path) -> dict[str, str]:
    """Start the broker and every function of `root`; return their base URLs by name."""
    run, logs = _dirs(state_dir)
    env = dict(os.environ, KADES_REDIS_URL=config.redis_url, KADES_DATABASE_URL=config.database_url,
               K_SINK=config.sink_url, PYTHONUNBUFFERED="1")
    urls = {}
    for name in [*FUNCTIONS, *HTTP_FUNCTIONS]:
        source = root / "functions" / name / "main.py"
        port = function_port(name)
        _spawn(name, [sys.executable, "-m", "functions_framework", "--target", "handle",
                      "--source", str(source), "--host", "127.0.0.1", "--port", str(port)],
               dict(env, K_SERVICE=name), run, logs)
        urls[name] = f"http://127.0.0.1:{port}"
    _spawn("broker", [sys.executable, "-m", "kades.cli", "broker", "--eventing-dir",
                      str(root / "eventing"), "--port", str(broker_port)], env, run, logs)
    urls["broker"] = f"http://127.0.0.1:{broker_port}"
    _wait_healthy(urls, 60, logs)
    return urls


def _gone(pid: int) -> bool:
    """Whether the process has exited (reaping it when it is our own child)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == pid
    except ChildProcessError:  # not our child: `kades up` has exited and init reaps it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def stop_system(state_dir: Path) -> list[str]:
    """Stop every process `start_system` started (by pid file); return their names."""
    run, _ = _dirs(state_dir)
    stopped = []
    for pid_file in sorted(run.glob("*.pid")):
        pid = int(pid_file.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                if _gone(pid):
                    break
                time.sleep(0.05)
            else:
                os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone: that is what we wanted
        pid_file.unlink()
        stopped.append(pid_file.stem)
    return stopped


def feed_demo(broker_url: str, *, seed: int, minutes: int, rate_per_s: float):
    """Post the seeded demo stream, ending now, to the broker; return the simulation."""
    from kades.simulate import feed_events, simulate_market

    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=minutes)
    simulation = simulate_market(seed=seed, minutes=minutes, start=start)
    with httpx.Client(timeout=10.0) as client:
        for event in feed_events(simulation, source="/kades/demo"):
            headers, body = to_binary(event)
            response = client.post(broker_url, headers=headers, content=body)
            response.raise_for_status()
            time.sleep(1.0 / rate_per_s)
    return simulation


def main_up(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades up", description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=".", help="the repository (holds functions/ and eventing/)")
    parser.add_argument("--no-demo", action="store_true", help="start everything, feed nothing")
    parser.add_argument("--seed", type=int, default=None,
                        help="demo seed (default: a new one each run, so each run finds anew)")
    parser.add_argument("--minutes", type=int, default=30, help="simulated market minutes to feed")
    parser.add_argument("--rate", type=float, default=40.0, help="demo events per second")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    config = Settings.from_env()
    broker_port = int(os.environ.get("KADES_BROKER_PORT", DEFAULT_BROKER_PORT))
    local = root / ".local"
    stop_system(local)
    devservices.main_services(["up", "--data-dir", str(local)], config=config)
    from kades.storage.migrate import migrate
    applied = migrate(config.database_url)
    print(f"database migrated ({len(applied)} new migrations)")
    api_key = create_demo_key(config)
    urls = start_system(root, config, broker_port=broker_port, state_dir=local)
    ingress = config.sink_url
    print("\nKADES is running:")
    print(f"  broker ingress   {ingress}")
    print(f"  api              {urls['api']}/v1   (anomalies: {urls['api']}/v1/anomalies)")
    print(f"  dashboard        {urls['api']}/   (paste the API key there)")
    print(f"  demo API key     {api_key}   (send it as X-API-Key; `kades apikey` makes more)")
    for name in FUNCTIONS:
        print(f"  {name:<16} {urls[name]}   (/health /ready /metrics)")
    print(f"  redis            {config.redis_url}\n  postgres         {config.database_url}")
    print(f"  logs             {local / 'logs'}   stop with: make stop")
    if not args.no_demo:
        seed = args.seed if args.seed is not None else int(time.time()) % 100_000
        return show_demo(urls["api"], ingress, seed=seed, minutes=args.minutes, rate=args.rate,
                         api_key=api_key)
    return 0


def create_demo_key(config: Settings) -> str:
    """A new enterprise-tier API key for this demo run (the API refuses calls without one)."""
    import psycopg

    from kades.storage.apikeys import create_key
    with psycopg.connect(config.database_url) as conn:
        return create_key(conn, tier="enterprise", name="kades up demo")[1]


def fetch_anomalies(api_url: str, api_key: str | None = None) -> list[dict]:
    """Every stored anomaly, following the API's pages."""
    rows, params = [], {"limit": 1000}
    headers = {"X-API-Key": api_key} if api_key else {}
    while True:
        page = httpx.get(f"{api_url}/v1/anomalies", params=params, headers=headers,
                         timeout=5).json()
        rows += page["anomalies"]
        if not page["next_cursor"]:
            return rows
        params["cursor"] = page["next_cursor"]


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def in_window(anomaly: dict, label: dict, *, grace_s: float = 60) -> bool:
    """Whether `anomaly` is a detection of the injected `label` (same token, in its window)."""
    return (anomaly["token"] == label["token"]
            and _seconds(label["start"]) <= _seconds(anomaly["time"]) <= _seconds(label["end"]) + grace_s)


def match_labels(labels: list[dict], anomalies: list[dict]) -> list[dict | None]:
    """For each injected anomaly, its earliest detection (None when missed)."""
    found = []
    for label in labels:
        hits = [a for a in anomalies if in_window(a, label)]
        found.append(min(hits, key=lambda a: _seconds(a["time"])) if hits else None)
    return found


def show_demo(api_url: str, ingress: str, *, seed: int, minutes: int, rate: float,
              api_key: str | None = None) -> int:
    started = time.monotonic()
    print(f"\nfeeding the demo market stream (seed {seed}, {minutes} simulated minutes) to {ingress} ...")
    simulation = feed_demo(ingress, seed=seed, minutes=minutes, rate_per_s=rate)
    labels, tokens = simulation.labels, {tick["token"] for tick in simulation.ticks}
    print(f"fed in {time.monotonic() - started:.1f}s; {len(labels)} anomalies were injected. "
          "Waiting for them to come out of the API...")
    deadline = time.monotonic() + 60
    while True:
        anomalies = [a for a in fetch_anomalies(api_url, api_key) if a["token"] in tokens]
        found = match_labels(labels, anomalies)
        if all(found) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    print(f"\n{'injected':<44}detected (GET {api_url}/v1/anomalies)")
    for label, hit in zip(labels, found):
        what = f"{label['start'][11:19]}  {label['token'][:10]}…  {label['kind']}"
        seen = (f"{hit['time'][11:19]}  {hit['anomaly_type']:<13} score {hit['score']:.2f}"
                if hit else "not detected")
        print(f"  {what:<42}{seen}")
    detected = sum(1 for hit in found if hit)
    inside = sum(1 for a in anomalies if any(in_window(a, label) for label in labels))
    print(f"\n{detected}/{len(labels)} injected anomalies detected; {inside}/{len(anomalies)} stored "
          f"anomalies fall inside an injected window (the rest are follow-ups or false alarms); "
          f"{time.monotonic() - started:.1f}s from the first event.")
    print(f"Replay this demo with `.venv/bin/kades up --seed {seed}`. "
          "Everything keeps running; `make stop` stops it.")
    return 0 if detected else 1


def main_down(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades down")
    parser.add_argument("--root", default=".")
    root = Path(parser.parse_args(argv).root).resolve()
    print("stopped:", ", ".join(stop_system(root / ".local")) or "nothing")
    devservices.stop_all(root / ".local")
    return 0
