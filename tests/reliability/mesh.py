"""The whole system as processes on free ports, with an accounting tap and fault controls.

A copy of `eventing/` gets one extra Trigger without a filter, `accounting-tap`, whose
subscriber is a small HTTP server in this process: it sees every event the broker accepted
(inputs, replies, events sent to the sink, PingSource events), so the accounting can ask,
for each of them, whether every Trigger it matched got it handled or dead-lettered.
Functions and the broker can be killed (SIGKILL, as a crash) and started again on their port,
as Knative would restart a crashed pod; a function can be killed while it handles an event
(`kill_mid_event`), leaving its claim behind for the retry to take over once the lease ends. `env` adds settings to every process (the output
accounting's fault points and broker chaos); `pingsources=False` leaves the PingSources out
(their wall-clock jobs would make a run's outputs depend on when it ran).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from kades import clients
from kades.events.envelope import CloudEvent, decode
from kades.dev.localrun import function_command, process_env, start_system, stop_system
from kades.dev.services import free_port
from kades.registry import FUNCTIONS, HTTP_FUNCTIONS, load as load_function
from kades.runtime import dedup
from kades.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NAMES = [*FUNCTIONS, *HTTP_FUNCTIONS]
TAP_TRIGGER = """apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: accounting-tap, namespace: kades}}
spec:
  broker: kades
  subscriber: {{uri: "{url}"}}
  delivery: {{retry: 20, backoffPolicy: exponential, backoffDelay: PT0.1S}}
"""


def env_name(name: str) -> str:
    return "KADES_PORT_" + name.upper().replace("-", "_")


class Tap:
    """Records every event delivered to it: (source, id) -> (event, first arrival); and
    `conflicts`, the (source, id) of events that came again with other content (an event is
    its source and id: every copy must be the same, or receivers that keep the first copy
    disagree on what happened)."""

    def __init__(self):
        self.events: dict[tuple[str, str], tuple[CloudEvent, float]] = {}
        self.conflicts: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        tap = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.monotonic()
                for event in decode({k.lower(): v for k, v in self.headers.items()}, body):
                    key = (event.source, event.id)
                    with tap.lock:
                        first, _ = tap.events.setdefault(key, (event, arrived))
                        if _content(first) != _content(event):
                            tap.conflicts.add(key)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self) -> dict[tuple[str, str], tuple[CloudEvent, float]]:
        with self.lock:
            return dict(self.events)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _content(event: CloudEvent) -> tuple:
    return (event.type, event.get("subject"), event.get("time"), event.data)


class Mesh:
    """Broker, every function and the api on free ports, against `redis_url` and `database_url`."""

    def __init__(self, state_dir: Path, *, redis_url: str, database_url: str,
                 env: dict[str, str] | None = None, pingsources: bool = True,
                 redis_cluster: bool = False):
        self.state_dir = Path(state_dir)
        self.env, self.pingsources = dict(env or {}), pingsources
        self.ports = {name: free_port() for name in NAMES}
        self.broker_port = free_port()
        self.config = Settings.from_env({
            "KADES_REDIS_URL": redis_url, "KADES_DATABASE_URL": database_url,
            "KADES_REDIS_CLUSTER": str(redis_cluster).lower(),
            "KADES_SINK_URL": f"http://127.0.0.1:{self.broker_port}/kades/kades"})
        self.tap = Tap()
        self.root = self._root()
        self.urls: dict[str, str] = {}
        self._saved_env: dict[str, str | None] = {}

    @property
    def ingress(self) -> str:
        return self.config.sink_url

    def _root(self) -> Path:
        """functions/ as is, eventing/ plus the accounting tap."""
        root = self.state_dir / "root"
        eventing = root / "eventing"
        eventing.mkdir(parents=True, exist_ok=True)
        if not (root / "functions").exists():
            (root / "functions").symlink_to(ROOT / "functions")
        for manifest in (ROOT / "eventing").glob("*.yaml"):
            if self.pingsources or "kind: PingSource" not in manifest.read_text():
                shutil.copy(manifest, eventing / manifest.name)
        (eventing / "900-accounting-tap-trigger.yaml").write_text(TAP_TRIGGER.format(url=self.tap.url))
        return root

    def start(self) -> dict[str, str]:
        variables = {**{env_name(name): str(port) for name, port in self.ports.items()},
                     **self.env}  # in os.environ while the mesh runs: restart() reads it too
        for variable, value in variables.items():
            self._saved_env[variable] = os.environ.get(variable)
            os.environ[variable] = value
        self.urls = start_system(self.root, self.config, broker_port=self.broker_port,
                                 state_dir=self.state_dir)
        return self.urls

    def stop(self) -> None:
        stop_system(self.state_dir)
        self.tap.close()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    # --- processes --------------------------------------------------------------------------

    def pid(self, name: str) -> int:
        return int((self.state_dir / "run" / f"{name}.pid").read_text())

    def kill(self, name: str) -> None:
        """SIGKILL the process group of `name` (a crash: nothing is cleaned up)."""
        pid = self.pid(name)
        os.killpg(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.waitpid(pid, os.WNOHANG)
                os.kill(pid, 0)
            except (ChildProcessError, ProcessLookupError):
                return
            time.sleep(0.05)

    def kill_mid_event(self, name: str, *, timeout_s: float = 60) -> list[str]:
        """SIGKILL function `name` with an event in hand, and return the claims it left
        behind: events it was handling when it died, which only their lease
        (KADES_CLAIM_LEASE_S) frees. When its in-flight gauge shows an event, the process is
        frozen (SIGSTOP) and its claims read: killed if it holds one, let go on (SIGCONT)
        and watched again if that event ended between the look and the freeze. Empty: none
        was caught in hand within `timeout_s` (the process is killed all the same). A
        function that takes no claim (Function.idempotent) is killed frozen in flight, and
        its events in hand are named "in flight" (the Broker's retry needs no lease)."""
        claim_free = load_function(name).idempotent
        in_flight = re.compile(rf'^kades_in_flight{{function="{re.escape(name)}"}} (\S+)$', re.M)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    text = client.get(self.urls[name] + "/metrics").text
                except httpx.HTTPError:
                    text = ""
                if held := sum(float(value) for value in in_flight.findall(text)):
                    os.killpg(self.pid(name), signal.SIGSTOP)
                    if claim_free:
                        self.kill(name)
                        return ["in flight"] * int(held)
                    if claims := self.claims_in_hand(name):
                        self.kill(name)
                        return claims
                    os.killpg(self.pid(name), signal.SIGCONT)
                time.sleep(0.01)
        self.kill(name)
        return self.claims_in_hand(name)

    def claims_in_hand(self, name: str) -> list[str]:
        """Keys of the claims of `name` that are held, not done (dedup marks in Redis)."""
        client = clients.new_redis(self.config)
        try:
            return [key.decode() for key in client.scan_iter(f"kades:dedup:{name}:*", count=1000)
                    if (value := client.get(key)) is not None and not dedup.is_done(value)]
        finally:
            client.close()

    def claims_done(self, keys: list[str]) -> bool:
        """Whether every one of these claims has become a done mark (its event handled)."""
        client = clients.new_redis(self.config)
        try:
            return all(dedup.is_done(client.get(key)) for key in keys)
        finally:
            client.close()

    def restart(self, name: str, *, timeout_s: float = 60) -> None:
        """Start `name` again on its port (what Knative does after a crash)."""
        env = process_env(self.config)
        if name == "broker":
            command = [sys.executable, "-m", "kades.cli", "broker", "--eventing-dir",
                       str(self.root / "eventing"), "--port", str(self.broker_port)]
        else:
            env["K_SERVICE"] = name
            command = function_command(self.root / "functions" / name / "main.py",
                                       self.ports[name])
        log = open(self.state_dir / "logs" / f"{name}.log", "ab")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        (self.state_dir / "run" / f"{name}.pid").write_text(str(process.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.urls[name] + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not come back within {timeout_s:.0f} s")

    def ready_statuses(self, *, timeout_s: float = 10) -> dict[str, int | None]:
        """GET /ready of every function at once: 503 while a dependency is away (None: no
        answer within `timeout_s`)."""
        def ask(name: str) -> int | None:
            try:
                return httpx.get(self.urls[name] + "/ready", timeout=timeout_s).status_code
            except httpx.HTTPError:
                return None
        with ThreadPoolExecutor(len(NAMES)) as pool:
            return dict(zip(NAMES, pool.map(ask, NAMES)))

    def resident_mb(self) -> dict[str, float]:
        """Resident memory of every process group (a function's server and its workers)."""
        groups = {name: self.pid(name) for name in [*NAMES, "broker"]}
        totals = dict.fromkeys(groups, 0.0)
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                pgrp = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
                status = (proc / "status").read_text()
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
            for name, pid in groups.items():
                if pgrp == pid:
                    rss_kb = next((int(line.split()[1]) for line in status.splitlines()
                                   if line.startswith("VmRSS:")), 0)
                    totals[name] += rss_kb / 1024
        return totals
