"""When a waiting alert is judged, on real Redis and PostgreSQL: a token that goes quiet after
an anomaly gets its alert from the next `stream-flush` ping (every minute) or the next event of
any token once its scored time has waited (the lateness of wall clock; here the idle timeout,
1 s, is shorter), not only from the 5-minute decay job.
"""
from __future__ import annotations

import dataclasses
import time

import pytest

from kades.events.catalogue import (ALERT, ANOMALY_DETECTED, PING, RISK_SCORED,
                                    SENTIMENT_SCORED, new_event)
from kades.keys import RISK_LIVE, RISK_STATE, RISK_WAITING
from kades.risk.function import handle_anomalies
from kades.runtime import Context

WAIT_S = 1.0


@pytest.fixture
def ctx(kades_settings, redis_conn, db_conn):
    return Context("risk-scoring", settings=dataclasses.replace(kades_settings,
                                                                reorder_idle_s=WAIT_S))


def crash(event_id: str, token: str, score: float, when="2024-01-01T00:00:00Z"):
    return new_event(ANOMALY_DETECTED, "/kades/test", {"anomalies": [{
        "token": token, "time": when, "anomaly_type": "liquidity_removal", "score": score,
        "detector": "test"}]}, event_id=event_id)


def flush(event_id: str):
    return new_event(PING, "/apis/v1/namespaces/kades/pingsources/stream-flush",
                     {"job": "flush"}, time="2024-01-01T00:10:00Z", event_id=event_id)


def kinds(replies) -> list[tuple[str, str]]:
    return [(r.type, r.subject) for r in replies]


def test_a_quiet_tokens_alert_comes_from_the_flush(ctx, redis_conn, db_conn):
    # a token judged already and with nothing waiting: the flush must not touch it
    handle_anomalies(crash("old", "Settled", 0.2, when="2023-12-31T00:00:00Z"), ctx)
    time.sleep(WAIT_S + 0.1)
    handle_anomalies(flush("f0"), ctx)
    redis_conn.expire(RISK_STATE.format(token="Settled"), 100)

    first = handle_anomalies(crash("e1", "Quiet", 0.99), ctx)
    assert kinds(first) == [(RISK_SCORED, "Quiet")]      # the alert waits for earlier input
    assert redis_conn.zscore(RISK_WAITING, "Quiet") is not None
    assert handle_anomalies(flush("f1"), ctx) == []      # not waited long enough yet
    time.sleep(WAIT_S + 0.1)
    judged = handle_anomalies(flush("f2"), ctx)
    assert kinds(judged) == [(ALERT, "Quiet")]           # the alert alone: no score stored
    assert judged[0].data["kind"] == "raised" and judged[0].data["level"] == "critical"
    assert judged[0].data["time"] == "2024-01-01T00:00:00Z"
    assert redis_conn.zscore(RISK_WAITING, "Quiet") is None
    assert redis_conn.ttl(RISK_STATE.format(token="Settled")) <= 100  # not loaded, not rewritten
    rows = db_conn.execute("SELECT count(*) FROM risk_scores WHERE token = 'Quiet'").fetchone()[0]
    assert rows == 1
    # the same ping redelivered announces the same alert; the decay job then has nothing new
    assert [r.id for r in handle_anomalies(flush("f2"), ctx)] == [judged[0].id]
    decay = new_event(PING, "/apis/v1/namespaces/kades/pingsources/risk-decay",
                      {"job": "risk-decay"}, time="2024-01-01T00:10:00Z", event_id="d1")
    assert all(r.type != ALERT for r in handle_anomalies(decay, ctx))


def test_the_next_event_of_any_token_judges_what_waited(ctx, redis_conn):
    assert kinds(handle_anomalies(crash("e1", "Quiet", 0.99), ctx)) == [(RISK_SCORED, "Quiet")]
    time.sleep(WAIT_S + 0.1)
    replies = handle_anomalies(crash("e2", "Busy", 0.1, when="2024-01-01T00:05:00Z"), ctx)
    assert kinds(replies) == [(RISK_SCORED, "Busy"), (ALERT, "Quiet")]
    assert replies[1].data["kind"] == "raised"
    assert redis_conn.zscore(RISK_WAITING, "Quiet") is None
    assert redis_conn.zscore(RISK_WAITING, "Busy") is not None   # its own time waits now


def test_an_unknown_job_names_both_jobs(ctx):
    event = flush("bad")
    event.data = {"job": "reboot"}
    with pytest.raises(ValueError) as error:
        handle_anomalies(event, ctx)
    assert "flush" in str(error.value.problems) and "risk-decay" in str(error.value.problems)


def spike(event_id: str, token: str):
    return new_event(ANOMALY_DETECTED, "/kades/test", {"anomalies": [{
        "token": token, "time": "2024-01-01T00:00:00Z", "anomaly_type": "flash_crash",
        "score": 0.95, "detector": "test"}]}, event_id=event_id)


def alerts_of(order, ctx, redis_conn, *, gap_s: float) -> list[tuple[str, str, str]]:
    """Deliver `order` with `gap_s` of wall clock between events (another token's anomaly
    each time, as a busy system has), then flush once everything waited."""
    redis_conn.flushdb()
    replies = []
    for index, event in enumerate(order):
        if index:
            time.sleep(gap_s)
            replies += handle_anomalies(crash(f"busy{index}", "Busy", 0.01), ctx)
        replies += handle_anomalies(event, ctx)
    time.sleep(WAIT_S + 0.1)
    replies += handle_anomalies(flush(f"end{gap_s}"), ctx)
    return [(r.id, r.data["kind"], r.data["level"]) for r in replies
            if r.type == ALERT and r.subject == "Spiky"]


def test_an_anomaly_delivered_within_the_wait_keeps_its_place(ctx, redis_conn):
    """The contract in wall clock: an anomaly that comes less than the wait after a later one
    of its token gives the ordered feed's alerts; one that comes later is late (counted)."""
    from kades.metrics import LATE_INPUTS
    early, later = spike("a", "Spiky"), crash("b", "Spiky", 0.99, when="2024-01-01T00:00:10Z")
    ordered = alerts_of([early, later], ctx, redis_conn, gap_s=0.0)
    assert [kind for _, kind, _ in ordered] == ["raised", "escalated"]   # high, then critical
    assert alerts_of([later, early], ctx, redis_conn, gap_s=WAIT_S / 2) == ordered
    late = LATE_INPUTS.labels("risk-scoring")._value.get()
    overdue = alerts_of([later, early], ctx, redis_conn, gap_s=WAIT_S + 0.1)
    assert LATE_INPUTS.labels("risk-scoring")._value.get() == late + 1
    assert [(kind, level) for _, kind, level in overdue] == [("raised", "critical")]


def calm(event_id: str, token: str, when: str):
    return new_event(SENTIMENT_SCORED, "/kades/s", {"token": token, "time": when, "window": "1h",
                                                    "score": 0.1}, event_id=event_id)


def decay(when: str):
    return new_event(PING, "/apis/v1/namespaces/kades/pingsources/risk-decay",
                     {"job": "risk-decay"}, time=when, event_id=f"decay-{when}")


def test_an_alert_raised_for_a_token_a_calm_report_had_scored_0_is_cleared_by_the_decay(
        ctx, redis_conn):
    """A calm report stamped before a rug still waiting scored the token 0 at its time, and
    the token left RISK_LIVE; the rug's alert, raised when another token's event judged what
    waited, then stood for good: the decay job scores the tokens of RISK_LIVE only."""
    handle_anomalies(decay("2023-12-31T00:00:00Z"), ctx)  # its one-off sweep done before
    handle_anomalies(crash("rug", "Stuck", 0.99), ctx)     # 00:00:00, waits to be judged
    handle_anomalies(calm("calm", "Stuck", "2023-12-31T23:59:55Z"), ctx)
    assert redis_conn.zscore(RISK_LIVE, "Stuck") is not None
    time.sleep(WAIT_S + 0.1)
    replies = handle_anomalies(crash("other", "Busy", 0.1, when="2024-01-01T00:05:00Z"), ctx)
    assert [(r.subject, r.data["kind"]) for r in replies if r.type == ALERT] == [("Stuck", "raised")]
    day = handle_anomalies(decay("2024-01-02T00:00:00Z"), ctx)
    assert [(r.subject, r.data["kind"]) for r in day if r.type == ALERT] == [("Stuck", "cleared")]


def test_a_late_anomaly_rescores_the_row_before_a_flush(ctx, db_conn):
    """A flush stores no row, yet it moved the newest row's time on to its own: a late
    anomaly then rescored only from there less the lateness, and the token's real row, which
    did not count it, stayed as it was."""
    def row(token: str) -> float:
        return db_conn.execute("SELECT score FROM risk_scores WHERE token = %s AND "
                               "time = '2024-01-01T00:00:00Z'", (token,)).fetchone()[0]
    for token, first, second in (("InOrder", "2023-12-31T23:59:50Z", "2024-01-01T00:00:00Z"),
                                 ("Flushed", "2024-01-01T00:00:00Z", "2023-12-31T23:59:50Z")):
        handle_anomalies(crash(f"{token}1", token, 0.5, when=first), ctx)
        time.sleep(WAIT_S + 0.1)
        handle_anomalies(flush(f"{token}-flush"), ctx)      # at 00:10:00
        handle_anomalies(crash(f"{token}2", token, 0.5, when=second), ctx)
    assert row("Flushed") == pytest.approx(row("InOrder")) and row("InOrder") > 0


@pytest.mark.parametrize("meanwhile", ["quiet_keys", "score_token"])  # before, after the WATCH
def test_a_delivery_that_commits_while_another_computes_keeps_its_alerts(ctx, monkeypatch,
                                                                          meanwhile):
    """Two deliveries of one event at once (a retry that took over a claim left to lapse):
    the second read no outbox, the first committed meanwhile, judging a quiet token's alert,
    and the second, computed again from the first's states, found nothing waiting, and its
    outbox and replies went without that alert."""
    import kades.risk.function as risk
    handle_anomalies(crash("rug", "Quiet", 0.99), ctx)
    time.sleep(WAIT_S + 0.1)
    real, other = getattr(risk, meanwhile), Context("risk-scoring", settings=ctx.settings)
    first: list = []

    def hooked(*args, **kwargs):
        if not first:  # the other delivery commits first, while this one computes
            first.append(None)
            first.append(handle_anomalies(crash("twice", "Busy", 0.1, when="2024-01-01T00:05:00Z"),
                                          other))
        return real(*args, **kwargs)
    monkeypatch.setattr(risk, meanwhile, hooked)
    second = handle_anomalies(crash("twice", "Busy", 0.1, when="2024-01-01T00:05:00Z"), ctx)
    assert kinds(first[1]) == [(RISK_SCORED, "Busy"), (ALERT, "Quiet")]
    assert [r.id for r in second] == [r.id for r in first[1]]


def anomaly(event_id: str, token: str, kind: str, score: float, when: str):
    return new_event(ANOMALY_DETECTED, "/kades/test", {"anomalies": [{
        "token": token, "time": when, "anomaly_type": kind, "score": score,
        "detector": "test"}]}, event_id=event_id)


def test_late_evidence_escalates_as_it_would_have_in_order(ctx):
    """Late evidence (within the lateness, after later evidence was judged) was judged at its
    own time only: two liquidity removals, the later one judged first, escalated nothing,
    though the risk after both, in order, is critical."""
    def alerts(token: str, order: list[tuple[str, float, str]]) -> list[tuple[str, str, str]]:
        found = []
        for index, (kind, score, when) in enumerate(order):
            found += handle_anomalies(anomaly(f"{token}{index}", token, kind, score, when), ctx)
            time.sleep(WAIT_S + 0.1)
            found += handle_anomalies(flush(f"{token}-flush{index}"), ctx)
        return [(r.data["kind"], r.data["level"], r.data["time"]) for r in found if r.type == ALERT]
    wash = ("wash_trading", 0.9, "2024-01-01T00:00:00Z")
    first, second = (("liquidity_removal", 0.3, f"2024-01-01T00:00:{s}Z") for s in ("40", "59"))
    ordered = alerts("Ordered", [wash, first, second])
    assert [(kind, level) for kind, level, _ in ordered] == [("raised", "high"),
                                                              ("escalated", "critical")]
    assert alerts("Late", [wash, second, first]) == ordered
