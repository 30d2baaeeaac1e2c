"""Every deployed function through functions-framework's own test client, as the Broker
calls it: a valid example of each type it consumes in binary and in structured mode is
answered 200 with a catalogue event or 202 with nothing; a malformed event gets 400."""
from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from functions_framework import create_app
from prometheus_client import REGISTRY

from kades.events.catalogue import EXAMPLE_MINT, SCHEMAS, example, new_event
from kades.events.envelope import to_binary, to_dict, to_structured
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
    headers = {"ce-specversion": "0.2", "ce-id": "", "ce-source": "/tests",
               "ce-type": "ai.kades.market.tick.v1", "content-type": "application/json"}
    response = client_of(name).post("/", headers=headers, data=b"{not json")
    assert response.status_code == 400
    fields = {d["field"] for d in json.loads(response.data)["error"]["details"]}
    # every function takes 1.0 and 0.3, as Knative's ingress does; 0.2 is refused by all
    assert {"specversion", "id", "data"} <= fields


def test_every_function_consumes_what_its_triggers_send():
    assert all(load(name).consumes == ANY_TYPE or load(name).consumes for name in FUNCTIONS)


_TICK = example("ai.kades.market.feed.v1")["ticks"][0]
_POOL_STATE = {"signature": "5UfE", "pool": "P", "base_mint": EXAMPLE_MINT,
               "quote_mint": "So11111111111111111111111111111111111111112", "base_reserve": 10**9,
               "quote_reserve": 10**9, "base_decimals": 6, "quote_decimals": 9, "price": 1.0}
def _nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


# Inputs a crash hunt found answered 500 (an exception in a handler): each is refused with a
# 400 naming the field, or handled. (function, type, data, envelope time, the field or None)
HOSTILE = [
    ("market-aggregator", "ai.kades.market.feed.v1",
     {"ticks": [{**_TICK, "time": "0999-06-01T00:00:00Z"}]}, None, "data.ticks[0].time"),
    ("market-aggregator", "ai.kades.market.feed.v1",
     {"ticks": [{**_TICK, "price": 10**400}]}, None, "data.ticks[0].price"),
    ("market-aggregator", "ai.kades.chain.block.v1",   # a pool state without its program
     {**example("ai.kades.chain.block.v1"), "pool_states": [_POOL_STATE]}, None, None),
    ("market-aggregator", "ai.kades.chain.block.v1", {**example("ai.kades.chain.block.v1"),
     "context": {"sol_usd": 1e308, "fundings": [], "launches": []}}, None, "data.context.sol_usd"),
    ("whale-detection", "ai.kades.chain.block.v1",
     {**example("ai.kades.chain.block.v1"), "context": {}}, None, "data.context"),
    ("chain-analysis", "ai.kades.chain.block.v1",
     {**example("ai.kades.chain.block.v1"), "slot": 10**400}, None, "data.slot"),
    ("risk-scoring", "dev.knative.sources.ping", {"job": "flush"}, "", "time"),
    # 2xx before: then every true slot of the block's mints was "late", unanalysed
    ("chain-analysis", "ai.kades.chain.block.v1",
     {**example("ai.kades.chain.block.v1"), "slot": 2**64 - 1}, None, "data.slot"),
    ("whale-detection", "ai.kades.chain.block.v1",  # no block_time: the event's time holds it
     {**example("ai.kades.chain.block.v1"), "slot": 2**64 - 1, "block_time": None}, None,
     "data.slot"),
    ("chain-analysis", "ai.kades.chain.block.v1",  # no block_time: the event's time must do
     {**example("ai.kades.chain.block.v1"), "block_time": None}, "9999-12-31T23:59:59-01:00",
     "data.block_time"),
    ("risk-scoring", "ai.kades.anomaly.detected.v1", {"anomalies": [
        {**example("ai.kades.anomaly.detected.v1")["anomalies"][0], "time": "2026-12-31T23:59:60Z"}]},
     None, "data.anomalies[0].time"),
    ("alert-dispatch", "ai.kades.alert.issued.v1",
     {**example("ai.kades.alert.issued.v1"), "time": "2026-13-26T08:00:00Z"}, None, "data.time"),
    # local time labelled Z, hours ahead: every true tick of the token after it was "too late"
    ("temporal-analysis", "ai.kades.market.tick.v1", {"ticks": [{**_TICK, "time": (
        datetime.now(timezone.utc) + timedelta(hours=8)).isoformat()}]}, None, "data.ticks[0].time"),
    # stored, it made GET /v1/anomalies a 500 (the api's encoding recursed once per level)
    ("risk-scoring", "ai.kades.anomaly.detected.v1", {"anomalies": [
        {**example("ai.kades.anomaly.detected.v1")["anomalies"][0], "details": _nested(100)}]},
     None, "data"),
    ("sentiment-analysis", "ai.kades.social.posts.v1", {"posts": [
        {**example("ai.kades.social.posts.v1")["posts"][0], "time": "9999-12-31T23:59:59-14:00"}]},
     None, "data.posts[0].time"),
]


@pytest.mark.parametrize("name,event_type,data,time,field", HOSTILE,
                         ids=[f"{case[0]}:{case[4] or 'handled'}" for case in HOSTILE])
def test_input_that_once_crashed_a_handler_is_refused_or_handled(client_of, name, event_type,
                                                                 data, time, field):
    event = new_event(event_type, "/tests/http", {}, event_id=f"hostile-{name}-{field}")
    headers, _ = to_binary(event)
    if time == "":
        headers.pop("ce-time")
    elif time:
        headers["ce-time"] = time
    response = client_of(name).post("/", headers=headers, data=json.dumps(data))
    if field is None:
        assert response.status_code in (200, 202), response.data[:300]
    else:
        assert response.status_code == 400, response.data[:300]
        assert field in {d["field"] for d in json.loads(response.data)["error"]["details"]}


def test_a_nul_or_a_control_character_is_refused_where_stored_and_kept_as_a_dead_letter(client_of):
    """PostgreSQL cannot store U+0000: market-aggregator gave a 500 for a token holding one.
    The dead-letter sink must keep what a function refused, or Knative drops it."""
    data = {"ticks": [{**_TICK, "token": "T\u0000x"}]}
    for name, headers in (("market-aggregator", {}), ("market-aggregator", {"ce-subject": "a%00b"}),
                          ("dead-letter", {}), ("dead-letter", {"ce-subject": "a%00b"})):
        event = new_event("ai.kades.market.feed.v1", "/tests/http", {}, event_id=f"nul-{name}-{headers}")
        sent, _ = to_binary(event)
        response = client_of(name).post("/", headers={**sent, **headers}, data=json.dumps(
            data if not headers else example("ai.kades.market.feed.v1")))
        if name == "dead-letter":
            assert response.status_code in (200, 202), response.data[:300]
        else:
            assert response.status_code == 400, response.data[:300]
            fields = {d["field"] for d in json.loads(response.data)["error"]["details"]}
            # the token's U+0000 named twice: as no stored text can hold it, and as a
            # control character no subject it becomes may hold
            assert fields == ({"subject"} if headers else {"data", "data.ticks[0].token"})


def test_the_dead_letter_sink_keeps_what_knative_accepts_and_no_function_could_decode(
        client_of, redis_conn):
    """Knative's ingress takes CloudEvents 0.3 and a JSON Content-Type over a body that is not
    JSON; every function refuses both (400), and so did the dead-letter sink, after which a
    Knative Broker drops the event. It keeps them: a 0.3 event as an event (listed, replayable),
    the other as the request came, listed as unreadable with its problem."""
    from kades.deadletter.store import list_dead_letters
    from kades.keys import DLQ
    redis_conn.delete(DLQ)
    v03 = {"ce-specversion": "0.3", "ce-id": "old-1", "ce-source": "/legacy", "ce-type": "t.v1",
           "content-type": "application/json"}
    broken = {**v03, "ce-specversion": "1.0", "ce-id": "broken-1",
              "ce-knativeerrordest": "http://temporal-analysis.kades.svc"}
    for headers, body in ((v03, b'{"price": 2}'), (broken, b'{"price": ')):
        assert client_of("temporal-analysis").post("/", headers=headers, data=body).status_code == 400
        response = client_of("dead-letter").post("/", headers=headers, data=body)
        assert response.status_code == 202, response.data[:300]
    kept, unreadable = list_dead_letters(redis_conn)
    assert kept.event.id == "old-1" and kept.event.get("specversion") == "0.3"
    assert kept.event.data == {"price": 2}
    assert kept.event is not None and unreadable.event is None
    assert "Content-Type is JSON but the body is not" in unreadable.unreadable
    [(_, fields)] = redis_conn.xrange(DLQ, min=unreadable.id, max=unreadable.id)
    request = json.loads(fields[b"undecodable"])
    assert request["headers"]["ce-knativeerrordest"] == "http://temporal-analysis.kades.svc"
    assert base64.b64decode(request["body_base64"]) == b'{"price": '


def _events_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("kades_events_total", {
        "function": "dead-letter", "type": "-", "outcome": outcome}) or 0.0


_BROKEN = {"ce-specversion": "1.0", "ce-id": "broken-2", "ce-source": "/tests", "ce-type": "t.v1",
           "content-type": "application/json", "ce-knativearrivaltime": "2026-12-01T10:00:00Z",
           "ce-knativeerrordest": "http://temporal-analysis.kades.svc"}


def test_a_broker_retry_of_an_undecodable_request_is_kept_once(client_of, redis_conn):
    """A Broker retries a delivery its dead-letter sink did not acknowledge (an answer lost):
    an undecodable request was kept again at each retry, where an event is kept once. Kept
    once now, known by its attributes (binary mode) or else by its headers and body; failed
    again after a replay (a new arrival time), it is kept again."""
    from kades.deadletter.store import list_dead_letters
    structured = {"content-type": "application/cloudevents+json"}
    document = json.dumps({"specversion": "1.0", "id": "broken-3", "source": "/tests",
                           "type": "t.v1", "data_base64": "not base64!"}).encode()
    client, duplicates = client_of("dead-letter"), _events_counted("duplicate")
    for headers, body in ((_BROKEN, b'{"price": '), (_BROKEN, b'{"price": '),
                          (structured, document), (structured, document),
                          ({**_BROKEN, "ce-knativearrivaltime": "2026-12-02T10:00:00Z"},
                           b'{"price": '),
                          (structured, document.replace(b"broken-3", b"broken-4"))):
        response = client.post("/", headers=headers, data=body)
        assert response.status_code == 202, response.data[:300]
    letters = list_dead_letters(redis_conn)
    assert len(letters) == 4 and all("no valid CloudEvent" in d.unreadable for d in letters)
    assert _events_counted("duplicate") == duplicates + 2
    for _ in range(2):  # refused, as Knative's ingress would: refused again, not "in progress"
        response = client.post("/", headers={**_BROKEN, "ce-id": ""}, data=b'{"price": ')
        assert response.status_code == 400, response.data[:300]


def _chunked(client, headers, stream):
    # as gunicorn serves a chunked body: no Content-Length, the stream ends where it ends
    return client.post("/", input_stream=stream,
                       headers={**headers, "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


def test_the_dead_letter_sink_keeps_an_oversized_event_truncated_once(
        client_of, redis_conn, kades_env, monkeypatch, capsys):
    """Every function answers 413 to a body over KADES_MAX_EVENT_BYTES, and a Broker drops
    what its dead-letter sink refuses. The sink keeps the request's headers and its body's
    size, sha256 and first bytes, once per delivery (here retried chunked), listed by `kades
    dlq` as unreadable, truncated, and never replayed. Past keep.READ_CEILING times the limit
    (its Content-Length, or read so far) it answers 413 as well."""
    from kades import exitcodes
    from kades.deadletter.cli import main_dlq
    from kades.deadletter.store import list_dead_letters
    from kades.keys import DLQ
    monkeypatch.setenv("KADES_MAX_EVENT_BYTES", "100")
    client = client_of("dead-letter")
    body = json.dumps({"price": 2, "note": "x" * 1000}).encode()
    assert client.post("/", headers=_BROKEN, data=body).status_code == 202
    assert _chunked(client, _BROKEN, io.BytesIO(body)).status_code == 202  # the Broker's retry
    [letter] = list_dead_letters(redis_conn)
    assert letter.event is None and letter.unreadable.startswith("truncated")
    [(_, fields)] = redis_conn.xrange(DLQ)
    kept = json.loads(fields[b"truncated"])
    assert kept["size"] == len(body) and kept["sha256"] == hashlib.sha256(body).hexdigest()
    assert base64.b64decode(kept["head_base64"]) == body[:100]
    assert kept["headers"]["ce-knativeerrordest"] == _BROKEN["ce-knativeerrordest"]
    url = kades_env.redis_url
    assert main_dlq(["--redis-url", url, "list"]) == exitcodes.OK
    assert f"{letter.id}  {letter.time}  UNREADABLE: truncated" in capsys.readouterr().out
    assert main_dlq(["--redis-url", url, "replay", "--all",
                     "--ingress", "http://127.0.0.1:9/nowhere"]) == exitcodes.FAILURE
    assert f"{letter.id}: unreadable, not replayed: truncated" in capsys.readouterr().err
    from kades.runtime.keep import READ_CEILING
    over = b" " * (READ_CEILING * 100 + 1)
    assert client.post("/", headers=_BROKEN, data=over).status_code == 413
    assert _chunked(client, _BROKEN, io.BytesIO(over)).status_code == 413
    assert [d.id for d in list_dead_letters(redis_conn)] == [letter.id]


def test_an_oversized_body_cut_short_is_not_kept(client_of, redis_conn, monkeypatch):
    """gunicorn hands over what came when a sender stops early: kept, it would have been the
    record, and the Broker's retry of the whole body a duplicate of it."""
    from kades.deadletter.store import list_dead_letters
    monkeypatch.setenv("KADES_MAX_EVENT_BYTES", "100")
    client = client_of("dead-letter")
    body = json.dumps({"price": 2, "note": "x" * 1000}).encode()
    cut = client.post("/", input_stream=io.BytesIO(body[:600]),
                      headers=_BROKEN, environ_overrides={
                          "wsgi.input_terminated": True, "CONTENT_LENGTH": str(len(body))})
    assert cut.status_code == 503 and list_dead_letters(redis_conn) == []
    assert client.post("/", headers=_BROKEN, data=body).status_code == 202
    [letter] = list_dead_letters(redis_conn)
    assert letter.note.startswith(f"body of {len(body)} bytes")


def test_an_oversized_body_is_read_in_chunks_no_further_than_the_ceiling():
    from kades.runtime.keep import read_oversized
    stream = io.BytesIO(b"y" * 10**6)
    assert read_oversized(stream, stream.read(101), 100, 1000) is None
    assert stream.tell() <= 1000 + 2**16  # the rest left unread
    stream = io.BytesIO(b"y" * 1000)
    assert read_oversized(stream, stream.read(101), 100, 1000).head == b"y" * 100


@pytest.mark.parametrize("name", sorted(set(FUNCTIONS) - {"dead-letter"}))
def test_every_other_function_refuses_an_oversized_body(client_of, monkeypatch, name):
    monkeypatch.setenv("KADES_MAX_EVENT_BYTES", "100")
    assert load(name).keep_too_large is None
    headers = {**_BROKEN, "ce-type": "ai.kades.market.tick.v1"}
    assert client_of(name).post("/", headers=headers, data=b" " * 101).status_code == 413


def test_a_handler_stuck_on_a_lock_answers_503_and_gives_the_event_back(
        kades_settings, redis_conn, db_conn, recording_sink):
    """A handler waiting on a table lock (a migration's ALTER TABLE, an idle transaction)
    waited for ever, its claim renewed: every retry a 503 "in progress" until the Broker
    dead-lettered an event still being handled. The lock's wait is bounded now: a 503 that
    releases the claim, and the retry once the lock is gone stores the row once."""
    import dataclasses
    import threading
    import time
    import flask
    import psycopg
    from kades import clients
    from kades.events.catalogue import MARKET_FEED
    from kades.market.function import FUNCTION as MARKET
    from kades.runtime import Context, http_function
    # a Context of its own: the deployed module's, imported once per process, keeps the
    # settings of the first test that loaded it
    ctx = Context("market-aggregator", settings=dataclasses.replace(
        kades_settings, database_url=kades_settings.database_url + "?application_name=stuck",
        database_lock_timeout_s=0.5))
    entry = http_function(MARKET, ctx)
    app = flask.Flask("stuck")
    app.add_url_rule("/", "entry", lambda: entry(flask.request), methods=["POST"])
    market = app.test_client()
    event = new_event(MARKET_FEED, "/tests/http", example(MARKET_FEED), event_id="stuck-1")
    headers, body = to_binary(event)
    with psycopg.connect(kades_settings.database_url) as locker:
        locker.execute("LOCK TABLE token_metrics IN ACCESS EXCLUSIVE MODE")
        unlock = threading.Timer(8.0, locker.rollback)  # the code before waited until then
        unlock.start()
        began = time.monotonic()
        response = market.post("/", headers=headers, data=body)
        waited = time.monotonic() - began
        unlock.cancel()
        locker.rollback()
    assert response.status_code == 503, response.data[:300]
    assert response.get_json()["error"]["code"] == "unavailable" and waited < 5
    assert market.post("/", headers=headers, data=body).status_code == 200  # the retry, at once
    db_conn.rollback()
    assert db_conn.execute("SELECT count(*) FROM token_metrics WHERE event_id = 'stuck-1'"
                           ).fetchone()[0] == len(example(MARKET_FEED)["ticks"])
    clients.db_pool(ctx.settings).close()


def test_a_batch_whose_later_event_its_handler_refuses_sends_the_earlier_replies(
        client_of, recording_sink):
    """The events before the refused one were handled and marked done, their replies
    dropped with the 400 (a resend of the batch finds them done), and the 400 did not say
    which event it was about."""
    from kades.events.catalogue import ANOMALY_DETECTED, PING
    anomaly = new_event(ANOMALY_DETECTED, "/tests/http", example(ANOMALY_DETECTED),
                        event_id="batch-anomaly")
    ping = new_event(PING, "/apis/v1/namespaces/kades/pingsources/risk-decay",
                     {"job": "risk-decay"}, event_id="batch-ping")
    del ping.attributes["time"]  # a PingSource always sets it: the handler refuses one without
    body = json.dumps([to_dict(anomaly), to_dict(ping)])
    response = client_of("risk-scoring").post(
        "/", data=body, headers={"content-type": "application/cloudevents-batch+json"})
    assert response.status_code == 400, response.data[:300]
    fields = [p["field"] for p in response.get_json()["error"]["details"]]
    assert fields and all(field.startswith("[1].") for field in fields), fields
    assert [e.type for e in recording_sink] == ["ai.kades.risk.scored.v1"], recording_sink
