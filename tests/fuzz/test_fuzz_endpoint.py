"""The runtime endpoint (functions-framework's test client) under random requests: never a
5xx, every rejection a 4xx with an RFC 9457 problem body; bodies over the limit are refused
before anything parses them."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from functions_framework import create_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzstrategies import deep_json, request_bodies

ACCEPT_ALL = Path(__file__).parent / "functions" / "accept_all" / "main.py"
LIMIT = 4096
FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def client(kades_env, redis_conn, monkeypatch):
    monkeypatch.setenv("KADES_MAX_EVENT_BYTES", str(LIMIT))
    monkeypatch.setenv("KADES_SINK_URL", "http://127.0.0.1:9/nowhere")  # replies stay in HTTP
    return create_app("handle", str(ACCEPT_ALL), "http").test_client()  # reads them (a fresh app)


def assert_well_answered(response) -> None:
    assert response.status_code < 500, response.get_data()
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json"
        problem = json.loads(response.get_data())
        assert problem["status"] == response.status_code and problem["type"] and problem["title"]
        error = problem["error"]
        assert error["code"] and error["message"] and error["details"] == problem["errors"]
    else:
        assert response.status_code in (200, 202, 308)  # 308: werkzeug merges "//"


@FUZZ
@given(request=request_bodies())
def test_random_events_never_give_a_server_error(client, request):
    headers, body = request
    assert_well_answered(client.post("/", headers=headers, data=body))


@FUZZ
@given(method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "POST"]),
       path=st.sampled_from(["/", "/x", "/health/", "/ready/x", "/metrics", "//", "/%ff"]))
def test_random_methods_and_paths(client, method, path):
    assert_well_answered(client.open(path, method=method, data=b"{}"))


def test_oversized_body_is_refused_before_parsing(client, monkeypatch):
    import kades.runtime.endpoint as endpoint

    def must_not_parse(*args):
        raise AssertionError("an oversized body was parsed")
    monkeypatch.setattr(endpoint, "decode", must_not_parse)
    headers = {"content-type": "application/cloudevents+json"}
    response = client.post("/", headers=headers, data=b" " * (LIMIT + 1))
    assert response.status_code == 413
    assert json.loads(response.get_data())["error"]["code"] == "payload_too_large"


def test_chunked_oversized_body_is_refused_before_parsing(client, monkeypatch):
    import kades.runtime.endpoint as endpoint

    def must_not_parse(*args):
        raise AssertionError("an oversized body was parsed")
    monkeypatch.setattr(endpoint, "decode", must_not_parse)
    body = b" " * (LIMIT * 4)
    # as gunicorn serves a chunked body: no Content-Length, the stream ends where it ends
    response = client.post("/", input_stream=io.BytesIO(body),
                           headers={"content-type": "application/cloudevents+json",
                                    "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413


def test_very_deep_json_is_a_400(client, monkeypatch):
    monkeypatch.setenv("KADES_MAX_EVENT_BYTES", str(10**6))
    deep = create_app("handle", str(ACCEPT_ALL), "http").test_client()
    response = deep.post("/", headers={"content-type": "application/cloudevents+json"},
                         data=deep_json(100_000, kind="object"))
    assert response.status_code == 400
