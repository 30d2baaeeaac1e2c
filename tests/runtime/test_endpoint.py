"""The function runtime through functions-framework's own test client, on real Redis."""
from __future__ import annotations

import json
import threading

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response
from prometheus_client import REGISTRY

from kades.events.envelope import decode
from kades.keys import dedup_key, sent_key
from kades.runtime.state import OUTBOX_TTL_S
from kades.settings import Settings
from runtimetest import binary, structured, tick_data

MODES = {"binary": binary, "structured": structured}


@pytest.mark.parametrize("mode", MODES)
def test_valid_event_gets_its_reply_in_binary_mode(client_of, redis_conn, mode):
    client = client_of("counter")
    headers, body = MODES[mode]()
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 200
    assert response.headers["ce-type"] == "ai.kades.anomaly.detected.v1"
    assert response.headers["ce-source"] == "/kades/counter"
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.data)["anomalies"][0]["token"] == "TokenA"
    assert int(redis_conn.get("test:ticks")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_function_without_reply_answers_202_with_empty_body(client_of, mode):
    headers, body = MODES[mode]()
    response = client_of("noop").post("/", headers=headers, data=body)
    assert (response.status_code, response.data) == (202, b"")


def test_duplicate_is_processed_once_and_gets_the_same_reply(client_of, redis_conn):
    client = client_of("counter")
    # The counter is per process: other tests may have counted duplicates of "counter" too.
    before = REGISTRY.get_sample_value("kades_duplicates_total", {"function": "counter"}) or 0
    first = client.post("/", headers=binary()[0], data=binary()[1])
    # the same (source, id) again, even in the other mode
    second = client.post("/", headers=structured()[0], data=structured()[1])
    assert first.status_code == second.status_code == 200
    assert first.headers["ce-id"] == second.headers["ce-id"]
    assert first.data == second.data
    assert int(redis_conn.get("test:ticks")) == 1
    metrics = client.get("/metrics").data.decode()
    assert f'kades_duplicates_total{{function="counter"}} {before + 1}' in metrics


def test_a_cloudevents_0_3_event_the_broker_passes_on_is_handled(client_of, redis_conn):
    """Knative's Broker takes 0.3 and delivers it as 0.3: the functions took 1.0 only, so a
    0.3 feed's events were refused (400) and dead-lettered. Binary, and structured with its
    data in base64 (0.3's datacontentencoding)."""
    import base64
    client = client_of("counter")
    headers, body = binary(event_id="old-1")
    assert client.post("/", headers={**headers, "ce-specversion": "0.3"}, data=body).status_code == 200
    document = {"specversion": "0.3", "id": "old-2", "source": "/tests", "type": "ai.kades.market.tick.v1",
                "datacontenttype": "application/json", "datacontentencoding": "base64",
                "data": base64.b64encode(json.dumps(tick_data()).encode()).decode()}
    response = client.post("/", headers={"content-type": "application/cloudevents+json"},
                           data=json.dumps(document))
    assert response.status_code == 200, response.data
    assert int(redis_conn.get("test:ticks")) == 2


def test_same_id_from_another_source_is_a_different_event(client_of, redis_conn):
    client = client_of("counter")
    headers, body = binary()
    client.post("/", headers=headers, data=body)
    client.post("/", headers={**headers, "ce-source": "/elsewhere"}, data=body)
    assert int(redis_conn.get("test:ticks")) == 2


MALFORMED = [
    ({"content-type": "application/json"}, b"{}", "ce-specversion"),
    ({**binary()[0], "ce-specversion": "0.2"}, binary()[1], "specversion"),
    (binary()[0], b"{broken", "data"),
    (binary(data={"ticks": [{"token": "T"}]})[0], json.dumps({"ticks": [{"token": "T"}]}), "data.ticks[0]"),
    (binary(event_type="ai.kades.social.posts.v1")[0], binary()[1], "type"),
    (structured()[0], b"[]", "body"),
    # part of the stored rows' unique keys: PostgreSQL refused the row (a 503, for ever)
    (binary(event_id="i" * 1025)[0], binary()[1], "id"),
    ({**binary()[0], "ce-source": "/" + "%C3%A9" * 600}, binary()[1], "source"),  # 1,201 bytes
]


@pytest.mark.parametrize("headers,body,field", MALFORMED)
def test_malformed_event_is_400_with_json_error_and_no_side_effect(client_of, redis_conn,
                                                                   headers, body, field):
    response = client_of("counter").post("/", headers=headers, data=body)
    assert response.status_code == 400
    problem = response.get_json()  # RFC 9457, with v1's `error` member beside it
    assert response.mimetype == "application/problem+json"
    assert (problem["type"], problem["status"], problem["instance"]) == (
        "urn:kades:problem:invalid_event", 400, "/")
    assert problem["title"] == "Invalid event" and problem["detail"]
    assert field in [d["field"] for d in problem["errors"]]
    error = problem["error"]
    assert error["code"] == "invalid_event" and error["message"]
    assert error["details"] == problem["errors"]
    assert redis_conn.get("test:ticks") is None
    assert not list(redis_conn.scan_iter("kades:dedup:*"))  # a rejected event leaves no dedup mark


def test_every_problem_is_listed_at_once(client_of):
    headers = {**binary()[0], "ce-specversion": "9", "ce-time": "later", "ce-id": ""}
    response = client_of("counter").post("/", headers=headers, data=b"{x")
    fields = {d["field"] for d in response.get_json()["error"]["details"]}
    assert {"specversion", "time", "id", "data"} <= fields


@pytest.mark.parametrize("mode", MODES)
def test_an_events_data_problems_come_with_its_attributes_problems(client_of, mode):
    """The data was checked only once the attributes had passed: a bad time hid a bad body
    until the time was mended."""
    headers, body = MODES[mode](data={"ticks": "no"})
    if mode == "binary":
        headers = {**headers, "ce-time": "yesterday"}
    else:
        body = json.dumps({**json.loads(body), "time": "yesterday"})
    response = client_of("counter").post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert {d["field"] for d in response.get_json()["errors"]} == {"time", "data.ticks"}


@pytest.mark.parametrize("mode", MODES)
def test_an_events_other_refusals_come_with_its_attributes_problems(client_of, mode):
    """A bad time hid an id holding a line feed, a source past the key's 1,024 bytes and a
    type the function does not consume: each named only once the one before was mended."""
    headers, body = MODES[mode]()
    changes = {"time": "yesterday", "id": "a\nb", "source": "/s" * 600}
    if mode == "binary":
        headers = {**headers, **{f"ce-{name}": value for name, value in changes.items()}}
        headers["ce-id"] = "a%0Ab"  # (a header holds no line feed: percent-encoded, as the spec says)
    else:
        body = json.dumps({**json.loads(body), **changes})
    response = client_of("counter").post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert {d["field"] for d in response.get_json()["errors"]} == {"time", "id", "source"}
    other = {**headers, "ce-type": "ai.kades.chain.block.v1"} if mode == "binary" else headers
    if mode != "binary":
        body = json.dumps({**json.loads(body), "type": "ai.kades.chain.block.v1"})
    response = client_of("counter").post("/", headers=other, data=body)
    assert {d["field"] for d in response.get_json()["errors"]} == {"time", "type"}


def test_temporary_failure_is_503_and_the_retry_is_handled(client_of, redis_conn):
    client = client_of("counter")
    headers, body = binary(data=tick_data(source="fail-once"))
    first = client.post("/", headers=headers, data=body)
    assert first.status_code == 503 and first.get_json()["error"]["code"] == "unavailable"
    assert first.mimetype == "application/problem+json"
    assert (first.get_json()["status"], first.get_json()["type"]) == (
        503, "urn:kades:problem:unavailable")
    assert first.headers["Retry-After"] == "1"
    retry = client.post("/", headers=headers, data=body)
    assert retry.status_code == 200
    assert int(redis_conn.get("test:ticks")) == 1


def test_batch_replies_go_to_the_sink(client_of, recording_sink, redis_conn):
    events = [json.loads(structured(event_id=f"b-{i}")[1]) for i in range(3)]
    response = client_of("counter").post(
        "/", headers={"content-type": "application/cloudevents-batch+json"}, data=json.dumps(events))
    assert (response.status_code, response.data) == (202, b"")
    assert [e.type for e in recording_sink] == ["ai.kades.anomaly.detected.v1"] * 3
    assert int(redis_conn.get("test:ticks")) == 3


def test_a_refused_batch_names_every_problem_of_every_item(client_of, redis_conn):
    """An item with bad attributes hid the data problems of the others (the batch was
    refused before any data was looked at), and an item that is no object was named [2]."""
    bad_attributes = json.loads(structured(event_id="b-0")[1])
    del bad_attributes["source"]
    bad_data = json.loads(structured(event_id="b-1")[1])
    bad_data["data"] = {"ticks": []}
    response = client_of("counter").post(
        "/", headers={"content-type": "application/cloudevents-batch+json"},
        data=json.dumps([bad_attributes, bad_data, 5]))
    assert response.status_code == 400
    fields = [p["field"] for p in response.get_json()["errors"]]
    assert fields == ["[0].source", "[2]", "[1].data.ticks"], fields
    assert redis_conn.get("test:ticks") is None  # nothing of it handled


def test_a_body_that_is_no_json_is_named_once(client_of):
    """Its data was also judged against the schema: "None is not of type 'object'"."""
    headers, _ = binary()
    response = client_of("counter").post("/", headers=headers, data=b'{"ticks": [')
    assert response.status_code == 400
    assert [p["field"] for p in response.get_json()["errors"]] == ["data"]


def test_extra_events_beyond_the_reply_go_to_the_sink(client_of, recording_sink):
    data = {"ticks": [tick_data(token=t)["ticks"][0] for t in ("A", "B", "C")]}
    headers, body = binary(data=data)
    response = client_of("echo").post("/", headers=headers, data=body)
    assert response.status_code == 200 and response.headers["ce-subject"] == "A"
    assert sorted(e.subject for e in recording_sink) == ["B", "C"]


def test_an_idempotent_function_replies_without_a_claim(redis_conn, recording_sink, kades_env):
    """Function.idempotent: no claim nor done mark; the first reply in the answer, the
    others to the sink, the same again for a redelivery."""
    import flask

    from kades.events.catalogue import ANOMALY_DETECTED, MARKET_TICK, derived_id, new_event
    from kades.runtime import Context, Function, http_function

    def reply_per_token(event, ctx):
        return [new_event(ANOMALY_DETECTED, ctx.source, {"anomalies": []}, subject=tick["token"],
                          event_id=derived_id(event, tick["token"]))
                for tick in event.data["ticks"]]
    entry = http_function(Function("replier", (MARKET_TICK,), reply_per_token, idempotent=True),
                          Context("replier"))
    data = {"ticks": [tick_data(token=t)["ticks"][0] for t in ("A", "B", "C")]}
    headers, body = binary(data=data)
    answers = []
    for _ in range(2):
        with flask.Flask(__name__).test_request_context("/", method="POST", headers=headers,
                                                         data=body):
            response = entry(flask.request)
            answers.append((response.status_code, response.headers.get("ce-subject"),
                            response.headers.get("ce-id")))
    assert answers[0] == answers[1] and answers[0][:2] == (200, "A")
    assert sorted(e.subject for e in recording_sink) == ["B", "B", "C", "C"]
    assert len({e.id for e in recording_sink}) == 2  # the same two events, sent again
    assert not redis_conn.keys("kades:dedup:*")


def test_a_retry_after_the_sink_failed_sends_what_the_first_attempt_sent(
        client_of, redis_conn, monkeypatch):
    """The ingress takes B, then fails on C: the event is answered 503 with B already out.
    The retry computes other content (echo counts attempts) but must send B, C and the reply
    A exactly as the first attempt made them: one id, one content."""
    received, failed = [], []

    @Request.application
    def ingress(request):
        events = decode(request.headers, request.get_data())
        received.extend(events)
        if events[0].subject == "C" and not failed:
            failed.append(events[0].id)
            return Response(status=503)
        return Response(status=202)

    server = make_server("127.0.0.1", 0, ingress, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("KADES_SINK_URL", f"http://127.0.0.1:{server.server_port}/")
    try:
        client = client_of("echo")
        data = {"ticks": [tick_data(token=t)["ticks"][0] for t in ("A", "B", "C")]}
        headers, body = binary(event_id="retry-after-sink", data=data)
        assert client.post("/", headers=headers, data=body).status_code == 503
        # kept as long as a done mark: a dead-lettered event replayed days later (`kades dlq
        # replay`) sends the same too (an hour, it was: the Broker's retries only)
        kept = sent_key(dedup_key("echo", "/tests\nretry-after-sink"))
        assert OUTBOX_TTL_S < redis_conn.ttl(kept) <= Settings().dedup_ttl_s
        retry = client.post("/", headers=headers, data=body)
    finally:
        server.shutdown()
        server.server_close()
    assert retry.status_code == 200
    assert int(redis_conn.get("test:echo-attempts:/tests:retry-after-sink")) == 2
    assert redis_conn.get(kept) is None  # done: the done mark answers redeliveries now
    assert json.loads(retry.data)["anomalies"][0]["details"] == {"attempt": 1}
    assert sorted(e.subject for e in received) == ["B", "B", "C", "C"]
    contents = {}
    for event in received:
        contents.setdefault(event.id, []).append(event.data)
    assert all(len(copies) == 2 and copies[0] == copies[1] for copies in contents.values())
    assert {copies[0]["anomalies"][0]["details"]["attempt"] for copies in contents.values()} == {1}


def test_oversized_body_is_refused_before_parsing(client_of, monkeypatch):
    monkeypatch.setenv("KADES_MAX_EVENT_BYTES", "100")
    headers, _ = binary()
    response = client_of("counter").post("/", headers=headers, data=b"x" * 200)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


def test_keeping_requests_undecoded_needs_their_identity():
    """Without it a retry could not be told from a new request: refused when declared."""
    from kades.runtime.function import ANY_TYPE, Function
    with pytest.raises(ValueError, match="request_identity"):
        Function("keeper", ANY_TYPE, lambda event, ctx: None,
                 keep_undecodable=lambda ctx, headers, body, error: True)


def test_probes_and_metrics(client_of):
    client = client_of("counter")
    assert client.get("/health").get_json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.get_json()["checks"]["redis"] == "ok"
    client.post("/", headers=binary()[0], data=binary()[1])
    metrics = client.get("/metrics").data.decode()
    assert 'kades_events_total{function="counter",outcome="handled",type="ai.kades.market.tick.v1"}' in metrics
    assert "kades_handler_seconds_bucket" in metrics
    assert "kades_in_flight" in metrics
    assert client.get("/nowhere").status_code == 404
    assert client.get("/").status_code == 405
