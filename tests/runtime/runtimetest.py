"""Helpers of the runtime tests: the tiny functions in ./functions and events to post to them."""
from __future__ import annotations

import json
from pathlib import Path

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
