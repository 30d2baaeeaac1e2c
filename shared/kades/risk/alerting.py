"""When a token's risk raises an alert: a threshold with hysteresis (pure, no I/O).

An alert is *raised* when the score reaches the token's threshold, *escalated* when the
level climbs further while the alert stands, and *cleared* only once the score has fallen
below `threshold - hysteresis` (at least 0.0001: `clears_below`). A score hovering at the
threshold therefore raises one alert, not one per wobble.

>>> state, alert = alert_transition(None, score=0.72, level="high", threshold=0.7)
>>> alert["kind"], state["active"]
('raised', True)
>>> state, alert = alert_transition(state, score=0.69, level="medium", threshold=0.7)
>>> alert is None, state["active"]       # inside the band: nothing happens
(True, True)
>>> state, alert = alert_transition(state, score=0.59, level="medium", threshold=0.7)
>>> alert["kind"], state["active"]
('cleared', False)

Alerts are decided in event time (`decide`): the risk at each point a token was scored, in
time order, once every anomaly up to that point is in (risk-scoring's reorder buffer). An
alert's id derives from the token, its episode (the time the alert was raised), its kind and
level, so the same input in any order and with duplicates yields the same alerts, once.

>>> risks = [{"token": "T", "time": t, "score": s, "level": l} for t, s, l in [
...     ("2024-01-01T00:00:00Z", 0.5, "medium"), ("2024-01-01T00:01:00Z", 0.75, "high"),
...     ("2024-01-01T00:02:00Z", 0.95, "critical"), ("2024-01-01T00:03:00Z", 0.8, "high")]]
>>> state, alerts = decide(None, risks, threshold=0.7)
>>> [(a["kind"], a["level"]) for _, a in alerts], state["episode"]
([('raised', 'high'), ('escalated', 'critical')], '2024-01-01T00:01:00Z')
>>> alerts[0][0] == alert_id("T", "2024-01-01T00:01:00Z", "raised", "high")
True
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable

from kades.keys import ALERT_ID_NAME

LEVEL_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}
# Risk scores are reported to 4 decimals: the lowest score an alert can clear under. With a
# threshold at or below the hysteresis (a tracked alert_threshold of 0.1) the band reached
# 0, which no score falls below: the alert never cleared, and risk-decay's search for the
# time it would (scoring.time_below) never ended, for every token of the job.
SCORE_UNIT = 1e-4


def clears_below(threshold: float, hysteresis: float) -> float:
    """The score under which a standing alert clears: threshold - hysteresis, at least one
    SCORE_UNIT (a risk that rounds to 0 has cleared)."""
    return max(threshold - hysteresis, SCORE_UNIT)

# WebSocket channels an alert belongs to, from the anomaly types that explain it.
CHANNEL_WORDS = (("wash", "wash_trading"), ("cycl", "cyclic_transfers"),
                 ("liquidity", "liquidityChanges"), ("whale", "whale_movements"),
                 ("accumulation", "whale_movements"), ("distribution", "whale_movements"))


def alert_transition(state: dict | None, *, score: float, level: str, threshold: float,
                     hysteresis: float = 0.1) -> tuple[dict, dict | None]:
    """(new alert state, what to announce or None) for one new score of one token."""
    state = dict(state or {"active": False, "level": None})
    if not state["active"]:
        # at least what it clears under: with a threshold of 0 (the api allows 0 to 1) a risk
        # of 0 raised, cleared at the next score, raised again, a new alert each time
        if score >= max(threshold, clears_below(threshold, hysteresis)):
            return {"active": True, "level": level}, {"kind": "raised"}
        return state, None
    if score < clears_below(threshold, hysteresis):
        return {"active": False, "level": None}, {"kind": "cleared"}
    if LEVEL_ORDER[level] > LEVEL_ORDER.get(state["level"] or "low", 0):
        return {"active": True, "level": level}, {"kind": "escalated"}
    return state, None


def alert_id(token: str, episode: str, kind: str, level: str) -> str:
    """The id of an alert event: the same (token, episode, kind, level) always gets the same
    one, whichever input caused it (alert-dispatch publishes an id once)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, ALERT_ID_NAME.format(
        token=token, episode=episode, kind=kind, level=level)))


def decide(state: dict | None, risks: Iterable[dict], *, threshold: float,
           hysteresis: float = 0.1) -> tuple[dict, list[tuple[str, dict]]]:
    """Walk a token's risk documents in time order; (alert state, [(alert id, alert data)]).

    The state is {active, level, episode}; `episode` is the time the standing alert was raised."""
    state = dict(state or {"active": False, "level": None, "episode": None})
    alerts = []
    for risk in risks:
        episode = state.get("episode")
        transition, change = alert_transition(state, score=risk["score"], level=risk["level"],
                                              threshold=threshold, hysteresis=hysteresis)
        if change is None:
            state = {**transition, "episode": episode}
            continue
        episode = risk["time"] if change["kind"] == "raised" else episode
        stood_at = state.get("level")
        state = {**transition, "episode": episode if transition["active"] else None}
        level = risk["level"] if change["kind"] != "cleared" else ""
        document = alert_document(risk, change["kind"], threshold)
        if change["kind"] == "cleared" and stood_at:
            document["cleared_level"] = stood_at
        alerts.append((alert_id(risk["token"], episode, change["kind"], level), document))
    return state, alerts


def channels_of(explanation: list[dict]) -> list[str]:
    """The WebSocket channels of an alert: always `anomalies` and `patterns`, plus the
    specific ones its contributing anomaly types name."""
    channels = ["anomalies", "patterns"]
    for entry in explanation:
        for word, channel in CHANNEL_WORDS:
            if word in entry.get("anomaly_type", "") and channel not in channels:
                channels.append(channel)
    return channels


def alert_document(risk: dict, kind: str, threshold: float) -> dict[str, Any]:
    """The data of an `ai.kades.alert.issued.v1` event for `risk` (a risk score document)."""
    top = ", ".join(e["anomaly_type"] for e in risk.get("explanation", [])[:3]) or "no anomaly"
    verb = {"raised": "reached", "escalated": "rose to", "cleared": "fell back below"}[kind]
    message = (f"risk of {risk['token']} {verb} {risk['level']} ({risk['score']:.2f}, "
               f"threshold {threshold:.2f}); main causes: {top}")
    return {"token": risk["token"], "time": risk["time"], "score": risk["score"],
            "level": risk["level"], "kind": kind, "threshold": threshold, "message": message,
            "components": risk.get("components", {}),
            "explanation": risk.get("explanation", []),
            "channels": channels_of(risk.get("explanation", []))}
