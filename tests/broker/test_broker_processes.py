"""`kades broker` runs its ingress and its deliveries in two processes under a third that
starts and stops them (`--ingress-process`, the default), as Knative runs a Broker's ingress
and dispatcher apart: one /metrics over both, and neither outlives the other or the parent."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from brokertest import event_attrs, manifests, post_binary, trigger, wait_for
from kades.dev.services import free_port

pytestmark = pytest.mark.slow


def children(pid: int) -> dict[str, int]:
    """The broker processes started by `pid`, by role."""
    found = {}
    for line in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        argv = Path(f"/proc/{line}/cmdline").read_bytes().split(b"\0")
        if b"--role" in argv:
            found[argv[argv.index(b"--role") + 1].decode()] = int(line)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def start_broker(tmp_path, broker_redis_url, subscribers):
    """Start `kades broker` on a Trigger to a fresh subscriber: (process, port, subscriber)."""
    started = []

    def start(*options: str):
        sub = subscribers()
        (tmp_path / "eventing").mkdir(exist_ok=True)
        (tmp_path / "eventing" / "all.yaml").write_text(manifests(trigger("t", sub.url)))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "kades.cli", "broker", "--eventing-dir", str(tmp_path / "eventing"),
             "--port", str(port), "--redis-url", broker_redis_url, *options],
            env={**os.environ, "KADES_LOG_LEVEL": "WARNING"}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append(process)
        wait_for(lambda: healthy(port), timeout_s=30, what="the broker")
        return process, port, sub

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_two_processes_deliver_and_show_one_metrics_page(start_broker):
    process, port, sub = start_broker()
    roles = children(process.pid)
    assert set(roles) == {"ingress", "delivery"}
    for i in range(3):
        assert post_binary(f"http://127.0.0.1:{port}/kades/kades",
                           event_attrs(id_=f"m{i}")).status_code == 202
    wait_for(lambda: sub.count() == 3, what="3 deliveries")
    # the ingress process serves /metrics; the deliveries were counted in the other one
    def metrics_with_deliveries() -> str | None:
        page = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        return page if 'kades_broker_deliveries_total{result="done",trigger="t"} 3.0' in page else None

    page = wait_for(metrics_with_deliveries, what="the deliveries on /metrics")
    assert 'kades_broker_ingress_total{broker="/kades/kades",status="202"} 3.0' in page
    process.terminate()
    assert process.wait(20) == 0
    assert not any(alive(pid) for pid in roles.values())


def test_a_parent_killed_alone_takes_its_processes_with_it(start_broker):
    process, port, _ = start_broker()
    roles = children(process.pid)
    os.kill(process.pid, signal.SIGKILL)  # the parent only, not its group
    process.wait(10)
    wait_for(lambda: not any(alive(pid) for pid in roles.values()), timeout_s=10,
             what="both broker processes to end")
    assert not healthy(port)


def test_one_process_ending_stops_the_other(start_broker):
    process, port, _ = start_broker()
    roles = children(process.pid)
    os.kill(roles["delivery"], signal.SIGKILL)  # a crash of the deliveries
    assert process.wait(20) != 0  # said, so that whatever runs the broker starts it again
    assert not alive(roles["ingress"]) and not healthy(port)


def test_no_ingress_process_runs_it_all_in_one(start_broker):
    process, port, sub = start_broker("--no-ingress-process")
    assert children(process.pid) == {}
    assert post_binary(f"http://127.0.0.1:{port}/kades/kades", event_attrs(id_="one")).status_code == 202
    wait_for(lambda: sub.count() == 1, what="the delivery")
    page = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert "process_cpu_seconds_total" in page  # the process's own registry, not a shared one
