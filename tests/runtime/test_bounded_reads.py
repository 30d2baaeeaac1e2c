"""A body left unread by an early answer (413, 401) is not read into memory afterwards:
functions-framework's after_request hook read it whole (kades.runtime.serve,
bound_request_reads, which every function process runs with)."""
from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

import pytest
from functions_framework import create_app
from werkzeug.test import EnvironBuilder

from kades.runtime.serve import bound_request_reads

ROOT = Path(__file__).resolve().parents[2]
HUGE = 40 << 20


def served_app(name: str):
    """The app of functions/<name> as `python -m kades.runtime.serve` makes it."""
    app = create_app("handle", str(ROOT / "functions" / name / "main.py"), "http")
    bound_request_reads(app)
    return app


def post_huge(app, path: str = "/", headers: dict | None = None) -> tuple[int, int]:
    """POST a HUGE body with its Content-Length: (status, the most memory the answer took,
    in bytes)."""
    body = io.BytesIO(bytes(HUGE))
    environ = EnvironBuilder(path=path, method="POST", input_stream=body,
                             content_length=HUGE, headers=headers or {}).get_environ()
    answered = []
    tracemalloc.start()
    try:
        for _ in app(environ, lambda status, headers, exc_info=None: answered.append(status)):
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return int(answered[0].split()[0]), peak


@pytest.mark.parametrize("name", ["temporal-analysis", "dead-letter"])
def test_a_function_reads_no_more_of_a_huge_body_than_it_must(kades_env, monkeypatch, name):
    """Before: 413, and then all 40 MiB read into memory. Now what is left is read on and
    dropped (the dead-letter sink first reads on to keep what it can, up to its ceiling)."""
    monkeypatch.setenv("KADES_MAX_EVENT_BYTES", "1000")
    status, peak = post_huge(served_app(name), headers={
        "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t",
        "ce-type": "ai.kades.market.tick.v1", "Content-Type": "application/json"})
    assert status == 413
    assert peak < 4 << 20


def test_the_api_reads_no_more_of_a_huge_body_than_it_must(kades_env):
    status, peak = post_huge(served_app("api"), "/v1/token/track")  # no API key: 401
    assert status == 401
    assert peak < 4 << 20


def test_a_body_read_whole_by_the_function_is_answered_as_before(kades_env, redis_conn,
                                                                 recording_sink):
    client = served_app("temporal-analysis").test_client()
    answer = client.post("/", data=b"{not json", headers={
        "ce-specversion": "1.0", "ce-id": "2", "ce-source": "/t",
        "ce-type": "ai.kades.market.tick.v1", "Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.get_json()["errors"]


def test_a_body_of_a_million_empty_ticks_is_named_in_a_hundred_problems_and_little_memory(
        kades_env):
    """A 16 MiB body of 5.6 million `{}` ticks took 13 GB in temporal-analysis: 17 million
    problems, each a jsonschema error, and the depth check's stack of every object. Now its
    problems stop at MAX_PROBLEMS (its batch over maxItems named first) and the depth check
    holds one iterator a level: what the parsed body costs, about 64 bytes a `{}`."""
    from kades.events.catalogue import MAX_PROBLEMS
    from kades.manifests import PARSED_BYTES_PER_BYTE
    items = 1 << 20
    body = b'{"ticks":[' + b"{}," * (items - 1) + b"{}]}"
    environ = EnvironBuilder(method="POST", input_stream=io.BytesIO(body),
                             content_length=len(body), headers={
                                 "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t",
                                 "ce-type": "ai.kades.market.tick.v1",
                                 "Content-Type": "application/json"}).get_environ()
    answered, chunks = [], []
    tracemalloc.start()
    try:
        for chunk in served_app("temporal-analysis")(
                environ, lambda status, headers, exc_info=None: answered.append(status)):
            chunks.append(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    errors = json.loads(b"".join(chunks))["errors"]
    print(f"\n{items:,} empty ticks: {len(errors)} problems named, peak {peak / 2**20:.0f} MiB "
          f"({peak / len(body):.1f} times the body)")
    assert int(answered[0].split()[0]) == 400
    assert errors[0]["field"] == "data.ticks" and "too long" in errors[0]["message"]
    assert len(errors) == MAX_PROBLEMS + 1 and "more problems" in errors[-1]["message"]
    # what kades.manifests sizes each Service's KADES_MAX_EVENT_BYTES by (the depth check
    # before: 64 bytes a tick more, 53 times the body)
    assert peak < PARSED_BYTES_PER_BYTE * len(body)
