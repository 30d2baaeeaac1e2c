"""Helpers of the runtime tests: the tiny functions in ./functions, events to post to them,
and function processes started as the image starts them (with their JSON log lines)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).parent / "functions"


def tick_data(token="TokenA", time="2026-11-26T08:00:00Z", price=1.0, **extra):
    return {"ticks": [{"token": token, "time": time, "price": price, **extra}]}


def binary(event_id="e-1", data=None, event_type="ai.kades.market.tick.v1"):
    headers = {"ce-specversion": "1.0", "ce-id": event_id, "ce-source": "/tests",
               "ce-type": event_type, "content-type": "application/json"}
    return headers, json.dumps(data if data is not None else tick_data())


def structured(event_id="e-1", data=None, event_type="ai.kades.market.tick.v1"):
    document = {"specversion": "1.0", "id": event_id, "source": "/tests", "type": event_type,
                "datacontenttype": "application/json",
                "data": data if data is not None else tick_data()}
    return {"content-type": "application/cloudevents+json"}, json.dumps(document)


def log_lines(path: Path) -> list[dict]:
    """Every line of `path` parsed as JSON (fails naming the first line that is not)."""
    lines = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            pytest.fail(f"line {number} of {path.name} is not JSON: {text!r}")
    return lines


def wait_for_line(path: Path, found, *, timeout_s: float = 20, process=None) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            for line in log_lines(path):
                if found(line):
                    return line
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"no such line in {path.name}:\n{path.read_text() if path.exists() else ''}")


def start_function(name: str, log_path: Path, **env: str) -> subprocess.Popen:
    """Function `name` of tests/runtime/functions on a free port, logging into `log_path`."""
    command = [sys.executable, "-m", "kades.runtime.serve", "--target", "handle",
               "--source", str(FUNCTIONS / name / "main.py"), "--host", "127.0.0.1", "--port", "0"]
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(command, env=dict(os.environ, PYTHONUNBUFFERED="1", **env),
                                stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
