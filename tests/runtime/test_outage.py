"""Redis stopped under a function: 503 (the Broker retries), nothing lost once it is back."""
from __future__ import annotations

import socket

from functions_framework import create_app

from runtimetest import FUNCTIONS, binary
from kades import clients, devservices
from kades.settings import settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_redis_stopped_gives_503_then_recovers(tmp_path, monkeypatch):
    port = free_port()
    devservices.ensure_redis(data_dir=tmp_path, port=port)
    monkeypatch.setenv("KADES_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    settings.cache_clear()
    client = create_app("handle", str(FUNCTIONS / "counter" / "main.py"), "http").test_client()
    try:
        headers, body = binary(event_id="before")
        assert client.post("/", headers=headers, data=body).status_code == 200

        devservices.stop_redis(tmp_path)
        headers, body = binary(event_id="during")
        response = client.post("/", headers=headers, data=body)
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "unavailable"
        assert client.get("/ready").status_code == 503
        assert client.get("/health").status_code == 200  # alive, just not ready

        devservices.ensure_redis(data_dir=tmp_path, port=port)
        assert client.get("/ready").status_code == 200
        assert client.post("/", headers=headers, data=body).status_code == 200  # the retry
        assert int(clients.redis_client().get("test:ticks")) == 2
    finally:
        devservices.stop_redis(tmp_path)
        clients.close_all()
        settings.cache_clear()
