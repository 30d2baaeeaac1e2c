"""CloudEvents 0.3: Knative's ingress takes it (its Go SDK reads 0.3 and 1.0) in binary and
structured mode and passes it on unchanged; KADES functions keep requiring 1.0."""
import base64

import pytest

from brokertest import manifests, post_binary, post_structured, trigger, wait_for
from kades.errors import InvalidEventError
from kades.events.envelope import decode

V03 = {"specversion": "0.3", "id": "old-1", "source": "/legacy/sender", "type": "ai.kades.test.v1",
       "schemaurl": "https://example.test/schema.json", "partitionkey": "So1"}


def test_binary_03_is_accepted_and_delivered_unchanged(run_broker, subscribers):
    sub = subscribers()
    broker = run_broker(manifests(trigger("t", sub.url)))
    response = post_binary(broker.ingress_url(), V03, {"price": 2})
    assert response.status_code == 202, response.text
    wait_for(lambda: sub.count() == 1, what="the delivery")
    headers = sub.requests[0]["headers"]
    assert headers["ce-specversion"] == "0.3" and headers["ce-id"] == "old-1"
    assert headers["ce-schemaurl"] == "https://example.test/schema.json"
    assert sub.requests[0]["body"] == b'{"price":2}'


def test_structured_03_with_base64_data_is_delivered_as_its_bytes(run_broker, subscribers):
    sub = subscribers()
    broker = run_broker(manifests(trigger("t", sub.url)))
    document = {**V03, "datacontenttype": "application/octet-stream",
                "datacontentencoding": "base64", "data": base64.b64encode(b"\x00raw").decode()}
    assert post_structured(broker.ingress_url(), document).status_code == 202
    wait_for(lambda: sub.count() == 1, what="the delivery")
    request = sub.requests[0]
    assert request["headers"]["ce-specversion"] == "0.3"
    assert request["headers"]["content-type"] == "application/octet-stream"
    assert request["body"] == b"\x00raw"


def test_other_versions_are_still_refused(run_broker):
    broker = run_broker(manifests(trigger("t", "http://127.0.0.1:9/")), dispatch=False)
    response = post_binary(broker.ingress_url(), {**V03, "specversion": "0.2"})
    assert response.status_code == 400 and "specversion" in response.text


def test_functions_keep_requiring_1_0():
    headers = {f"ce-{k}": v for k, v in V03.items()}
    with pytest.raises(InvalidEventError) as refused:
        decode(headers, b"")  # what kades.runtime's endpoint calls
    assert [p.field for p in refused.value.problems] == ["specversion"]
