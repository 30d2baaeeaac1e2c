"""The ingress over real HTTP and real Redis: statuses, modes, TTL, arrival time, durability."""
import base64
import json

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from brokertest import event_attrs, manifests, post_binary, post_structured, problem, trigger
from kades.dev.services import free_port
from kades.broker import DevBroker, load_eventing
from kades.broker.ingress import admit
from kades.errors import InvalidEventError
from kades.events.envelope import CloudEvent


# A Trigger without filter: every accepted event is routed to its one lane.
EVERYTHING = trigger("everything", "http://127.0.0.1:9/")


@pytest.fixture
def ingress(run_broker) -> DevBroker:
    return run_broker(manifests(EVERYTHING), dispatch=False, max_event_bytes=2048)


def queued(client: redis.Redis) -> list[dict]:
    stream = "kades:{broker}:kades:kades:lane:everything/0"
    return [json.loads(fields[b"event"]) for _id, fields in client.xrange(stream)]


def test_binary_event_is_accepted_and_queued(ingress, broker_redis):
    response = post_binary(ingress.ingress_url(), event_attrs(), {"price": 1.5})
    assert response.status_code == 202 and response.content == b""
    [stored] = queued(broker_redis)
    # the data kept as the bytes that came (Knative's ingress does not read it)
    assert stored["id"] == "e1" and base64.b64decode(stored["data_base64"]) == b'{"price": 1.5}'
    assert stored["knativebrokerttl"] == "255"
    assert stored["knativearrivaltime"].endswith("Z") and "T" in stored["knativearrivaltime"]


def test_structured_event_of_any_type_is_accepted(ingress, broker_redis):
    document = {**event_attrs("com.example.anything", "s1"), "data": "text"}
    assert post_structured(ingress.ingress_url(), document).status_code == 202
    assert queued(broker_redis)[0]["type"] == "com.example.anything"


def test_a_batch_is_refused_as_knatives_ingress_refuses_it(ingress, broker_redis):
    for batch in ([event_attrs(id_=f"b{i}") for i in range(3)], [event_attrs(id_="one")], []):
        response = post_structured(ingress.ingress_url(), batch,
                                   content_type="application/cloudevents-batch+json")
        assert response.status_code == 400
        assert [d["field"] for d in response.json()["error"]["details"]] == ["content-type"]
    assert queued(broker_redis) == []


def test_invalid_event_is_400_naming_every_problem(ingress, broker_redis):
    response = post_binary(ingress.ingress_url(),
                           {"specversion": "0.2", "id": "", "type": "t", "Bad-Name": "x"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_event" and error["message"]
    fields = {d["field"] for d in error["details"]}
    assert {"specversion", "id", "source", "bad-name"} <= fields
    assert queued(broker_redis) == []


def test_attributes_in_headers_with_underscores_are_not_read(ingress, broker_redis):
    """sdk-go reads only Ce-Specversion and the like; WSGI would make ce_id one with ce-id."""
    headers = {"ce_specversion": "1.0", "ce_id": "u1", "ce_source": "/s", "ce_type": "t",
               "content-type": "application/json"}
    response = httpx.post(ingress.ingress_url(), content=b"{}", headers=headers)
    assert response.status_code == 400 and queued(broker_redis) == []


def test_not_a_cloudevent_is_400(ingress):
    response = httpx.post(ingress.ingress_url(), content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 400


def test_unknown_broker_is_404(ingress):
    assert post_binary(ingress.base_url + "/kades/other", event_attrs()).status_code == 404
    assert post_binary(ingress.base_url + "/", event_attrs()).status_code == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(ingress, method):
    response = httpx.request(method, ingress.ingress_url())
    assert response.status_code == 405
    assert response.headers["allow"] == "POST, OPTIONS"


def test_options_is_the_webhook_handshake_as_knatives_ingress_answers_it(ingress):
    response = httpx.request("OPTIONS", ingress.ingress_url())
    assert response.status_code == 200 and response.headers["webhook-allowed-origin"] == "*"
    assert response.headers["allow"] == "POST, OPTIONS"


@pytest.mark.parametrize("suffix, status", [("", 202), ("/", 202), ("//", 400), ("/x", 400),
                                            ("?a=1", 404)])
def test_the_request_uri_is_namespace_and_broker_as_knative_splits_it(ingress, suffix, status):
    """Knative's ingress splits the request URI, query string included, trimmed of one
    trailing slash, into /<namespace>/<broker>: anything else is a 400, an unknown broker
    a 404 (checked after the event)."""
    assert post_binary(ingress.ingress_url() + suffix, event_attrs()).status_code == status
    assert post_binary(ingress.base_url + "/kades", event_attrs()).status_code == 400


def test_an_unknown_broker_is_looked_up_after_the_event_is_checked(ingress):
    bad = post_binary(ingress.base_url + "/kades/other", event_attrs(specversion="9"))
    assert bad.status_code == 400


def test_too_large_is_413_before_parsing(ingress, broker_redis):
    response = httpx.post(ingress.ingress_url(), content=b"x" * 3000,
                          headers={"content-type": "application/cloudevents+json"})
    assert response.status_code == 413
    assert queued(broker_redis) == []


@pytest.mark.parametrize("ttl, status, stored", [("5", 202, "4"), ("2", 202, "1"),
                                                 ("1", 400, None), ("0", 400, None),
                                                 ("-3", 400, None),
                                                 # Knative's TTLDefaulter sets one it cannot read
                                                 ("many", 202, "255"), ("2.5", 202, "255")])
def test_ttl_counts_down_and_ends_at_zero(ingress, broker_redis, ttl, status, stored):
    response = post_binary(ingress.ingress_url(), event_attrs(knativebrokerttl=ttl))
    assert response.status_code == status
    if stored:
        assert queued(broker_redis)[0]["knativebrokerttl"] == stored
    else:
        assert response.json()["error"]["details"][0]["field"] == "knativebrokerttl"


def test_arrival_time_is_always_set_by_the_broker(ingress, broker_redis):
    post_binary(ingress.ingress_url(), event_attrs(knativearrivaltime="2000-01-01T00:00:00Z"))
    assert queued(broker_redis)[0]["knativearrivaltime"] != "2000-01-01T00:00:00Z"


def test_admit_is_pure():
    event = CloudEvent(event_attrs(knativebrokerttl="3"), {"a": 1})
    admitted = admit(event, arrival_time="2024-01-01T00:00:00Z")
    assert admitted.attributes["knativebrokerttl"] == "2"
    assert event.attributes["knativebrokerttl"] == "3"
    with pytest.raises(InvalidEventError):
        admit(CloudEvent(event_attrs(knativebrokerttl="1")))


def test_probes(ingress):
    assert httpx.get(ingress.base_url + "/health").status_code == 200
    ready = httpx.get(ingress.base_url + "/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "ok"
    post_binary(ingress.ingress_url(), event_attrs())
    metrics = httpx.get(ingress.base_url + "/metrics").text
    assert 'kades_broker_ingress_total{broker="/kades/kades",status="202"}' in metrics


def test_redis_away_is_503(tmp_path):
    (tmp_path / "b.yaml").write_text(manifests(EVERYTHING))
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5,
                       retry=Retry(NoBackoff(), 0))
    broker = DevBroker(load_eventing(tmp_path), dead, dispatch=False).start()
    try:
        response = post_binary(broker.ingress_url(), event_attrs())
        assert problem(response, 503, "unavailable")[0]["field"] == "redis"
        assert response.headers["retry-after"] == "1"
        assert httpx.get(broker.base_url + "/ready").status_code == 503
        assert httpx.get(broker.base_url + "/health").status_code == 200
    finally:
        broker.stop()
