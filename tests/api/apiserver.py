"""The api function served as deployed: functions-framework with gunicorn, in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from kades.dev.services import free_port

API_MAIN = Path(__file__).resolve().parents[2] / "functions/api/main.py"


class ApiServer:
    def __init__(self, settings, *, threads: int = 32, extra_env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/v1/ws"
        env = {**os.environ, "KADES_REDIS_URL": settings.redis_url,
               "KADES_REDIS_CLUSTER": str(settings.redis_cluster),
               "KADES_DATABASE_URL": settings.database_url, "THREADS": str(threads),
               **(extra_env or {})}  # extra_env may replace any of these
        log = open(os.environ.get("KADES_TEST_API_LOG", os.devnull), "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--target", "handle", "--source",
             str(API_MAIN), "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the api did not start within 30 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
