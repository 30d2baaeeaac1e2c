"""Alerts from risk: hysteresis (pure) and the risk-scoring handler on real Redis/PostgreSQL."""
from __future__ import annotations

import dataclasses
import threading

import pytest

from kades.events.catalogue import (ALERT, ANOMALY_DETECTED, SENTIMENT_SCORED, data_problems,
                                    new_event)
from kades.risk.alerting import alert_transition, channels_of
from kades.keys import TRACKED_THRESHOLDS
from kades.risk.function import handle_anomalies
from kades.runtime import Context


def test_a_score_hovering_at_the_threshold_raises_one_alert():
    scores = [0.65, 0.71, 0.69, 0.72, 0.68, 0.70, 0.66, 0.71, 0.55, 0.58, 0.72]
    state, kinds = None, []
    for score in scores:
        level = "high" if score >= 0.7 else "medium"
        state, alert = alert_transition(state, score=score, level=level, threshold=0.7,
                                        hysteresis=0.1)
        kinds.append(alert and alert["kind"])
    # raised once at 0.71, cleared only below 0.6 (at 0.55), raised again at 0.72
    assert [k for k in kinds if k] == ["raised", "cleared", "raised"]
    assert kinds[1] == "raised" and kinds[8] == "cleared" and kinds[10] == "raised"


def test_without_hysteresis_the_same_scores_flap():
    state, alerts = None, 0
    for score in [0.71, 0.69, 0.72, 0.68, 0.70]:
        state, alert = alert_transition(state, score=score, level="high", threshold=0.7,
                                        hysteresis=0.0)
        alerts += alert is not None
    assert alerts == 5  # what the hysteresis band above prevents


def test_escalation_is_announced_while_raised():
    state, _ = alert_transition(None, score=0.75, level="high", threshold=0.7)
    state, alert = alert_transition(state, score=0.92, level="critical", threshold=0.7)
    assert alert == {"kind": "escalated"} and state["level"] == "critical"
    state, alert = alert_transition(state, score=0.8, level="high", threshold=0.7)
    assert alert is None  # going down a level but staying above the band says nothing


def test_channels_follow_the_anomaly_types():
    assert channels_of([{"anomaly_type": "wash_trading"}, {"anomaly_type": "whale_distribution"},
                        {"anomaly_type": "liquidity_removal"}]) == [
        "anomalies", "patterns", "wash_trading", "whale_movements", "liquidityChanges"]


@pytest.fixture
def ctx(kades_settings, redis_conn, db_conn):
    # every scored time judged at once (no idle wait): these tests are about levels, not order
    return Context("risk-scoring", settings=dataclasses.replace(kades_settings, reorder_idle_s=0.0))


def anomalies(event_id, token, score, when="2024-01-01T00:00:00Z"):
    return new_event(ANOMALY_DETECTED, "/kades/test", {"anomalies": [{
        "token": token, "time": when, "anomaly_type": "flash_crash", "score": score,
        "detector": "test"}]}, event_id=event_id)


def track(db_conn, redis_conn, token: str, threshold: float) -> None:
    """A tracking as the api makes it: its row, and its lowest threshold published."""
    from kades.storage import apikeys, tracking
    key_id, _ = apikeys.create_key(db_conn, tier="standard")
    lowest = tracking.track_token(db_conn, key_id=key_id, token=token, alert_threshold=threshold,
                                  update_interval=60)
    tracking.publish_threshold(redis_conn, token, lowest)
    db_conn.commit()


def test_tracked_threshold_decides_when_the_alert_fires(ctx, redis_conn):
    redis_conn.hset(TRACKED_THRESHOLDS, "Watched", 0.3)
    replies = handle_anomalies(anomalies("e1", "Watched", 0.45), ctx)  # risk ~0.36
    alerts = [r for r in replies if r.type == ALERT]
    assert len(alerts) == 1 and not data_problems(alerts[0])
    assert alerts[0].data["threshold"] == 0.3 and alerts[0].data["kind"] == "raised"
    # the same evidence on an untracked token stays under the default threshold (0.7)
    assert [r.type for r in handle_anomalies(anomalies("e2", "Other", 0.45), ctx)] != [ALERT]
    assert all(r.type != ALERT for r in handle_anomalies(anomalies("e3", "Other", 0.45), ctx))


def test_evidence_at_a_time_already_judged_raises_the_alert_it_calls_for(ctx):
    """A rug reported after a small anomaly of the same second, once that second's risk was
    judged: its point was a duplicate of the judged one, and a critical risk raised no alert,
    then or at any ping after."""
    first = handle_anomalies(anomalies("small", "SameSecond", 0.3), ctx)
    assert [r.type for r in first] != [ALERT] and all(r.type != ALERT for r in first)
    rug = new_event(ANOMALY_DETECTED, "/kades/test", {"anomalies": [{
        "token": "SameSecond", "time": "2024-01-01T00:00:00Z", "anomaly_type": "liquidity_removal",
        "score": 0.95, "detector": "other"}]}, event_id="rug")
    replies = handle_anomalies(rug, ctx)
    raised = [r.data for r in replies if r.type == ALERT]
    assert [(a["kind"], a["level"]) for a in raised] == [("raised", "critical")]
    again = [r.id for r in handle_anomalies(rug, ctx) if r.type == ALERT]  # a redelivery:
    assert again == [r.id for r in replies if r.type == ALERT]  # the same alert, dropped downstream


def sentiment(score: float, when: str = "2024-01-01T00:00:00Z"):
    return new_event(SENTIMENT_SCORED, "/kades/s", {"token": "T", "time": when, "window": "1h",
                                                    "score": score})


def test_extreme_sentiment_feeds_the_sentiment_component(ctx):
    risk, = handle_anomalies(sentiment(0.3), ctx)  # calm: nothing
    assert risk.data["components"]["sentiment"] == 0.0 and risk.data["score"] == 0.0
    risk, = handle_anomalies(sentiment(0.95, "2024-01-01T00:00:01Z"), ctx)
    # hype alone is no rug: 0.85 x 0.82, under the alert
    assert risk.data["components"]["sentiment"] == pytest.approx(0.9)
    assert risk.data["score"] == pytest.approx(0.85 * (1 - 0.1 ** 0.75), abs=1e-4)
    assert risk.data["level"] == "medium"
    assert [e["anomaly_type"] for e in risk.data["explanation"]] == ["sentiment_extreme"]


def test_a_calm_report_ends_the_extreme_one_before_it(ctx):
    """A report that was not extreme was dropped, so a token's last extreme report counted
    on, decaying over hours, whatever its sentiment since: its alert stood that long."""
    handle_anomalies(anomalies("base", "T", 0.8), ctx)
    replies = handle_anomalies(sentiment(-0.99, "2024-01-01T00:00:10Z"), ctx)  # panic
    assert [(r.data["kind"], r.data["level"]) for r in replies if r.type == ALERT] == [("raised", "high")]
    replies = handle_anomalies(sentiment(-0.1, "2024-01-01T00:01:00Z"), ctx)  # calm again
    risk = next(r.data for r in replies if r.type != ALERT)
    assert risk["components"]["sentiment"] == 0.0
    assert [e["anomaly_type"] for e in risk["explanation"]] == ["flash_crash"]  # not the panic
    assert [r.data["kind"] for r in replies if r.type == ALERT] == ["cleared"]


def ping(when: str):
    from kades.events.catalogue import PING
    return new_event(PING, "/apis/v1/namespaces/kades/pingsources/risk-decay",
                     {"job": "risk-decay"}, time=when, event_id=f"ping-{when}")


def test_a_threshold_lowered_since_is_met_at_the_next_ping(ctx, db_conn, redis_conn):
    """A ping only ever cleared: a token whose risk stood at 0.55, tracked at 0.3 since, got
    no alert until its next anomaly."""
    assert all(r.type != ALERT for r in handle_anomalies(anomalies("e1", "Lowered", 0.6), ctx))
    track(db_conn, redis_conn, "Lowered", 0.3)
    raised = [r.data for r in handle_anomalies(ping("2024-01-01T00:05:00Z"), ctx)
              if r.type == ALERT and r.data["token"] == "Lowered"]
    assert [(a["kind"], a["threshold"]) for a in raised] == [("raised", 0.3)]
    again = [r for r in handle_anomalies(ping("2024-01-01T00:10:00Z"), ctx)
             if r.type == ALERT and r.data["token"] == "Lowered"]
    assert again == []  # raised once


def test_a_tracked_threshold_redis_lost_is_restored_from_the_database(ctx, db_conn, redis_conn):
    """The thresholds lived in Redis only: lost (a Redis moved without its keys, a failover
    that dropped a write), risk-scoring alerted from the default 0.7 while the api still
    listed the caller's 0.3, and nothing wrote them again."""
    from kades.storage import apikeys, tracking
    key_id, _ = apikeys.create_key(db_conn, tier="standard")
    tracking.track_token(db_conn, key_id=key_id, token="Forgotten", alert_threshold=0.3,
                         update_interval=60)
    tracking.track_token(db_conn, key_id=key_id, token="Kept", alert_threshold=0.2,
                         update_interval=60)
    db_conn.commit()
    redis_conn.hset(TRACKED_THRESHOLDS, "Kept", 0.5)  # not the table's: a change lost, or one
    redis_conn.hset(TRACKED_THRESHOLDS, "Dropped", 0.05)  # whose commit failed; nobody's now
    assert all(r.type != ALERT for r in handle_anomalies(anomalies("e1", "Forgotten", 0.6), ctx))
    raised = [r.data for r in handle_anomalies(ping("2024-01-01T00:05:00Z"), ctx)
              if r.type == ALERT and r.data["token"] == "Forgotten"]
    assert [(a["kind"], a["threshold"]) for a in raised] == [("raised", 0.3)]
    assert redis_conn.hgetall(TRACKED_THRESHOLDS) == {b"Forgotten": b"0.3", b"Kept": b"0.2"}


def test_an_anomaly_older_than_a_pings_row_rescores_that_row(ctx, db_conn):
    """Rows were rescored from an anomaly's time only when it was older than the token's
    newest anomaly: a ping's row after it, the token's latest, stayed low under a high
    risk (what GET /v1/token/{address}/analysis and the dashboard's lists read)."""
    from kades.storage.repository import latest_risk_score
    handle_anomalies(anomalies("small", "PingRow", 0.3), ctx)
    handle_anomalies(ping("2024-01-01T00:05:00Z"), ctx)
    handle_anomalies(anomalies("rug", "PingRow", 0.95, when="2024-01-01T00:04:50Z"), ctx)
    latest = latest_risk_score(db_conn, "PingRow")
    assert latest["time"].minute == 5 and latest["score"] > 0.7  # not the 0.2 before it


def undo_its_database_commit(db_conn, token: str, event_id: str, *, ping_score: float) -> None:
    """The database as an event's failed commit left it (Redis, which commits first, keeps its
    state and outbox): none of its rows, and the 00:05 ping row it rescored at its score before."""
    for table in ("risk_scores", "anomaly_events"):
        db_conn.execute(f"DELETE FROM {table} WHERE token = %s AND event_id = %s", (token, event_id))
    db_conn.execute("UPDATE risk_scores SET score = %s WHERE token = %s"
                    " AND time = '2024-01-01T00:05:00Z'", (ping_score, token))
    db_conn.commit()


def test_a_redelivery_after_the_database_commit_failed_redoes_the_rescoring_too(ctx, db_conn):
    """Redis (state and outbox) commits before the database: when the database's commit
    failed, the retry redid the event's rows from the outbox but not the rows it rescored,
    which stayed low for good (the state had moved on)."""
    from kades.storage.repository import latest_risk_score
    handle_anomalies(anomalies("small", "Redone", 0.3), ctx)
    handle_anomalies(ping("2024-01-01T00:05:00Z"), ctx)
    before = latest_risk_score(db_conn, "Redone")["score"]
    late = anomalies("rug", "Redone", 0.95, when="2024-01-01T00:04:50Z")
    handle_anomalies(late, ctx)
    undo_its_database_commit(db_conn, "Redone", "rug", ping_score=before)
    handle_anomalies(late, ctx)  # the Broker's retry: the outbox answers
    latest = latest_risk_score(db_conn, "Redone")
    assert latest["time"].minute == 5 and latest["score"] > 0.7 > before


def test_a_redone_rescoring_does_not_lower_what_a_later_commit_rescored(ctx, db_conn):
    """The retry rescores by the token's state as it is now: by the state its own commit had,
    it lowered the rows a later event had rescored with more evidence."""
    from kades.storage.repository import latest_risk_score
    handle_anomalies(anomalies("small", "Passed", 0.3), ctx)
    handle_anomalies(ping("2024-01-01T00:05:00Z"), ctx)  # a row at 00:05
    before = latest_risk_score(db_conn, "Passed")["score"]
    first = anomalies("first", "Passed", 0.5, when="2024-01-01T00:04:50Z")
    handle_anomalies(first, ctx)
    undo_its_database_commit(db_conn, "Passed", "first", ping_score=before)
    handle_anomalies(anomalies("later", "Passed", 0.95, when="2024-01-01T00:04:55Z"), ctx)
    rescored = latest_risk_score(db_conn, "Passed")["score"]
    handle_anomalies(first, ctx)  # the retry of the first: its outbox answers
    assert latest_risk_score(db_conn, "Passed")["score"] == rescored > 0.7


def row_at(db_conn, token: str, when: str) -> float:
    return db_conn.execute("SELECT score FROM risk_scores WHERE token = %s AND time = %s",
                           (token, when)).fetchone()[0]


def test_a_retry_whose_database_commit_failed_stores_its_row_with_what_came_since(ctx, db_conn):
    """Its Redis state committed, its rows not: a late anomaly then rescored the token's rows
    without them, and the retry stored its row from the outbox as it had computed it, for
    good without the late anomaly."""
    handle_anomalies(anomalies("small", "Retried", 0.3), ctx)
    own = anomalies("own", "Retried", 0.3, when="2024-01-01T00:01:00Z")
    handle_anomalies(own, ctx)
    for table in ("risk_scores", "anomaly_events"):  # its database commit failed
        db_conn.execute(f"DELETE FROM {table} WHERE event_id = 'own'")
    db_conn.commit()
    handle_anomalies(anomalies("rug", "Retried", 0.95, when="2024-01-01T00:00:30Z"), ctx)
    handle_anomalies(own, ctx)  # the Broker's retry: the outbox answers
    assert row_at(db_conn, "Retried", "2024-01-01T00:01:00Z") > 0.7


def test_a_replay_leaves_its_rows_older_than_the_lateness_as_they_are(ctx, db_conn):
    """A retry answered by its outbox rescored its own rows from their time whatever their
    age: a replay days later rewrote an hour of rows from a state whose weakest evidence had
    since been dropped, where a commit's rescoring leaves rows older than the lateness."""
    own = anomalies("own", "Replayed", 0.5)
    handle_anomalies(own, ctx)
    handle_anomalies(anomalies("later", "Replayed", 0.5, when="2024-01-01T01:00:00Z"), ctx)
    db_conn.execute("UPDATE risk_scores SET score = 0.123 WHERE token = 'Replayed'")
    db_conn.commit()
    handle_anomalies(own, ctx)  # replayed: its outbox answers
    assert [row[0] for row in db_conn.execute(
        "SELECT score FROM risk_scores WHERE token = 'Replayed' ORDER BY time")] == [0.123, 0.123]


def test_a_rescoring_waits_for_the_rows_another_replica_has_not_committed(ctx, db_conn):
    """One replica's Redis state commits before its rows: another, rescoring the token from a
    late anomaly meanwhile, read that state but not those rows, which kept a risk without it."""
    import contextlib
    import time
    handle_anomalies(anomalies("small", "Racing", 0.3), ctx)
    other, stored, release = Context("risk-scoring", settings=ctx.settings), threading.Event(), \
        threading.Event()
    real_db = other.db

    @contextlib.contextmanager
    def paused_db(timeout=None):  # the other replica: its Redis state in, its rows not yet
        with real_db(timeout) as conn:
            yield conn
            stored.set()
            release.wait(10)
    other.db = paused_db
    first = threading.Thread(target=handle_anomalies, args=(
        anomalies("first", "Racing", 0.3, when="2024-01-01T00:01:00Z"), other))
    first.start()
    assert stored.wait(10)
    late = threading.Thread(target=handle_anomalies, args=(
        anomalies("late", "Racing", 0.95, when="2024-01-01T00:00:30Z"), ctx))
    late.start()
    time.sleep(0.5)  # without waiting for the rows, it rescored and committed by now
    release.set()
    first.join(10)
    late.join(10)
    db_conn.commit()  # (a fresh snapshot)
    assert row_at(db_conn, "Racing", "2024-01-01T00:01:00Z") > 0.7


def test_the_decay_job_fades_risk_and_clears_the_alert(ctx, db_conn):
    raised = [r for r in handle_anomalies(anomalies("crash", "Fading", 0.99), ctx) if r.type == ALERT]
    assert [a.data["kind"] for a in raised] == ["raised"]
    # an hour later: still high; a day later (half-life 6 h): cleared, exactly once, at the
    # time the risk fell below 0.6 (threshold 0.7 - hysteresis 0.1): temporal 0.99 decayed
    # until 0.85 x (1 - (1 - c) ** 0.75) < 0.6, 1 h 47 min 52 s after the crash
    hour = handle_anomalies(ping("2024-01-01T01:00:00Z"), ctx)
    assert [r.type for r in hour] == ["ai.kades.risk.scored.v1"]
    day = handle_anomalies(ping("2024-01-02T00:00:00Z"), ctx)
    risk = next(r for r in day if r.type != ALERT)
    assert risk.data["score"] < 0.1 and risk.data["time"] == "2024-01-02T00:00:00Z"
    cleared = [r for r in day if r.type == ALERT]
    assert [r.data["kind"] for r in cleared] == ["cleared"]
    assert cleared[0].data["time"] == "2024-01-01T01:47:52Z" and cleared[0].data["score"] < 0.6
    # the same ping again (a redelivery) announces the very same thing; a later one nothing
    again = handle_anomalies(ping("2024-01-02T00:00:00Z"), ctx)
    assert [r.id for r in again] == [r.id for r in day]
    assert all(r.type != ALERT for r in handle_anomalies(ping("2024-01-02T00:05:00Z"), ctx))
    rows = db_conn.execute("SELECT count(*) FROM risk_scores WHERE token = 'Fading'").fetchone()[0]
    assert rows == 4


def test_a_threshold_at_the_hysteresis_clears_once_the_risk_rounds_to_zero(ctx, db_conn,
                                                                           redis_conn):
    """A tracked alert_threshold of 0.1 (the api allows 0 to 1) made the band reach 0: the
    risk-decay ping searched forever for the time the risk would fall below it, for every
    token of the job, and each retry spun another worker."""
    track(db_conn, redis_conn, "Low", 0.1)
    raised = [r for r in handle_anomalies(anomalies("low", "Low", 0.99), ctx) if r.type == ALERT]
    assert [a.data["kind"] for a in raised] == ["raised"]
    answered: list = []  # in a thread: a search that never ends fails the test, not the suite
    job = threading.Thread(target=lambda: answered.append(
        handle_anomalies(ping("2024-01-08T00:00:00Z"), ctx)), daemon=True)
    job.start()
    job.join(30)
    assert answered, "the risk-decay ping did not end within 30 s"
    week = [r for r in answered[0] if r.type == ALERT]
    assert [r.data["kind"] for r in week] == ["cleared"]  # half-life 6 h: it rounds to 0 in days
    assert week[0].data["score"] == 0.0 and week[0].data["time"] < "2024-01-08T00:00:00Z"


def test_the_decay_job_leaves_faded_tokens_and_scores_a_bounded_number_per_ping(
        ctx, redis_conn, monkeypatch):
    """A flood of new tokens goes quiet for good: the job scores a token until its risk rounds
    to 0 (that last score stored and replied), then leaves it, and its state expires. It took
    every token state ever written, all in one WATCH, every 5 minutes: seconds of Redis time
    at a few thousand tokens, a row and an event for each."""
    from kades.keys import RISK_LIVE, RISK_LIVE_SWEPT, RISK_STATE
    from kades.risk import function as risk
    for n, when in enumerate(["2024-01-01T00:00:00Z"] * 3 + ["2024-01-08T00:00:00Z"]):
        handle_anomalies(anomalies(f"a{n}", f"T{n}", 0.9, when), ctx)
    monkeypatch.setattr(risk, "DECAY_PER_PING", 2)

    def scored(when: str) -> list[str]:
        return sorted(r.data["token"] for r in handle_anomalies(ping(when), ctx)
                      if r.type != ALERT)

    first, second = scored("2024-01-08T00:10:00Z"), scored("2024-01-08T00:15:00Z")
    assert len(first) == 2 and len(second) == 2  # least recently scored first, two a ping
    assert sorted(first + second) == ["T0", "T1", "T2", "T3"]
    # a week after their anomaly T0-T2 rounded to 0: scored once at 0, then left
    assert redis_conn.zrange(RISK_LIVE, 0, -1) == [b"T3"]
    assert scored("2024-01-08T00:20:00Z") == ["T3"]
    ttl = redis_conn.ttl(RISK_STATE.format(token="T0"))
    assert 0 < ttl <= risk.STATE_TTL_S  # no longer rewritten: it expires
    # states written before the live set are found once, by a sweep
    redis_conn.delete(RISK_LIVE, RISK_LIVE_SWEPT)
    assert scored("2024-01-08T00:25:00Z") == ["T0", "T1"]  # at 0: scored once more, then left
    assert redis_conn.zrange(RISK_LIVE, 0, -1) == [b"T2", b"T3"]


def test_an_unknown_job_is_refused(ctx):
    event = ping("2024-01-01T00:00:00Z")
    event.data = {"job": "reboot"}
    with pytest.raises(ValueError):
        handle_anomalies(event, ctx)


def test_a_chain_anomalys_severity_confidence_and_window_are_stored(ctx, db_conn):
    """Only type, score, detector and details were stored: how bad, how sure and the slots
    to check on an explorer, which every chain anomaly carries, were lost to the api."""
    from kades.storage.repository import query_anomalies
    window = {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:00:10Z",
              "first_slot": 300, "last_slot": 325}
    event = new_event(ANOMALY_DETECTED, "/kades/chain-analysis", {"anomalies": [{
        "token": "Chained", "time": "2024-01-01T00:00:10Z", "anomaly_type": "wash_trading",
        "score": 0.72, "severity": 0.8, "confidence": 0.9, "window": window,
        "detector": "chain.wash", "detector_version": "3",
        "details": {"summary": "two wallets", "evidence": {"wallets": ["A", "B"]}}}]},
        event_id="chained")
    assert not data_problems(event)
    handle_anomalies(event, ctx)
    handle_anomalies(event, ctx)  # a redelivery stores nothing twice
    (row,) = query_anomalies(db_conn, token="Chained")[0]
    assert row["details"] == {"summary": "two wallets", "evidence": {"wallets": ["A", "B"]},
                              "severity": 0.8, "confidence": 0.9, "window": window,
                              "detector_version": "3"}


def test_a_threshold_of_zero_raises_on_risk_and_never_flaps_on_none():
    """The api allows an alert_threshold of 0: a risk of 0 met it and fell under the band at
    once, raised, cleared, raised ... a new alert each time."""
    from kades.risk.alerting import decide
    quiet = [{"token": "T", "time": f"2024-01-01T00:0{m}:00Z", "score": 0.0, "level": "low"}
             for m in range(5)]
    assert decide(None, quiet, threshold=0.0)[1] == []
    risky = quiet + [{"token": "T", "time": "2024-01-01T00:06:00Z", "score": 0.3, "level": "medium"}]
    assert [a["kind"] for _, a in decide(None, risky, threshold=0.0)[1]] == ["raised"]


def test_a_standing_alert_with_nothing_released_yet_fails_no_decay_ping():
    """A state with nothing released (kept before points were, or lost from Redis while the
    token stayed listed for decay) raised KeyError at every ping: that token, ever among the
    least recently scored, failed every risk-decay batch."""
    from kades.risk.function import alert_buffer, score_token
    from kades.settings import Settings
    stored = {"version": 2, "points": {}, "alert": {"active": True, "level": "high",
                                                    "episode": "2024-01-01T00:00:00Z"}}
    state, risk, alerts, _ = score_token(stored, "T", [], at="2024-01-02T00:00:00Z",
                                         threshold=0.7, hysteresis=0.1, half_life_s=3600.0,
                                         buffer=alert_buffer(Settings()), now_s=1704153600.0)
    assert risk["score"] == 0.0 and [a["kind"] for _, a in alerts] == ["cleared"]
    assert not state["alert"]["active"]


def test_a_lone_poster_is_no_crowd(ctx):
    """One post about a quiet token, "$QUIET to the moon", was its whole sentiment: risk 0.80,
    "high", an alert at the default threshold. It counts by the share of SENTIMENT_FULL_AUTHORS
    who spoke; as many authors as extreme count in full."""
    from kades.risk.function import SENTIMENT_FULL_AUTHORS

    def report(token, authors):
        return new_event(SENTIMENT_SCORED, "/kades/s", {
            "token": token, "time": "2024-01-01T00:00:00Z", "window": "1h", "score": 0.99,
            "mentions": authors, "unique_authors": authors})
    replies = handle_anomalies(report("Quiet", 1), ctx)
    (risk,) = [r.data for r in replies]  # no alert
    assert risk["components"]["sentiment"] == pytest.approx(0.98 / SENTIMENT_FULL_AUTHORS, abs=1e-4)
    assert risk["level"] == "low"
    crowd = [r.data for r in handle_anomalies(report("Crowd", SENTIMENT_FULL_AUTHORS), ctx)]
    assert crowd[0]["components"]["sentiment"] == pytest.approx(0.98)
    assert [(a["kind"], a["level"]) for a in crowd[1:]] == [("raised", "high")]
