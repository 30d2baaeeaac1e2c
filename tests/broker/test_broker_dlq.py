"""Dead letters: the sink function stores them, `kades dlq` lists and replays them."""
import json
import threading
from pathlib import Path

import pytest
from functions_framework import create_app
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from brokertest import event_attrs, manifests, post_binary, trigger, wait_for
from kades import clients
from kades.deadletter.cli import main_dlq
from kades.deadletter.store import (
    ReplayError, list_dead_letters, replay_dead_letters, store_dead_letter)
from kades.events.envelope import CloudEvent, to_binary, to_structured

REPO = Path(__file__).resolve().parents[2]
ERROR_EXT = {"knativeerrordest": "http://127.0.0.1:8101", "knativeerrorcode": "503",
             "knativeerrordata": "ZGF0YWJhc2UgYXdheQ=="}


def letter(id_: str = "e1", type_: str = "ai.kades.test.v1") -> CloudEvent:
    return CloudEvent({**event_attrs(type_, id_), **ERROR_EXT, "knativebrokerttl": "250",
                       "knativearrivaltime": "2024-01-01T00:00:00Z"}, {"n": 1})


@pytest.fixture
def sink_client(broker_redis, broker_redis_url, fresh_settings):
    """The dead-letter function, built as functions-framework serves it."""
    fresh_settings.setenv("KADES_REDIS_URL", broker_redis_url)
    app = create_app("handle", str(REPO / "functions" / "dead-letter" / "main.py"), "http")
    yield app.test_client()
    clients.close_all()


def test_sink_stores_binary_and_structured_events(sink_client, broker_redis):
    headers, body = to_binary(letter("bin"))
    assert sink_client.post("/", headers=headers, data=body).status_code == 202
    headers, body = to_structured(letter("str"))
    assert sink_client.post("/", headers=headers, data=body).status_code == 202
    stored = list_dead_letters(broker_redis)
    assert [d.event.id for d in stored] == ["bin", "str"]
    assert stored[0].error_code == "503" and stored[0].error_dest == ERROR_EXT["knativeerrordest"]
    assert stored[0].event.data == {"n": 1} and stored[0].event["knativebrokerttl"] == "250"


def test_the_dead_letter_stream_keeps_the_newest(broker_redis, monkeypatch):
    """Dead letters had no bound: a sink failing for days fills the Redis all functions share."""
    from kades.broker.queue import BrokerQueue
    from kades.broker.routing import Router
    from kades.deadletter import store
    from kades.keys import DLQ
    monkeypatch.setattr(store, "MAX_DEAD_LETTERS", 5)
    for n in range(8):
        store_dead_letter(broker_redis, letter(f"e{n}"))
    assert [d.event.id for d in list_dead_letters(broker_redis)] == [f"e{n}" for n in range(3, 8)]
    queue = BrokerQueue(broker_redis, "ns", "b", Router([]))  # the broker parks its own
    queue.finish("t/0", ["1-1"], park=store.dead_letter_fields(letter("parked")))
    assert broker_redis.xlen(DLQ) == 5 and list_dead_letters(broker_redis)[-1].event.id == "parked"


def test_sink_refuses_invalid_events_and_serves_probes(sink_client):
    response = sink_client.post("/", headers={"ce-specversion": "1.0"}, data=b"")
    assert response.status_code == 400
    assert {d["field"] for d in response.get_json()["error"]["details"]} >= {"id", "source", "type"}
    assert sink_client.get("/health").status_code == 200
    assert sink_client.get("/ready").status_code == 200


def test_list_table(broker_redis, capsys, broker_redis_url):
    store_dead_letter(broker_redis, letter("a"))
    assert main_dlq(["--redis-url", broker_redis_url, "list"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["ID", "TIME", "TYPE", "SOURCE", "CODE", "DEST"]
    assert row.split()[2:] == ["ai.kades.test.v1", "/tests/broker", "503",
                               ERROR_EXT["knativeerrordest"]]


def test_replay_sends_the_original_event_back_and_deletes_it(run_broker, subscribers, broker_redis,
                                                             broker_redis_url, capsys):
    sub = subscribers()
    broker = run_broker(manifests(trigger("t", sub.url)))
    first = store_dead_letter(broker_redis, letter("a"))
    store_dead_letter(broker_redis, letter("b"))
    assert main_dlq(["--redis-url", broker_redis_url, "replay", first,
                     "--ingress", broker.ingress_url()]) == 0
    assert "replayed 1" in capsys.readouterr().out
    wait_for(lambda: sub.count() == 1, what="the replayed event")
    headers = sub.requests[0]["headers"]
    assert headers["ce-id"] == "a" and json.loads(sub.requests[0]["body"]) == {"n": 1}
    assert not any(h.startswith("ce-knativeerror") for h in headers)
    assert headers["ce-knativearrivaltime"] != "2024-01-01T00:00:00Z"
    assert [d.event.id for d in list_dead_letters(broker_redis)] == ["b"]
    assert replay_dead_letters(broker_redis, broker.ingress_url(), all=True) == 1
    wait_for(lambda: sub.count() == 2, what="the second replayed event")
    assert list_dead_letters(broker_redis) == []


def test_a_letter_is_replayed_once_whether_named_twice_or_taken_by_another_replay(
        run_broker, subscribers, broker_redis):
    """`replay ID ID` sent it twice; two replays at once both sent every letter."""
    from kades.keys import DLQ_REPLAYING
    sub = subscribers()
    broker = run_broker(manifests(trigger("t", sub.url)))
    first = store_dead_letter(broker_redis, letter("a"))
    busy = store_dead_letter(broker_redis, letter("b"))
    broker_redis.set(DLQ_REPLAYING.format(id=busy), 1, ex=60)  # another replay holds it
    with pytest.raises(ReplayError) as error:
        replay_dead_letters(broker_redis, broker.ingress_url(), [first, first, busy])
    assert error.value.replayed == 1 and list(error.value.failures) == [busy]
    wait_for(lambda: sub.count() == 1, what="the replayed event")
    assert [d.event.id for d in list_dead_letters(broker_redis)] == ["b"]  # kept for later


def test_replayed_events_restart_with_a_full_ttl(run_broker, subscribers, broker_redis):
    broker = run_broker(manifests(trigger("t", "http://127.0.0.1:9/")), dispatch=False)
    store_dead_letter(broker_redis, letter("a"))
    replay_dead_letters(broker_redis, broker.ingress_url(), all=True)
    [(_id, fields)] = broker_redis.xrange("kades:{broker}:kades:kades:lane:t/0")
    assert json.loads(fields[b"event"])["knativebrokerttl"] == "255"


def test_replay_failures_are_reported_and_kept(broker_redis, broker_redis_url, capsys):
    store_dead_letter(broker_redis, letter("a"))
    with pytest.raises(ReplayError) as error:
        replay_dead_letters(broker_redis, "http://127.0.0.1:9/kades/kades", all=True)
    assert error.value.replayed == 0 and len(error.value.failures) == 1
    assert len(list_dead_letters(broker_redis)) == 1
    assert main_dlq(["--redis-url", broker_redis_url, "replay", "0-1"]) == 1
    assert "no such dead letter: 0-1" in capsys.readouterr().err


def test_dead_letters_from_the_broker_reach_the_sink_function(run_broker, subscribers,
                                                              sink_client, broker_redis):
    """The Broker's deadLetterSink is the dead-letter function: end to end through a real server."""
    server = make_server("127.0.0.1", 0, sink_client.application, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        failing = subscribers(lambda _r: Response(b"nope", status=400))
        broker = run_broker(manifests(trigger("t", failing.url), delivery={
            "retry": 0, "deadLetterSink": {"uri": f"http://127.0.0.1:{server.server_port}"}}))
        post_binary(broker.ingress_url(), event_attrs(id_="doomed"))
        [stored] = wait_for(lambda: list_dead_letters(broker_redis), what="the stored dead letter")
        assert stored.event.id == "doomed" and stored.error_code == "400"
        assert stored.error_dest == failing.url and stored.note == ""
    finally:
        server.shutdown()
        server.server_close()
