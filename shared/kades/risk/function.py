"""risk-scoring: stores anomalies, updates each token's risk, replies one risk score per token
and emits an alert when a token crosses its alert threshold (with hysteresis, see alerting).

Sentiment scores feed the sentiment component too: only extreme sentiment (|score| > 0.5,
hype as much as panic) counts as evidence; they are not stored as anomalies.

Per-token risk state lives in Redis (WATCH/MULTI: two replicas may score the same token).
Order matters for exactly-once effects: the database rows are written first, the Redis
update is EXECuted inside the database transaction (a conflict rolls the rows back and the
whole thing is recomputed), and the state remembers which events it has absorbed, so an
event retried after a failed commit is not counted twice. The alert an event caused is kept
with the state, so a retried event emits the very same alert (same id) again. What an event
scored is also kept in its outbox (kades.runtime.state.outbox_key), committed with the
state: a retry after a failure past the commit stores and replies those very risk scores,
where scoring again would give the token's risk at another time (a second row).
"""
from __future__ import annotations

import hashlib
import json
import random
import time

import redis

from kades.errors import BadRequestError, Problem, TemporaryFailure
from kades.events.catalogue import (ALERT, ANOMALY_DETECTED, PING, RISK_SCORED,
                                    SENTIMENT_SCORED, derived_id, new_event)
from kades.events.envelope import CloudEvent
from kades.risk.alerting import alert_document, alert_transition
from kades.risk.scoring import epoch_s, update_risk
from kades.runtime import Context, Function, faults
from kades.runtime.state import OUTBOX_TTL_S, outbox_key
from kades.storage.repository import insert_anomalies, insert_risk_score

STATE_KEY = "kades:risk:state:{token}"
# token -> alert threshold, written by the api when a token is tracked (lowest one wins)
THRESHOLDS_KEY = "kades:tracked:thresholds"
STATE_TTL_S = 30 * 24 * 3600  # risk decays to nothing long before a month of silence
APPLIED_KEPT = 64             # recent events remembered per token (retries come soon)
MAX_ATTEMPTS = 8


def group_by_token(anomalies: list[dict]) -> dict[str, list[dict]]:
    """Anomalies per token, tokens in order of first appearance."""
    groups: dict[str, list[dict]] = {}
    for anomaly in anomalies:
        groups.setdefault(anomaly["token"], []).append(anomaly)
    return groups


def anomaly_rows(event: CloudEvent, anomalies: list[dict]) -> list[dict]:
    rows = []
    for anomaly in anomalies:
        details = anomaly.get("details") or {}
        # Tells apart anomalies of one type, token and time within one event (e.g. two wallets)
        # while a redelivery of the same event yields the same key.
        key = hashlib.sha1(json.dumps(details, sort_keys=True).encode()).hexdigest()[:16] \
            if details else ""
        rows.append({"time": anomaly["time"], "token": anomaly["token"],
                     "anomaly_type": anomaly["anomaly_type"], "score": anomaly["score"],
                     "detector": anomaly["detector"], "details": details, "anomaly_key": key,
                     "event_source": event.source, "event_id": event.id})
    return rows


def score_tokens(raw_states: list[bytes | None], groups: dict[str, list[dict]],
                 event_key: str, thresholds: list[float], *, half_life_s: float,
                 hysteresis: float, now: str | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """(new stored states, risk documents, alert documents) from the stored JSON states.

    A token with no new anomaly (the decay job) is scored as of `now`."""
    states, risks, alerts = [], [], []
    for raw, (token, anomalies), threshold in zip(raw_states, groups.items(), thresholds):
        stored = json.loads(raw) if raw else {"risk": None, "applied": []}
        absorbed = event_key in stored["applied"]
        latest = max((a["time"] for a in anomalies), key=epoch_s) if anomalies else now
        risk_state, risk = update_risk(stored["risk"], token, [] if absorbed else anomalies,
                                       now=latest, half_life_s=half_life_s)
        applied = stored["applied"] if absorbed else [*stored["applied"], event_key]
        alert_state, last_alert = stored.get("alert"), stored.get("last_alert")
        if absorbed:  # a retry: announce again exactly what this event announced, if anything
            alert = last_alert["data"] if last_alert and last_alert["event"] == event_key else None
        else:
            alert_state, change = alert_transition(alert_state, score=risk["score"],
                                                   level=risk["level"], threshold=threshold,
                                                   hysteresis=hysteresis)
            alert = alert_document(risk, change["kind"], threshold) if change else None
            if alert:
                last_alert = {"event": event_key, "data": alert}
        states.append({"risk": risk_state, "applied": applied[-APPLIED_KEPT:],
                       "alert": alert_state, "last_alert": last_alert})
        risks.append(risk)
        if alert:
            alerts.append(alert)
    return states, risks, alerts


def sentiment_evidence(data: dict) -> list[dict]:
    """A sentiment score as an anomaly-like piece of evidence ([] when unremarkable)."""
    strength = (abs(data["score"]) - 0.5) / 0.5
    if strength <= 0:
        return []
    return [{"token": data["token"], "time": data["time"], "anomaly_type": "sentiment_extreme",
             "score": round(min(1.0, strength), 4), "detector": "sentiment-analysis",
             "details": {"sentiment": data["score"], "window": data["window"]}}]


def handle_anomalies(event: CloudEvent, ctx: Context) -> list[CloudEvent]:
    if event.type == PING:
        return handle_decay(event, ctx)
    is_sentiment = event.type == SENTIMENT_SCORED
    anomalies = sentiment_evidence(event.data) if is_sentiment else event.data["anomalies"]
    if not anomalies:
        return []
    stored = [] if is_sentiment else anomaly_rows(event, anomalies)
    return score_and_store(event, ctx, group_by_token(anomalies), stored)


def handle_decay(event: CloudEvent, ctx: Context) -> list[CloudEvent]:
    """The periodic job (PingSource risk-decay): every token's risk as of now, so that scores
    fade between anomalies and an alert clears once its token has calmed down."""
    if event.data.get("job") != "risk-decay":
        raise BadRequestError("unknown job", [Problem("data.job", "risk-scoring runs 'risk-decay'")])
    prefix = STATE_KEY.format(token="")
    tokens = sorted(key.decode()[len(prefix):] for key in ctx.redis.scan_iter(prefix + "*", count=1000))
    return score_and_store(event, ctx, {token: [] for token in tokens}, [], now=event.attributes["time"])


def score_and_store(event: CloudEvent, ctx: Context, groups: dict[str, list[dict]],
                    anomaly_rows_: list[dict], now: str | None = None) -> list[CloudEvent]:
    """Score `groups` (token -> new evidence) in one transaction; the replies and alerts."""
    if not groups:
        return []
    keys = [STATE_KEY.format(token=token) for token in groups]
    default = ctx.settings.alert_default_threshold
    outbox = outbox_key(ctx.name, event.source, event.id)
    earlier = ctx.redis.get(outbox)
    if earlier is not None:  # committed before: redo those effects, score nothing anew
        risks, alerts = json.loads(earlier)
        with ctx.db() as conn:
            store_rows(conn, event, anomaly_rows_, risks)
        return replies_of(event, ctx, risks, alerts)
    for attempt in range(MAX_ATTEMPTS):
        with ctx.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(*keys)
                thresholds = [float(t) if t is not None else default
                              for t in pipe.hmget(THRESHOLDS_KEY, list(groups))]
                states, risks, alerts = score_tokens(
                    pipe.mget(keys), groups, f"{event.source}#{event.id}", thresholds,
                    half_life_s=ctx.settings.risk_half_life_s,
                    hysteresis=ctx.settings.alert_hysteresis, now=now)
                pipe.multi()
                for key, state in zip(keys, states):
                    pipe.set(key, json.dumps(state, separators=(",", ":")), ex=STATE_TTL_S)
                pipe.set(outbox, json.dumps([risks, alerts], separators=(",", ":")),
                         ex=OUTBOX_TTL_S)
                with ctx.db() as conn:
                    store_rows(conn, event, anomaly_rows_, risks)
                    pipe.execute()  # a WatchError here leaves the block: the rows roll back
                faults.point("after_db")  # tests only (KADES_FAULT_POINTS)
                break
            except redis.WatchError:
                # Another replica scored one of these tokens: start again from its state, after
                # a short random pause so that two replicas do not collide in lock step.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    else:
        raise TemporaryFailure(f"risk state kept changing under us ({MAX_ATTEMPTS} attempts)")
    return replies_of(event, ctx, risks, alerts)


def store_rows(conn, event: CloudEvent, anomaly_rows_: list[dict], risks: list[dict]) -> None:
    """The event's anomalies and risk scores (inserting twice stores once)."""
    if anomaly_rows_:
        insert_anomalies(conn, anomaly_rows_)
    for risk in risks:
        insert_risk_score(conn, {**risk, "event_source": event.source, "event_id": event.id})


def replies_of(event: CloudEvent, ctx: Context, risks: list[dict],
               alerts: list[dict]) -> list[CloudEvent]:
    """One risk.scored per token, then one alert per alert; ids derived from the event."""
    replies = [new_event(RISK_SCORED, ctx.source, risk, subject=risk["token"], time=risk["time"],
                         event_id=derived_id(event, f"risk:{risk['token']}"))
               for risk in risks]
    return replies + [new_event(ALERT, ctx.source, alert, subject=alert["token"],
                                time=alert["time"],
                                event_id=derived_id(event, f"alert:{alert['token']}"))
                      for alert in alerts]


FUNCTION = Function("risk-scoring", (ANOMALY_DETECTED, SENTIMENT_SCORED, PING), handle_anomalies,
                    uses_database=True)
