"""The W3C trace context a Broker delivers with an event (`traceparent`, `tracestate`) goes on
with the events the function sends to the sink, so a trace does not stop at the function;
a malformed one is not passed on."""
from __future__ import annotations

import json

import pytest
from functions_framework import create_app

from runtimetest import FUNCTIONS, binary, tick_data

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("sent,passed_on", [
    ({"traceparent": PARENT, "tracestate": "knative=1"},
     {"Traceparent": PARENT, "Tracestate": "knative=1"}),
    ({"traceparent": "not-a-trace", "tracestate": "knative=1"}, {}),
    ({}, {}),
], ids=["carried", "malformed", "none"])
def test_events_sent_on_carry_the_trace_context(kades_env, redis_conn, recording_sink, sent,
                                                 passed_on):
    client = create_app("handle", str(FUNCTIONS / "echo" / "main.py"), "http").test_client()
    data = {"ticks": [tick_data(token)["ticks"][0] for token in ("A", "B", "C")]}
    headers, body = binary(event_id=f"traced-{sorted(sent.items())}", data=data)
    response = client.post("/", headers={**headers, **sent}, data=body)
    assert response.status_code == 200, response.data[:300]  # A's reply; B and C to the sink
    assert len(recording_sink.headers) == 2
    for received in recording_sink.headers:
        assert {k: v for k, v in received.items() if k.lower() in ("traceparent", "tracestate")
                } == passed_on
    assert json.loads(response.data)["anomalies"][0]["token"] == "A"
