"""When a token's risk raises an alert: a threshold with hysteresis (pure, no I/O).

An alert is *raised* when the score reaches the token's threshold, *escalated* when the
level climbs further while the alert stands, and *cleared* only once the score has fallen
below `threshold - hysteresis`. A score hovering at the threshold therefore raises one
alert, not one per wobble.

>>> state, alert = alert_transition(None, score=0.72, level="high", threshold=0.7)
>>> alert["kind"], state["active"]
('raised', True)
>>> state, alert = alert_transition(state, score=0.69, level="medium", threshold=0.7)
>>> alert is None, state["active"]       # inside the band: nothing happens
(True, True)
>>> state, alert = alert_transition(state, score=0.59, level="medium", threshold=0.7)
>>> alert["kind"], state["active"]
('cleared', False)
"""
from __future__ import annotations

from typing import Any

LEVEL_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}

# WebSocket channels an alert belongs to, from the anomaly types that explain it.
CHANNEL_WORDS = (("wash", "wash_trading"), ("cycl", "cyclic_transfers"),
                 ("liquidity", "liquidityChanges"), ("whale", "whale_movements"),
                 ("accumulation", "whale_movements"), ("distribution", "whale_movements"))


def alert_transition(state: dict | None, *, score: float, level: str, threshold: float,
                     hysteresis: float = 0.1) -> tuple[dict, dict | None]:
    """(new alert state, what to announce or None) for one new score of one token."""
    state = dict(state or {"active": False, "level": None})
    if not state["active"]:
        if score >= threshold:
            return {"active": True, "level": level}, {"kind": "raised"}
        return state, None
    if score < threshold - hysteresis:
        return {"active": False, "level": None}, {"kind": "cleared"}
    if LEVEL_ORDER[level] > LEVEL_ORDER.get(state["level"] or "low", 0):
        return {"active": True, "level": level}, {"kind": "escalated"}
    return state, None


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
    """The data of an `ai.kades.alert.v1` event for `risk` (a risk score document)."""
    top = ", ".join(e["anomaly_type"] for e in risk.get("explanation", [])[:3]) or "no anomaly"
    verb = {"raised": "reached", "escalated": "rose to", "cleared": "fell back below"}[kind]
    message = (f"risk of {risk['token']} {verb} {risk['level']} ({risk['score']:.2f}, "
               f"threshold {threshold:.2f}); main causes: {top}")
    return {"token": risk["token"], "time": risk["time"], "score": risk["score"],
            "level": risk["level"], "kind": kind, "threshold": threshold, "message": message,
            "components": risk.get("components", {}),
            "explanation": risk.get("explanation", []),
            "channels": channels_of(risk.get("explanation", []))}
