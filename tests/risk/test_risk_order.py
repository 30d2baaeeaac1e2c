"""risk-scoring gives the same results whatever the delivery order and however often an
anomaly arrives (issue 13, item 1), on real Redis and PostgreSQL.

One labelled anomaly stream (three tokens: one that climbs to a rug, one that hovers around
the alert threshold, one that stays calm) is fed in several random orders, each shuffled
within windows shorter than the allowed lateness, with some events delivered twice and some
anomalies sent again in another event under a new id. Every order must leave the same state,
the same stored risk rows (the same value at each token and time) and the same alerts (ids
and contents), each alert once.
"""
from __future__ import annotations

import dataclasses
import json
import random

import pytest

from kades.events.catalogue import ALERT, ANOMALY_DETECTED, PING, SENTIMENT_SCORED, new_event
from kades.keys import RISK_STATE
from kades.risk.function import handle_anomalies
from kades.runtime import Context

START = 1_704_067_200  # 2024-01-01T00:00:00Z
STEP_S = 5
WINDOW = 5             # events shuffled within 25 s of event time: under the 30 s lateness


def at(offset_s: int) -> str:
    return f"2024-01-01T{offset_s // 3600:02d}:{offset_s // 60 % 60:02d}:{offset_s % 60:02d}Z"


def stream() -> list:
    """Events in time order, each with one or two anomalies of one token or two."""
    rng = random.Random(7)
    events = []
    for step in range(60):
        offset, anomalies = step * STEP_S, []
        if step % 3 == 0:  # Climbing: temporal noise, wash trading, then the liquidity pulled
            kind = "liquidity_removal" if step == 45 else rng.choice(
                ["price_spike", "volume_spike", "wash_trading"])
            anomalies.append({"token": "Climbing", "time": at(offset), "anomaly_type": kind,
                              "score": 0.97 if step == 45 else round(rng.uniform(0.2, 0.5), 3),
                              "detector": "test", "details": {"step": step}})
        if step % 4 == 1:  # Hovering: evidence that keeps it near 0.7
            anomalies.append({"token": "Hovering", "time": at(offset),
                              "anomaly_type": rng.choice(["flash_crash", "accumulation"]),
                              "score": round(rng.uniform(0.3, 0.75), 3), "detector": "test"})
        if step % 7 == 2:
            anomalies.append({"token": "Calm", "time": at(offset), "anomaly_type": "mention_burst",
                              "score": 0.2, "detector": "test"})
        if anomalies:
            events.append(new_event(ANOMALY_DETECTED, "/kades/test", {"anomalies": anomalies},
                                    event_id=f"e{step}", time=at(offset)))
        if step % 5 == 3:  # Hyped: its rolling sentiment extreme, then calm (the newest counts)
            events.append(new_event(SENTIMENT_SCORED, "/kades/sentiment", {
                "token": "Hyped", "time": at(offset), "window": "1h",
                "score": 0.95 if step < 20 else 0.2}, event_id=f"s{step}", time=at(offset)))
        if step % 9 == 0:  # another detector's anomaly of the same token at the same second
            events.append(new_event(ANOMALY_DETECTED, "/kades/whales", {"anomalies": [
                {"token": "Climbing", "time": at(offset), "anomaly_type": "whale_movement",
                 "score": 0.3, "detector": "whales"}]}, event_id=f"w{step}", time=at(offset)))
    return events


def delivery(events: list, seed: int) -> list:
    """`events` shuffled within windows, 15 % delivered twice, 15 % of the anomalies sent again
    under a new id (as another detector's event carrying them would be)."""
    rng = random.Random(seed)
    out = []
    for first in range(0, len(events), WINDOW):
        window = list(events[first:first + WINDOW])
        for event in list(window):
            if rng.random() < 0.15:
                window.append(event)
            if rng.random() < 0.15 and event.type == ANOMALY_DETECTED:
                window.append(new_event(ANOMALY_DETECTED, "/kades/other", event.data,
                                        event_id=f"copy-{event.id}", time=event.attributes["time"]))
        rng.shuffle(window)
        out += window
    return out


def steady(state: dict) -> dict:
    """A token's state without wall-clock arrival times (when an item came, not what)."""
    points = dict(state.get("points", {}))
    points["pending"] = [entry[:3] for entry in points.get("pending", [])]
    return {**state, "points": points}


def run(order: list, ctx: Context, flush: Context, redis_conn, db_conn) -> dict:
    redis_conn.flushdb()
    db_conn.execute("DELETE FROM risk_scores")
    db_conn.execute("DELETE FROM anomaly_events")
    db_conn.commit()
    alerts = []
    for event in order:
        alerts += [(r.id, json.dumps(r.data, sort_keys=True))
                   for r in handle_anomalies(event, ctx) if r.type == ALERT]
    states = {token: steady(json.loads(redis_conn.get(RISK_STATE.format(token=token))))
              for token in ("Climbing", "Hovering", "Calm", "Hyped")}
    # the decay job a day later, judging what waited: the last points and the clearing
    ping = new_event(PING, "/apis/v1/namespaces/kades/pingsources/risk-decay",
                     {"job": "risk-decay"}, time="2024-01-02T00:00:00Z", event_id="ping")
    alerts += [(r.id, json.dumps(r.data, sort_keys=True))
               for r in handle_anomalies(ping, flush) if r.type == ALERT]
    db_conn.rollback()
    rows = db_conn.execute("SELECT token, time, score, level, components, explanation"
                           " FROM risk_scores").fetchall()
    values = {}
    for token, moment, score, level, components, explanation in rows:
        values.setdefault((token, moment.isoformat()), set()).add(
            json.dumps([score, level, components, explanation], sort_keys=True))
    return {"states": states, "rows": values, "alerts": alerts}


@pytest.fixture
def contexts(kades_settings, redis_conn, db_conn):
    return (Context("risk-scoring", settings=kades_settings),
            Context("risk-scoring", settings=dataclasses.replace(kades_settings,
                                                                 reorder_idle_s=0.0)))


def test_any_order_with_duplicates_gives_the_same_state_rows_and_alerts(
        contexts, redis_conn, db_conn):
    ctx, flush = contexts
    events = stream()
    reference = run(events, ctx, flush, redis_conn, db_conn)
    kinds = [json.loads(data)["kind"] for _, data in reference["alerts"]]
    assert {"raised", "escalated", "cleared"} <= set(kinds)  # the stream does raise alerts
    assert all(len(found) == 1 for found in reference["rows"].values())  # one value a time
    hyped = {moment[11:19]: json.loads(next(iter(found)))[2]["sentiment"]
             for (token, moment), found in reference["rows"].items() if token == "Hyped"}
    # extreme while it was, then nothing once calm (the last extreme report had counted on)
    assert hyped["00:01:30"] == pytest.approx(0.9) and hyped["00:01:55"] == 0.0
    for seed in (1, 2, 3):
        order = delivery(events, seed)
        assert order != events and len(order) > len(events)
        result = run(order, ctx, flush, redis_conn, db_conn)
        assert result["states"] == reference["states"]
        assert result["rows"] == reference["rows"]
        # the same alerts, each id once with one content (a replayed event re-sends its own
        # alerts under the same id: alert-dispatch publishes an id once)
        assert dict(result["alerts"]) == dict(reference["alerts"])
        assert len(dict(result["alerts"])) == len(reference["alerts"])


def test_a_late_extreme_report_behind_many_calm_ones_keeps_its_own_row(contexts, redis_conn,
                                                                       db_conn):
    """Snapshots were kept as the 16 newest: an extreme report delivered after 16 calm ones
    that followed it (all within the lateness) was dropped at once, and its own row was
    rescored without it (sentiment 0.0 where the order it was sent in gave 0.98)."""
    ctx, _ = contexts

    def report(second: int, score: float):
        return new_event(SENTIMENT_SCORED, "/kades/sentiment", {
            "token": "Late", "time": at(second), "window": "1h", "score": score,
            "mentions": 9, "unique_authors": 9}, event_id=f"r{second}", time=at(second))
    reports = [report(0, -0.99)] + [report(second, 0.1) for second in range(1, 18)]
    found = []
    for order in (reports, reports[1:] + reports[:1]):
        redis_conn.flushdb()
        db_conn.execute("DELETE FROM risk_scores")
        db_conn.commit()
        for event in order:
            handle_anomalies(event, ctx)
        db_conn.rollback()
        found.append(dict(db_conn.execute(
            "SELECT time, components FROM risk_scores WHERE token = 'Late'").fetchall()))
    assert found[0] == found[1]
    first = min(found[0])
    assert found[0][first]["sentiment"] == pytest.approx(0.98)
