"""temporal-analysis takes no dedup claim: each event's outbox, committed with the token
states, is its done mark. A redelivery, on the same replica or another, and copies handled
at the same moment on several replicas all answer what the first delivery answered, and
nothing is analysed, stored or counted twice. Through the entry point, on real Redis and
PostgreSQL."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from functions_framework import create_app
from prometheus_client import REGISTRY

from kades.events.catalogue import MARKET_TICK, PING, new_event
from kades.events.envelope import to_binary
from kades.keys import TEMPORAL_STATE, outbox_key
from kades.runtime.reorder import ReorderBuffer
from kades.runtime.state import OUTBOX_TTL_S
from kades.settings import Settings
from kades.simulate.market import simulate_market
from kades.temporal.function import read_state

MAIN = Path(__file__).resolve().parents[2] / "functions/temporal-analysis/main.py"
NAME = "temporal-analysis"


@pytest.fixture
def replica(kades_env, redis_conn, db_conn, recording_sink):
    """A new temporal-analysis app at each call: a replica of its own (its own Context and
    caches), on the test's Redis and database."""
    return lambda: create_app("handle", str(MAIN), "http").test_client()


def tick_events(seed: int) -> list:
    sim = simulate_market(seed=seed, tokens=1, minutes=15)
    return [new_event(MARKET_TICK, "/kades/market-aggregator", {"ticks": sim.ticks[i:i + 10]},
                      event_id=f"e{i}") for i in range(0, len(sim.ticks), 10)]


def post(client, event):
    headers, body = to_binary(event)
    return client.post("/", headers=headers, data=body)


def answer(response) -> tuple:
    return response.status_code, response.headers.get("ce-id"), response.data


def scores(db_conn) -> int:
    db_conn.rollback()  # see what the handler's own connection committed
    return db_conn.execute("SELECT count(*) FROM temporal_scores").fetchone()[0]


def late_inputs() -> float:
    return REGISTRY.get_sample_value("kades_late_inputs_total", {"function": NAME}) or 0.0


def duplicates() -> float:
    return REGISTRY.get_sample_value("kades_duplicates_total", {"function": NAME}) or 0.0


def detector_state(redis_conn, event) -> dict:
    """The token's whole state (its journal replayed) with the ids of the ticks waiting in its
    reorder buffer, not the buffer's entries, which carry wall-clock arrivals."""
    token = event.data["ticks"][0]["token"]
    state = read_state(redis_conn.get(TEMPORAL_STATE.format(token=token)),
                       ReorderBuffer.from_settings(Settings.from_env()))
    return {**state, "reorder": sorted(entry[1] for entry in state["reorder"]["pending"])}


def test_a_redelivery_answers_what_the_first_did_and_counts_nothing_twice(replica, redis_conn,
                                                                         db_conn):
    app, events = replica(), tick_events(seed=7)
    first = {event.id: answer(post(app, event)) for event in events}
    flagged = [event for event in events if first[event.id][0] == 200]
    assert flagged and all(status in (200, 202) for status, _, _ in first.values())
    state, stored, late = redis_conn.get(TEMPORAL_STATE.format(
        token=events[0].data["ticks"][0]["token"])), scores(db_conn), late_inputs()
    again, seen = [*flagged, events[0], events[-1]], duplicates()
    for event in again:
        for client in (app, replica()):  # the same replica, and one that never saw the token
            assert answer(post(client, event)) == first[event.id]
    assert redis_conn.get(TEMPORAL_STATE.format(token=events[0].data["ticks"][0]["token"])) == state
    assert (scores(db_conn), late_inputs()) == (stored, late)
    assert duplicates() == seen + 2 * len(again)  # known by the outbox that answered
    assert not redis_conn.keys("kades:dedup:*")  # no claim, no done mark
    assert all(redis_conn.exists(outbox_key(NAME, e.source, e.id)) for e in events)


def test_an_event_that_raises_nothing_and_an_idle_flush_are_marked_by_their_outbox(
        replica, redis_conn):
    app = replica()
    tick = tick_events(seed=3)[0]
    tick.data["ticks"] = tick.data["ticks"][:1]
    ping = new_event(PING, "/apis/v1/namespaces/kades/pingsources/stream-flush", {"job": "flush"},
                     event_id="flush-1")
    for event in (tick, ping):
        response = post(app, event)
        assert (response.status_code, response.data) == (202, b"")
        key = outbox_key(NAME, event.source, event.id)
        assert json.loads(redis_conn.get(key)) == [[], []]
        assert 0 < redis_conn.ttl(key) <= OUTBOX_TTL_S


def test_copies_of_one_event_on_several_replicas_at_once_agree_with_one_delivery(
        replica, redis_conn, db_conn):
    events = tick_events(seed=7)
    app = replica()
    reference = {event.id: answer(post(app, event)) for event in events}
    final, stored = detector_state(redis_conn, events[0]), scores(db_conn)
    assert any(status == 200 for status, _, _ in reference.values())
    redis_conn.flushdb()
    db_conn.execute("TRUNCATE temporal_scores")
    db_conn.commit()

    replicas = [replica() for _ in range(4)]
    for event in events:
        answers, errors = [], []

        def deliver(client, event=event):
            try:
                answers.append(answer(post(client, event)))
            except BaseException as error:  # noqa: BLE001 -- reported by the assert below
                errors.append(error)
        threads = [threading.Thread(target=deliver, args=(client,)) for client in replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors and answers == [reference[event.id]] * len(replicas), event.id
    assert detector_state(redis_conn, events[0]) == final
    assert scores(db_conn) == stored


def test_behind_a_primary_with_replicas_its_answer_waits_for_them_without_a_claim(
        replica, kades_env, fresh_settings, redis_conn):
    """KADES_REDIS_WAIT_REPLICAS (the prod overlay): no done mark waits, so the state commit
    does (StateStore(replicas=...)). The test Redis has no replica: the answer is a 503 (the
    Broker retries), not an acknowledgement of an unreplicated commit; nothing is claimed.
    With a replica: tests/runtime/test_replicated_ack.py."""
    if kades_env.redis_cluster:
        pytest.skip("the wait is refused with a Redis Cluster (a settings error)")
    fresh_settings.setenv("KADES_REDIS_WAIT_REPLICAS", "1")
    fresh_settings.setenv("KADES_REDIS_WAIT_TIMEOUT_S", "0.05")
    response = post(replica(), tick_events(seed=3)[0])
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["detail"] == "temporary failure: NotReplicated"
    assert not redis_conn.keys("kades:dedup:*")
