"""market-aggregator, temporal-analysis and risk-scoring handlers on real Redis and PostgreSQL.

Handlers are called directly (no HTTP): the runtime's own tests cover decoding and statuses.
"""
from __future__ import annotations

import dataclasses
import json
import threading
from datetime import datetime, timezone

import pytest

from kades.errors import TemporaryFailure
from kades.events.catalogue import (ANOMALY_DETECTED, MARKET_TICK, PING, RISK_SCORED, data_problems,
                                    derived_id, new_event)
from kades.keys import RISK_STATE, TEMPORAL_STATE
from kades.market.function import handle_feed
from kades.risk import function as risk_function
from kades.risk.function import handle_anomalies
from kades.risk.scoring import components_at
from kades.runtime import Context
from kades.runtime.reorder import ReorderBuffer
from kades.settings import Settings
from kades.simulate.market import feed_events, simulate_market
from kades.temporal import function as temporal_function
from kades.temporal.function import group_ticks, handle_ticks, read_state


@pytest.fixture
def ctx_of(kades_settings, redis_conn, db_conn):
    return lambda name: Context(name, settings=kades_settings)


def count(db_conn, table: str) -> int:
    db_conn.rollback()  # see rows committed by the handler's own connection
    return db_conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def tick_event(ticks: list[dict], event_id: str) -> object:
    return new_event(MARKET_TICK, "/kades/market-aggregator", {"ticks": ticks}, event_id=event_id)


def test_market_aggregator_stores_once_and_replies_a_tick_per_token(ctx_of, db_conn):
    ctx = ctx_of("market-aggregator")
    event = feed_events(simulate_market(seed=1, tokens=3, minutes=1), source="/feed")[0]
    replies = handle_feed(event, ctx)
    tokens = [tick["token"] for tick in event.data["ticks"]]
    assert sorted(r.subject for r in replies) == sorted(tokens) and len(set(tokens)) == 3
    for reply in replies:
        assert reply.type == MARKET_TICK and reply.id == derived_id(event, f"market-tick:{reply.subject}")
        assert not data_problems(reply) and reply.attributes["partitionkey"] == reply.subject
        assert [t["token"] for t in reply.data["ticks"]] == [reply.subject]
    assert count(db_conn, "token_metrics") == 3
    assert [r.id for r in handle_feed(event, ctx)] == [r.id for r in replies]  # redelivered: same replies
    assert count(db_conn, "token_metrics") == 3
    bare = {"token": "OneToken", "time": "2024-01-01T01:00:00+01:00", "price": 2.5}
    (one,) = handle_feed(new_event(event.type, "/feed", {"ticks": [bare]}), ctx)
    assert one.subject == one.attributes["partitionkey"] == "OneToken"
    assert one.data["ticks"] == [{"token": "OneToken", "time": "2024-01-01T00:00:00Z",
                                  "price": 2.5, "source": "/feed"}]


def run_stream(ctx, sim, *, batch: int = 1) -> list[dict]:
    anomalies = []
    for index in range(0, len(sim.ticks), batch):
        for reply in handle_ticks(tick_event(sim.ticks[index:index + batch], f"t{index}"), ctx):
            assert reply.type == ANOMALY_DETECTED and not data_problems(reply)
            anomalies += reply.data["anomalies"]
    return anomalies


def test_temporal_analysis_flags_the_injected_anomalies_and_ignores_replays(ctx_of, redis_conn):
    ctx = ctx_of("temporal-analysis")
    sim = simulate_market(seed=3, tokens=2, minutes=20)
    anomalies = run_stream(ctx, sim, batch=10)
    # the alert policy raises what surprises the token: here 3 of 4 labels (a mild volume
    # spike minutes after a pump passes; docs/temporal.md)
    caught = [label for label in sim.labels
              if any(a["token"] == label["token"] and label["start"] <= a["time"] <= label["end"]
                     for a in anomalies)]
    assert len(caught) >= len(sim.labels) - 1
    assert {a["anomaly_type"] for a in anomalies} >= {label["kind"] for label in caught}
    token, buffer = sim.ticks[0]["token"], ReorderBuffer.from_settings(ctx.settings)
    raw = redis_conn.get(TEMPORAL_STATE.format(token=token))
    assert read_state(raw, buffer)["detector"]["last_time"] > 0
    replay = tick_event(sim.ticks[:500], "replayed")
    assert handle_ticks(replay, ctx) == []  # every tick is at or before the last processed one
    assert redis_conn.get(TEMPORAL_STATE.format(token=token)) == raw  # nothing written


def test_temporal_reply_names_the_token_when_there_is_one(ctx_of):
    ctx = ctx_of("temporal-analysis")
    sim = simulate_market(seed=4, tokens=1, minutes=15)
    replies = [handle_ticks(tick_event(sim.ticks[i:i + 20], f"e{i}"), ctx)
               for i in range(0, len(sim.ticks), 20)]
    token = sim.ticks[0]["token"]
    flagged = [(i, r) for i, rs in zip(range(0, len(sim.ticks), 20), replies) for r in rs]
    assert flagged and all(r.subject == r.attributes["partitionkey"] == token for _, r in flagged)
    assert all(r.id == derived_id(tick_event([], f"e{i}"), f"anomalies:{token}") for i, r in flagged)


def test_temporal_retries_when_another_replica_moves_a_token_on(ctx_of, redis_conn, monkeypatch):
    ctx = ctx_of("temporal-analysis")
    sim = simulate_market(seed=5, tokens=1, minutes=10)
    key = TEMPORAL_STATE.format(token=sim.ticks[0]["token"])
    run_stream(ctx, type(sim)(seed=sim.seed, ticks=sim.ticks[:60], labels=[]), batch=60)
    calls = []
    original = temporal_function.carry_on
    token, buffer = sim.ticks[0]["token"], ReorderBuffer.from_settings(ctx.settings)
    # what a second replica commits between our read and our write: five ticks more
    other_state, _ = temporal_function.analyse_token(token, read_state(redis_conn.get(key), buffer),
                                                     group_ticks(sim.ticks[60:65])[token])

    def racing(state, buffer_):
        monitor, waiting, before = original(state, buffer_)
        calls.append(monitor.last_time)
        if len(calls) == 1:
            redis_conn.set(key, json.dumps(other_state))
        return monitor, waiting, before

    monkeypatch.setattr(temporal_function, "carry_on", racing)
    handle_ticks(tick_event(sim.ticks[60:120], "raced"), ctx)
    assert len(calls) == 2 and calls[1] > calls[0]  # recomputed from the other replica's state
    final = read_state(redis_conn.get(key), buffer)
    assert final["detector"]["last_time"] == pytest.approx(time_of(sim.ticks[119]))


def time_of(tick: dict) -> float:
    return datetime.fromisoformat(tick["time"]).timestamp()


def test_two_replicas_on_the_same_stream_flag_each_anomaly_once(ctx_of, redis_conn):
    sim = simulate_market(seed=7, tokens=2, minutes=15)
    events = [tick_event(sim.ticks[i:i + 10], f"e{i}") for i in range(0, len(sim.ticks), 10)]
    key = TEMPORAL_STATE.format(token=sim.ticks[0]["token"])
    single = [a for e in events for r in handle_ticks(e, ctx_of("temporal-analysis"))
              for a in r.data["anomalies"]]
    single_state = redis_conn.get(key)
    redis_conn.flushdb()
    replies, errors = {}, []

    def replica():
        ctx = ctx_of("temporal-analysis")
        try:
            for event in events:  # both get every event, as with two Broker deliveries
                for reply in handle_ticks(event, ctx):  # whichever replica sent it: one id
                    assert replies.setdefault(reply.id, reply.data) == reply.data
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    found = [a for data in replies.values() for a in data["anomalies"]]
    key_of = lambda a: (a["token"], a["time"], a["anomaly_type"])  # noqa: E731
    assert sorted(map(key_of, found)) == sorted(map(key_of, single)) and single
    assert without_arrival(redis_conn.get(key)) == without_arrival(single_state)


def without_arrival(raw: bytes) -> dict:
    """A temporal state (its journal replayed) without the wall-clock times its waiting ticks
    arrived at."""
    state = read_state(raw, ReorderBuffer.from_settings(Settings.from_env()))
    state["reorder"]["pending"] = [entry[:3] for entry in state["reorder"]["pending"]]
    return state


def anomalies_event(event_id: str, *anomalies: dict):
    return new_event(ANOMALY_DETECTED, "/kades/temporal-analysis", {"anomalies": list(anomalies)},
                     event_id=event_id)


def anomaly(token: str, kind: str, score: float, when: str = "2024-01-01T00:00:00Z") -> dict:
    return {"token": token, "time": when, "anomaly_type": kind, "score": score,
            "detector": "test", "details": {"why": kind}}


def test_risk_scoring_stores_scores_replies_per_token_and_is_idempotent(kades_settings, db_conn,
                                                                       redis_conn):
    # alerts judged at once, not after the reorder buffer's idle wait
    ctx = Context("risk-scoring", settings=dataclasses.replace(kades_settings, reorder_idle_s=0.0))
    event = anomalies_event("a1", anomaly("TokenA", "liquidity_removal", 0.95),
                            anomaly("TokenB", "flash_crash", 0.6),
                            anomaly("TokenA", "wash_trading", 0.5))
    first, second, alert = handle_anomalies(event, ctx)  # TokenA crossed 0.7: an alert follows
    assert alert.type == "ai.kades.alert.issued.v1" and alert.subject == "TokenA"
    assert (first.type, first.subject, second.subject) == (RISK_SCORED, "TokenA", "TokenB")
    assert first.id == derived_id(event, "risk:TokenA") and not data_problems(first)
    assert first.data["level"] == "critical" and second.data["components"]["temporal"] == 0.6
    assert count(db_conn, "anomaly_events") == 3 and count(db_conn, "risk_scores") == 2
    again = handle_anomalies(event, ctx)  # redelivered after, say, a lost reply
    assert [e.data for e in again] == [first.data, second.data, alert.data]
    assert again[2].id == alert.id
    assert count(db_conn, "anomaly_events") == 3 and count(db_conn, "risk_scores") == 2
    later = anomalies_event("a2", anomaly("TokenB", "price_spike", 0.6, "2024-01-01T00:00:05Z"))
    third, *_ = handle_anomalies(later, ctx)
    assert third.data["components"]["temporal"] > 0.8  # evidence added up, not replaced
    assert count(db_conn, "risk_scores") == 3


def test_risk_scoring_rolls_back_rows_when_redis_conflicts(ctx_of, db_conn, redis_conn, monkeypatch):
    ctx = ctx_of("risk-scoring")
    key = RISK_STATE.format(token="TokenC")
    calls = []
    original = risk_function.score_token

    def racing(stored, token, *args, **kwargs):
        calls.append(token)
        if len(calls) == 1:
            redis_conn.set(key, json.dumps({"version": 2}))
        return original(stored, token, *args, **kwargs)

    monkeypatch.setattr(risk_function, "score_token", racing)
    reply, *_ = handle_anomalies(anomalies_event("c1", anomaly("TokenC", "wash_trading", 0.7)), ctx)
    assert len(calls) == 2 and reply.data["components"]["chain"] == 0.7
    assert count(db_conn, "anomaly_events") == 1 and count(db_conn, "risk_scores") == 1


def test_concurrent_risk_updates_of_one_token_both_count(ctx_of, redis_conn):
    events = [anomalies_event(f"r{i}", {**anomaly("TokenD", "wash_trading", 0.1),
                                        "details": {"wallet": i}}) for i in range(20)]
    errors = []

    def replica(mine):
        ctx = ctx_of("risk-scoring")
        try:
            for event in mine:
                # After repeated collisions a replica answers 503 and the Broker redelivers:
                # do the same (a loaded machine can make 8 attempts in a row collide).
                for _ in range(5):
                    try:
                        handle_anomalies(event, ctx)
                        break
                    except TemporaryFailure:
                        continue
                else:
                    raise AssertionError(f"{event.id} still collided after 5 deliveries")
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=replica, args=(events[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    state = json.loads(redis_conn.get(RISK_STATE.format(token="TokenD")))
    assert len(state["risk"]["evidence"]) == 20
    assert components_at(state["risk"], state["risk"]["latest"])["chain"] == pytest.approx(
        1 - 0.9 ** 20)


def test_threads_of_one_replica_take_turns_on_a_token(ctx_of, redis_conn, monkeypatch):
    """A hot token's anomalies on one replica's 8 threads: each event scored once, none
    answered 503 (they collided on the WATCH before: ~3.8 scorings an event, some 503s)."""
    ctx, scorings, real = ctx_of("risk-scoring"), [], risk_function.score_token

    def counted(*args, **kwargs):
        scorings.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(risk_function, "score_token", counted)
    events = [anomalies_event(f"t{i}", {**anomaly("TokenT", "wash_trading", 0.1),
                                        "details": {"wallet": i}}) for i in range(80)]
    failures = []

    def thread(mine):
        for event in mine:
            try:
                handle_anomalies(event, ctx)
            except TemporaryFailure as failure:
                failures.append(failure)

    threads = [threading.Thread(target=thread, args=(events[i::8],)) for i in range(8)]
    for each in threads:
        each.start()
    for each in threads:
        each.join()
    print(f"\n{len(events)} events on 8 threads: {len(scorings)} scorings, {len(failures)} 503s")
    assert failures == [] and scorings == ["TokenT"] * len(events)
    state = json.loads(redis_conn.get(RISK_STATE.format(token="TokenT")))
    assert len(state["risk"]["evidence"]) == len(events)


def test_simulated_market_flows_from_feed_to_risk(ctx_of, db_conn):
    market, temporal, risk = (ctx_of(n) for n in ("market-aggregator", "temporal-analysis",
                                                   "risk-scoring"))
    sim = simulate_market(seed=11, tokens=3, minutes=20)
    scored = {}
    for feed in feed_events(sim, source="/kades/simulator"):
        for ticks in handle_feed(feed, market):
            for anomalies in handle_ticks(ticks, temporal):
                for event in handle_anomalies(anomalies, risk):
                    scored[event.subject] = event.data
    assert set(scored) == {label["token"] for label in sim.labels}
    assert all(data["components"]["temporal"] > 0.5 for data in scored.values())
    assert count(db_conn, "token_metrics") == len(sim.ticks)
    # one alert per event, what surprises the token: 5 of these 6 labels are alerted
    assert count(db_conn, "anomaly_events") >= len(sim.labels) - 1


def test_temporal_stores_the_notable_tick_scores_once(ctx_of, db_conn):
    ctx = ctx_of("temporal-analysis")
    floor = ctx.settings.temporal_score_floor
    sim = simulate_market(seed=8, tokens=2, minutes=10)
    events = [tick_event(sim.ticks[i:i + 40], f"s{i}") for i in range(0, len(sim.ticks), 40)]
    for event in events + events[:3]:  # the first three redelivered
        handle_ticks(event, ctx)
    rows = db_conn.execute("SELECT token, time, score, top_detector FROM temporal_scores").fetchall()
    assert 0 < len(rows) < len(sim.ticks) / 4  # calm ticks are not stored
    assert all(floor <= score <= 1 and top for _, _, score, top in rows)
    for label in sim.labels:  # every injected anomaly left a high score in its window
        assert any(token == label["token"] and score >= 0.5
                   and label["start"] <= time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") <= label["end"]
                   for token, time, score, _ in rows), label


def test_a_database_failure_after_the_state_commit_loses_nothing(ctx_of, db_conn, monkeypatch):
    """First attempt: the state commits, then PostgreSQL fails (a 503, the Broker retries).
    The retry finds the ticks already counted, yet stores and replies what they raised."""
    import psycopg
    sim = simulate_market(seed=7, tokens=2, minutes=15)
    events = [tick_event(sim.ticks[i:i + 10], f"e{i}") for i in range(0, len(sim.ticks), 10)]
    ctx = ctx_of("temporal-analysis")
    expected = {e.id: handle_ticks(e, ctx) for e in events}
    stored = count(db_conn, "temporal_scores")
    (failing, reply) = next((e, r) for e in events if (r := expected[e.id]))
    db_conn.execute("TRUNCATE temporal_scores")
    db_conn.commit()
    ctx.redis.flushdb()
    ctx = ctx_of("temporal-analysis")  # a fresh process: no cached state of the first run
    for event in events[:events.index(failing)]:
        handle_ticks(event, ctx)
    real_db = Context.db

    def database_away(self):
        raise psycopg.OperationalError("database away")
    monkeypatch.setattr(Context, "db", database_away)
    with pytest.raises(psycopg.OperationalError):
        handle_ticks(failing, ctx)
    monkeypatch.setattr(Context, "db", real_db)
    again = handle_ticks(failing, ctx)  # the Broker's retry
    assert again and [(r.id, r.data) for r in again] == [(r.id, r.data) for r in reply]
    for event in events[events.index(failing) + 1:]:
        handle_ticks(event, ctx)
    assert count(db_conn, "temporal_scores") == stored  # every score stored, none twice


def test_ticks_in_no_order_and_twice_give_what_the_ordered_feed_gives(ctx_of, db_conn,
                                                                      monkeypatch):
    """As the channel-based Broker delivers: events shuffled within a bounded lateness, some
    twice, some late; the same anomalies and the same stored scores as in order."""
    import random
    sim = simulate_market(seed=11, tokens=3, minutes=30)
    events = [tick_event(sim.ticks[i:i + 6], f"e{i}") for i in range(0, len(sim.ticks), 6)]

    def run(order: list) -> tuple[list, list]:
        ctx = ctx_of("temporal-analysis")  # a fresh process each run
        ctx.redis.flushdb()
        db_conn.execute("TRUNCATE temporal_scores")
        db_conn.commit()
        clock = iter(range(10**6))
        monkeypatch.setattr(temporal_function.time, "time", lambda: float(next(clock)))
        replies = {}
        for event in order:
            for reply in handle_ticks(event, ctx):
                replies[reply.id] = reply.data["anomalies"]
        flush = new_event(PING, "/apis/v1/namespaces/kades/pingsources/stream-flush",
                          {"job": "flush"}, event_id="flush")
        monkeypatch.setattr(temporal_function.time, "time", lambda: 1e9)  # long quiet
        for reply in handle_ticks(flush, ctx):
            replies[reply.id] = reply.data["anomalies"]
        found = sorted((a["token"], a["time"], a["anomaly_type"]) for rows in replies.values()
                       for a in rows)
        db_conn.rollback()
        scores = db_conn.execute("SELECT token, time, score FROM temporal_scores"
                                 " ORDER BY 1, 2").fetchall()
        return found, scores

    ordered = run(events)
    rng = random.Random(5)
    shuffled = [e for _, e in sorted((i + rng.uniform(0, 3), e) for i, e in enumerate(events))]
    shuffled += rng.sample(events, 15)  # redeliveries
    assert ordered[0], "the simulated market raised nothing to compare"
    assert run(shuffled) == ordered


def test_risk_scoring_retried_after_its_commit_stores_and_replies_the_same_once(
        ctx_of, db_conn, redis_conn, monkeypatch):
    """The first attempt commits its rows and state, then fails (the process, or the answer
    lost); a later event moves the token's risk on; the retry must store no second row and
    reply what the first attempt scored -- not the token's risk at another time."""
    from kades.errors import TemporaryFailure
    from kades.runtime import faults
    ctx = ctx_of("risk-scoring")
    first = anomalies_event("r1", anomaly("TokenF", "flash_crash", 0.6, "2024-01-01T00:00:00Z"))
    second = anomalies_event("r2", anomaly("TokenF", "price_spike", 0.7, "2024-01-01T00:10:00Z"))

    def failing(step: str) -> None:
        raise TemporaryFailure(f"failed {step}")
    monkeypatch.setattr(faults, "point", failing)
    with pytest.raises(TemporaryFailure):
        handle_anomalies(first, ctx)
    monkeypatch.undo()
    handle_anomalies(second, ctx)
    retried = handle_anomalies(first, ctx)
    assert [e.id for e in retried] == [derived_id(first, "risk:TokenF")]
    assert retried[0].data["time"] == "2024-01-01T00:00:00Z"  # as the first attempt scored
    assert count(db_conn, "risk_scores") == 2 and count(db_conn, "anomaly_events") == 2


def test_two_ticks_of_one_token_at_the_same_second_count_the_same_in_either_order(
        ctx_of, redis_conn):
    """Chain ticks are timed to the second and slots share seconds: two different ticks of a
    token at one time must be taken the same way whichever arrives first."""
    base = simulate_market(seed=3, tokens=1, minutes=5).ticks
    twin = {**base[30], "price": base[30]["price"] * 1.5}

    def final_detector(order: list[list[dict]]) -> dict:
        redis_conn.flushdb()
        ctx = ctx_of("temporal-analysis")  # a fresh process each order
        for index, ticks in enumerate(order):
            handle_ticks(tick_event(ticks, f"t{index}"), ctx)
        state = json.loads(redis_conn.get(TEMPORAL_STATE.format(token=base[0]["token"])))
        return state["detector"]

    before, after = base[:30], base[31:]
    one = final_detector([before, [base[30]], [twin], after])
    other = final_detector([before, [twin], [base[30]], after])
    assert one == other
