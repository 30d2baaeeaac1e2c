"""Per-token risk from anomalies: three decaying components, one combined score, a level.

Each anomaly feeds one component (chain, sentiment or temporal). A component is a noisy-OR
of its anomalies' scores, each decayed by its age (half-life, default 6 h): evidence adds up,
stays in [0, 1] and fades. The components are combined with weights chain 0.4 / sentiment
0.3 / temporal 0.3 as a weighted noisy-OR, 1 - prod((1 - c_k) ** (w_k / max w)), not as a
weighted mean: under a mean a certain rug pull (chain = 1, nothing else) would score 0.4,
"low"; here it scores 1, and a component weighted less needs stronger evidence for the same score.

>>> state, risk = update_risk(None, "Mint1", [
...     {"token": "Mint1", "time": "2024-01-01T00:00:00Z", "anomaly_type": "liquidity_removal",
...      "score": 0.8, "detector": "chain"}])
>>> risk["score"], risk["level"], risk["components"]["chain"]
(0.8, 'high', 0.8)
>>> later, risk = update_risk(state, "Mint1", [], now="2024-01-01T06:00:00Z")
>>> risk["components"]["chain"], risk["level"]
(0.4, 'low')
"""
from __future__ import annotations

from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from kades.events.catalogue import ANOMALY_KINDS

COMPONENTS = ("chain", "sentiment", "temporal")
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"chain": 0.4, "sentiment": 0.3, "temporal": 0.3})
DEFAULT_HALF_LIFE_S = 6 * 3600.0
LEVELS = ((0.9, "critical"), (0.7, "high"), (0.5, "medium"))
STATE_VERSION = 1

def component_of(anomaly_type: str) -> str:
    """Which risk component an anomaly kind feeds (the catalogue says; the schema of
    `ai.kades.anomaly.detected.v1` admits no other kind)."""
    return ANOMALY_KINDS[anomaly_type]


def decay(value: float, elapsed_s: float, half_life_s: float) -> float:
    return value * 0.5 ** (max(0.0, elapsed_s) / half_life_s)


def combine(components: Mapping[str, float],
            weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> float:
    """The weighted noisy-OR of the component scores, in [0, 1]."""
    strongest = max(weights.values())
    remaining = 1.0
    for name, weight in weights.items():
        remaining *= (1.0 - min(1.0, max(0.0, components.get(name, 0.0)))) ** (weight / strongest)
    return 1.0 - remaining


def level_of(score: float) -> str:
    return next((name for floor, name in LEVELS if score >= floor), "low")


def epoch_s(text: str) -> float:
    return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T")).timestamp()


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def new_state() -> dict[str, Any]:
    return {"version": STATE_VERSION, "time": None,
            "components": dict.fromkeys(COMPONENTS, 0.0), "contributors": []}


def update_risk(state: dict | None, token: str, anomalies: Iterable[dict], *,
                now: str | None = None, half_life_s: float = DEFAULT_HALF_LIFE_S,
                weights: Mapping[str, float] = DEFAULT_WEIGHTS, explanation_size: int = 5,
                contributors_kept: int = 20) -> tuple[dict, dict]:
    """Add `token`'s anomalies to its risk state; (new state, risk score document).

    The score is as of `now`, or the latest time seen (state or anomalies): time never runs
    backwards, and a late anomaly counts as much as its age at that moment still allows.
    """
    state = dict(state or new_state())
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"unknown risk state version {state.get('version')!r}")
    anomalies = sorted(anomalies, key=lambda a: epoch_s(a["time"]))
    times = [t for t in [state["time"], now and epoch_s(now),
                         *(epoch_s(a["time"]) for a in anomalies)] if t is not None]
    if not times:
        raise ValueError("no time to score at: give anomalies or `now`")
    moment = max(times)
    elapsed = moment - state["time"] if state["time"] is not None else 0.0
    components = {name: decay(value, elapsed, half_life_s)
                  for name, value in state["components"].items()}
    contributors = list(state["contributors"])
    for anomaly in anomalies:
        component = component_of(anomaly["anomaly_type"])
        fresh = decay(float(anomaly["score"]), moment - epoch_s(anomaly["time"]), half_life_s)
        components[component] = 1.0 - (1.0 - components.get(component, 0.0)) * (1.0 - fresh)
        contributors.append({"anomaly_type": anomaly["anomaly_type"], "component": component,
                             "score": float(anomaly["score"]), "time": anomaly["time"],
                             "detector": anomaly.get("detector", "")})
    ranked = _rank(contributors, moment, half_life_s, weights)
    state.update(time=moment, components=components,
                 contributors=[entry for entry, _ in ranked[:contributors_kept]])
    score = combine(components, weights)
    return state, {
        "token": token, "time": rfc3339(moment), "score": round(score, 4),
        "level": level_of(score),
        "components": {name: round(components.get(name, 0.0), 4) for name in COMPONENTS},
        "explanation": [{**entry, "contribution": round(value, 4)}
                        for entry, value in ranked[:explanation_size]]}


def _rank(contributors: list[dict], moment: float, half_life_s: float,
          weights: Mapping[str, float]) -> list[tuple[dict, float]]:
    """Contributors with their weighted, decayed contribution now, largest first (newest
    first on ties)."""
    strongest = max(weights.values())
    valued = [(entry, weights.get(entry["component"], 0.0) / strongest
               * decay(entry["score"], moment - epoch_s(entry["time"]), half_life_s))
              for entry in contributors]
    valued.sort(key=lambda pair: (-pair[1], -epoch_s(pair[0]["time"]), pair[0]["anomaly_type"]))
    return valued

