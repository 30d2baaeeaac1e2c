"""Every deployed function through functions-framework's own test client, as the Broker
calls it: a valid example of each type it consumes in binary and in structured mode is
answered 200 with a catalogue event or 202 with nothing; a malformed event gets 400."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from functions_framework import create_app

from kades.events.catalogue import EXAMPLE_MINT, SCHEMAS, example, new_event
from kades.events.envelope import to_binary, to_structured
from kades.registry import FUNCTIONS, load
from kades.runtime.function import ANY_TYPE

ROOT = Path(__file__).resolve().parents[2]

CASES = [(name, event_type) for name in sorted(FUNCTIONS)
         for event_type in (load(name).consumes or ["ai.kades.market.tick.v1"])]


@pytest.fixture
def client_of(kades_env, redis_conn, db_conn, recording_sink):

    def build(name: str):
        return create_app("handle", str(ROOT / "functions" / name / "main.py"), "http").test_client()
    return build


@pytest.mark.parametrize("name,event_type", CASES)
@pytest.mark.parametrize("encode", [to_binary, to_structured], ids=["binary", "structured"])
def test_a_valid_event_is_answered_with_a_reply_or_nothing(client_of, name, event_type, encode):
    event = new_event(event_type, "/tests/http", example(event_type),
                      subject=EXAMPLE_MINT, event_id=f"{name}-{encode.__name__}")
    headers, body = encode(event)
    response = client_of(name).post("/", headers=headers, data=body)
    assert response.status_code in (200, 202), response.data[:300]
    if response.status_code == 202:
        assert response.data == b""
    else:
        assert response.headers["ce-type"] in SCHEMAS and response.headers["ce-id"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_malformed_event_is_400_with_every_problem(client_of, name):
    headers = {"ce-specversion": "0.3", "ce-id": "", "ce-source": "/tests",
               "ce-type": "ai.kades.market.tick.v1", "content-type": "application/json"}
    response = client_of(name).post("/", headers=headers, data=b"{not json")
    assert response.status_code == 400
    fields = {d["field"] for d in json.loads(response.data)["error"]["details"]}
    assert {"specversion", "id", "data"} <= fields


def test_every_function_consumes_what_its_triggers_send():
    assert all(load(name).consumes == ANY_TYPE or load(name).consumes for name in FUNCTIONS)
