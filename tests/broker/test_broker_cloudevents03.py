"""CloudEvents 0.3: Knative's ingress takes it (its Go SDK reads 0.3 and 1.0) in binary and
structured mode and passes it on unchanged; KADES functions keep requiring 1.0."""
import base64
import json

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
    assert sub.requests[0]["body"] == b'{"price": 2}'  # its bytes as they came, not re-encoded


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


def test_data_is_passed_on_unread_as_knatives_ingress_does(run_broker, subscribers):
    """A binary event whose body is no JSON under a JSON Content-Type: Knative's ingress does
    not read data and takes it (202), and the function it reaches answers 400. This broker
    parsed it, refused it with 400 and so was kinder to the function than the real path."""
    import httpx
    sub = subscribers()
    broker = run_broker(manifests(trigger("t", sub.url)))
    headers = {f"ce-{k}": v for k, v in {**V03, "specversion": "1.0"}.items() if k != "schemaurl"}
    response = httpx.post(broker.ingress_url(), content=b"{not json",
                          headers={**headers, "content-type": "application/json"}, timeout=10)
    assert response.status_code == 202, response.text
    wait_for(lambda: sub.count() == 1, what="the delivery")
    assert sub.requests[0]["body"] == b"{not json"
    assert sub.requests[0]["headers"]["content-type"] == "application/json"


def test_json_data_kept_as_bytes_is_embedded_as_it_came_in_structured_mode():
    from kades.events.envelope import CloudEvent, from_structured, to_structured
    attrs = {"specversion": "1.0", "id": "i", "source": "/s", "type": "t",
             "datacontenttype": "application/json"}
    _, body = to_structured(CloudEvent(attrs, b'{"price": 2.50}'))
    assert body.endswith(b',"data":{"price": 2.50}}')
    assert from_structured(json.loads(body)).data == {"price": 2.5}
    _, body = to_structured(CloudEvent(attrs, b"{not json"))  # no JSON: its bytes, base64
    assert base64.b64decode(json.loads(body)["data_base64"]) == b"{not json"
