"""risk-scoring: stores anomalies, updates each token's risk, replies one risk score per token.

Per-token risk state lives in Redis (WATCH/MULTI: two replicas may score the same token).
Order matters for exactly-once effects: the database rows are written first, the Redis
update is EXECuted inside the database transaction (a conflict rolls the rows back and the
whole thing is recomputed), and the state remembers which events it has absorbed, so an
event retried after a failed commit is not counted twice.
"""
from __future__ import annotations

import hashlib
import json
import random
import time

import redis

from kades.errors import TemporaryFailure
from kades.events.catalogue import ANOMALY_DETECTED, RISK_SCORED, derived_id, new_event
from kades.events.envelope import CloudEvent
from kades.risk.scoring import epoch_s, update_risk
from kades.runtime import Context, Function
from kades.storage.repository import insert_anomalies, insert_risk_score

STATE_KEY = "kades:risk:state:{token}"
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
                 event_key: str) -> tuple[list[dict], list[dict]]:
    """(new stored states, risk documents), one per token, from the stored JSON states."""
    states, risks = [], []
    for raw, (token, anomalies) in zip(raw_states, groups.items()):
        stored = json.loads(raw) if raw else {"risk": None, "applied": []}
        absorbed = event_key in stored["applied"]
        latest = max((a["time"] for a in anomalies), key=epoch_s)
        risk_state, risk = update_risk(stored["risk"], token, [] if absorbed else anomalies,
                                       now=latest)
        applied = stored["applied"] if absorbed else [*stored["applied"], event_key]
        states.append({"risk": risk_state, "applied": applied[-APPLIED_KEPT:]})
        risks.append(risk)
    return states, risks


def handle_anomalies(event: CloudEvent, ctx: Context) -> list[CloudEvent]:
    anomalies = event.data["anomalies"]
    groups = group_by_token(anomalies)
    keys = [STATE_KEY.format(token=token) for token in groups]
    for attempt in range(MAX_ATTEMPTS):
        with ctx.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(*keys)
                states, risks = score_tokens(pipe.mget(keys), groups, f"{event.source}#{event.id}")
                pipe.multi()
                for key, state in zip(keys, states):
                    pipe.set(key, json.dumps(state, separators=(",", ":")), ex=STATE_TTL_S)
                with ctx.db() as conn:
                    insert_anomalies(conn, anomaly_rows(event, anomalies))
                    for risk in risks:
                        insert_risk_score(conn, {**risk, "event_source": event.source,
                                                 "event_id": event.id})
                    pipe.execute()  # a WatchError here leaves the block: the rows roll back
                break
            except redis.WatchError:
                # Another replica scored one of these tokens: start again from its state, after
                # a short random pause so that two replicas do not collide in lock step.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    else:
        raise TemporaryFailure(f"risk state kept changing under us ({MAX_ATTEMPTS} attempts)")
    return [new_event(RISK_SCORED, ctx.source, risk, subject=risk["token"], time=risk["time"],
                      event_id=derived_id(event, f"risk:{risk['token']}"))
            for risk in risks]


FUNCTION = Function("risk-scoring", (ANOMALY_DETECTED,), handle_anomalies, uses_database=True)
