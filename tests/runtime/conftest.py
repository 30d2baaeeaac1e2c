"""Fixtures for runtime tests: apps built from the tiny functions in ./functions, an event sink."""
from __future__ import annotations

import threading

import pytest
from functions_framework import create_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kades.events.envelope import decode
from runtimetest import FUNCTIONS



@pytest.fixture
def event_sink(monkeypatch):
    """A real HTTP server that records every CloudEvent posted to it (as the broker ingress would)."""
    received = []

    @Request.application
    def app(request):
        received.extend(decode(request.headers, request.get_data()))
        return Response(status=202)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("KADES_SINK_URL", f"http://127.0.0.1:{server.server_port}/kades/kades")
    yield received
    server.shutdown()


@pytest.fixture
def client_of(kades_env, redis_conn, event_sink):
    """`client_of("counter")`: a functions-framework test client of tests/runtime/functions/counter
    (a fresh app: its Context reads the settings the test set)."""

    def build(name: str):
        return create_app("handle", str(FUNCTIONS / name / "main.py"), "http").test_client()
    return build
