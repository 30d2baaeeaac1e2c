"""Metric labels stay bounded whatever senders choose, and no `_created` series is served:
the dead-letter sink takes events of any type, and each new type must not add a series."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

from functions_framework import create_app

from kades.events.catalogue import SCHEMAS
from kades.events.envelope import CloudEvent, to_binary
from kades.metrics import OTHER_TYPE, render

ROOT = Path(__file__).resolve().parents[1]


def test_types_chosen_by_senders_count_as_other_and_no_created_series(kades_env, redis_conn):
    client = create_app("handle", str(ROOT / "functions/dead-letter/main.py"), "http").test_client()
    chosen = [f"com.example.sender-chose-{uuid.uuid4().hex}" for _ in range(20)]
    for index, event_type in enumerate(chosen):
        event = CloudEvent({"specversion": "1.0", "id": f"label-{index}-{uuid.uuid4().hex}",
                            "source": "/outside", "type": event_type}, None, _has_data=False)
        headers, body = to_binary(event)
        assert client.post("/", headers=headers, data=body).status_code in (200, 202)
    text = render()[0].decode()
    seen = set(re.findall(r'kades_events_total\{function="dead-letter",outcome="\w+",type="([^"]*)"',
                          text))
    print(f"\n{len(chosen)} sender-chosen types; dead-letter type label values: {sorted(seen)}")
    assert OTHER_TYPE in seen and not any(t in text for t in chosen)
    assert seen <= {*SCHEMAS, OTHER_TYPE, "-"}  # "-": rejected before its type was known
    assert "_created" not in text
