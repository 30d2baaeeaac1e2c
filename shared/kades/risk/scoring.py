"""Per-token risk from anomalies: a set of evidence, and the risk as of a time from it (pure).

A token's state holds the SET of anomalies that contribute to its risk, each under its
identity (`evidence_key`: token, type, time, detector, digest of details), so the same
anomaly counts once however often and in whatever order it arrives (a redelivery under a new
id, two detectors' events carrying it). The risk as of a time T is a function of that set
alone (`risk_at`), so two delivery orders that bring the same anomalies give the same state
and the same scores:
- each anomaly at or before T contributes its score decayed by its age at T (half-life,
  default 6 h); anomalies after T do not count yet;
- a component (chain, sentiment, temporal) is the noisy-OR of its anomalies' contributions;
- the components are combined with weights chain 0.4 / sentiment 0.3 / temporal 0.3 as a
  weighted noisy-OR, m = 1 - prod((1 - c_k) ** (w_k / max w)), not as a weighted mean (under
  a mean a certain rug pull, chain = 1 and nothing else, would score 0.4, "low");
- "critical" means rug-grade evidence (issue 14, item 5): the score is
  1 - (1 - R) * (1 - OTHER_CAP * m), R the noisy-OR of the rug-grade anomalies (RUG_KINDS:
  the liquidity pulled, the creator dumping). Without them a token tops out at OTHER_CAP
  (0.85, "high") however much other evidence piles up: a hundred price spikes show a wild
  token, not a rug. Measured on the demo story in tests/eval/eval_risk.py.
The set stays bounded: an anomaly whose decayed score at the newest time seen is below
NEGLIGIBLE is dropped (its share of any later score is below that), and at most
EVIDENCE_KEPT (the strongest) are kept.

>>> state = absorb(None, [
...     {"token": "Mint1", "time": "2024-01-01T00:00:00Z", "anomaly_type": "liquidity_removal",
...      "score": 0.8, "detector": "chain"}])
>>> risk = risk_at(state, "Mint1", epoch_s("2024-01-01T00:00:00Z"))
>>> risk["score"], risk["level"], risk["components"]["chain"]   # a rug: rug-grade evidence
(0.936, 'critical', 0.8)
>>> later = risk_at(state, "Mint1", epoch_s("2024-01-01T06:00:00Z"))
>>> later["components"]["chain"], later["level"]
(0.4, 'medium')
>>> wash = absorb(None, [{"token": "Mint2", "time": "2024-01-01T00:00:00Z", "score": 1.0,
...     "anomaly_type": "wash_trading", "detector": "chain"}])
>>> risk_at(wash, "Mint2", epoch_s("2024-01-01T00:00:00Z"))["level"]   # certain, but no rug
'high'
>>> absorb(state, [{"token": "Mint1", "time": "2024-01-01T00:00:00+00:00", "score": 0.8,
...     "anomaly_type": "liquidity_removal", "detector": "chain"}]) == state  # seen: no change
True
"""
from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from kades.events.catalogue import ANOMALY_KINDS

COMPONENTS = ("chain", "sentiment", "temporal")
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"chain": 0.4, "sentiment": 0.3, "temporal": 0.3})
DEFAULT_HALF_LIFE_S = 6 * 3600.0
LEVELS = ((0.9, "critical"), (0.7, "high"), (0.5, "medium"))
# Rug-grade kinds: only these take a token to "critical" (the catalogue may add kinds; one
# that means the liquidity is gone or being pulled belongs here).
RUG_KINDS = frozenset({"liquidity_removal", "rug_price_dump"})
OTHER_CAP = 0.85         # the highest score evidence short of a rug gives ("high")
STATE_VERSION = 2
NEGLIGIBLE = 1e-3        # a contribution below this is dropped from the set
EVIDENCE_KEPT = 128      # the strongest anomalies kept per token (~10 KB of state)
# Sentiment snapshots are kept by time, whatever their strength: only the newest up to a
# time counts there (components_at), so a calm one (0) masks the extreme ones before it, also
# when rows are rescored back to the lateness. Kept: every one within `keep_s` (risk-scoring:
# the lateness) of the newest evidence, the one in force before that, and the SNAPSHOTS_KEPT
# newest. Pruned by strength, a calm report was dropped at once and the extreme one before it
# counted again; kept as the 16 newest alone, a late extreme report with 16 calm ones after
# it was dropped, and its own row rescored without it. Each part is the same whatever order
# the set came in.
SNAPSHOTS_KEPT = 16


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


def details_digest(details: Mapping | None) -> str:
    """Tells apart anomalies of one type, token and time (e.g. two wallets); "" without
    details. The same anomaly always gets the same digest (it is `anomaly_events.anomaly_key`)."""
    if not details:
        return ""
    return hashlib.sha1(json.dumps(details, sort_keys=True).encode()).hexdigest()[:16]


def evidence_key(anomaly: Mapping) -> str:
    """An anomaly's identity: a digest of token, type, time (to the microsecond), detector
    and details (short: the set is read and written whole with every update of the token)."""
    identity = "|".join((anomaly["token"], anomaly["anomaly_type"],
                         f"{epoch_s(anomaly['time']):.6f}", anomaly.get("detector", ""),
                         details_digest(anomaly.get("details"))))
    return hashlib.sha1(identity.encode()).hexdigest()[:20]


def new_state() -> dict[str, Any]:
    return {"version": STATE_VERSION, "latest": None, "evidence": {}}


def absorb(state: dict | None, anomalies: Iterable[Mapping], *,
           half_life_s: float = DEFAULT_HALF_LIFE_S, prune: bool = True) -> dict:
    """`state` with `anomalies` added to its evidence set (a new dict; the input is unchanged).

    Evidence entries are [time (epoch s), anomaly type, score, detector]; adding one already
    there changes nothing. Without `prune`, nothing is dropped (what has decayed by the
    newest time still counts at its own: the risk at an old anomaly's time needs it)."""
    state = state if state and state.get("version") == STATE_VERSION else new_state()
    evidence = dict(state["evidence"])
    latest = state["latest"]
    for anomaly in anomalies:
        moment = epoch_s(anomaly["time"])
        component_of(anomaly["anomaly_type"])  # an unknown kind is refused here, not later
        evidence.setdefault(evidence_key(anomaly), [moment, anomaly["anomaly_type"],
                                                    float(anomaly["score"]),
                                                    anomaly.get("detector", "")])
        latest = moment if latest is None else max(latest, moment)
    return {**state, "latest": latest,
            "evidence": _bounded(evidence, latest, half_life_s) if prune else evidence}


def pruned(state: dict, *, half_life_s: float = DEFAULT_HALF_LIFE_S, keep_s: float = 0.0) -> dict:
    """`state` (absorbed without `prune`) as it is kept: without what decayed by its newest
    time, the strongest EVIDENCE_KEPT; the sentiment snapshots of the last `keep_s`."""
    return {**state, "evidence": _bounded(state["evidence"], state["latest"], half_life_s, keep_s)}


def _bounded(evidence: dict[str, list], latest: float | None, half_life_s: float,
             keep_s: float = 0.0) -> dict:
    """Without what decayed below NEGLIGIBLE by `latest`; the EVIDENCE_KEPT strongest; and
    the sentiment snapshots SNAPSHOTS_KEPT says, whatever their strength."""
    if latest is None:
        return evidence
    newest_first = sorted(((entry, key) for key, entry in evidence.items()
                           if entry[1] == SNAPSHOT_KIND), reverse=True)
    recent = [item for item in newest_first if item[0][0] >= latest - keep_s]
    snapshots = newest_first[:max(SNAPSHOTS_KEPT, len(recent) + 1)]
    live = {key: entry for key, entry in evidence.items() if entry[1] != SNAPSHOT_KIND
            and decay(entry[2], latest - entry[0], half_life_s) >= NEGLIGIBLE}
    if len(live) > EVIDENCE_KEPT:
        ranked = sorted(live.items(), key=lambda item: (
            -decay(item[1][2], latest - item[1][0], half_life_s), item[0]))
        live = dict(ranked[:EVIDENCE_KEPT])
    return {**live, **{key: entry for entry, key in snapshots}}


SNAPSHOT_KIND = "sentiment_extreme"  # evidence of a state, not of an event (components_at)


def _counted(entries: list[list], at_s: float) -> list[list]:
    """The entries that count as of `at_s` (sorted, as components_at takes them): those up to
    `at_s`, of the sentiment snapshots only the newest."""
    snapshots = [entry for entry in entries if entry[1] == SNAPSHOT_KIND and entry[0] <= at_s]
    newest = snapshots[-1] if snapshots else None
    return [entry for entry in entries
            if entry[0] <= at_s and (entry[1] != SNAPSHOT_KIND or entry is newest)]


def components_at(state: dict, at_s: float, *, half_life_s: float = DEFAULT_HALF_LIFE_S
                  ) -> dict[str, float]:
    """Each component as of `at_s`, and `rug` (the rug-grade part): noisy-ORs of the decayed
    scores of the anomalies up to `at_s`."""
    remaining = dict.fromkeys((*COMPONENTS, "rug"), 1.0)
    entries = sorted(state["evidence"].values())  # the same float sums
    # An extreme sentiment score is a snapshot of a rolling aggregate: only the newest counts
    # (its reports, one per batch of posts, were each new evidence: the same -0.8 reported
    # three times raised a high alert on sentiment alone), a calm one (0) too
    for moment, kind, score, _ in _counted(entries, at_s):
        left = 1.0 - decay(score, at_s - moment, half_life_s)
        remaining[component_of(kind)] *= left
        if kind in RUG_KINDS:
            remaining["rug"] *= left
    return {name: 1.0 - left for name, left in remaining.items()}


def score_of(components: Mapping[str, float],
             weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> float:
    """The risk score from the components and the rug-grade part (`rug`, default 0)."""
    return 1.0 - (1.0 - components.get("rug", 0.0)) * (1.0 - OTHER_CAP * combine(components, weights))


def risk_at(state: dict, token: str, at_s: float, *, half_life_s: float = DEFAULT_HALF_LIFE_S,
            weights: Mapping[str, float] = DEFAULT_WEIGHTS, explanation_size: int = 5
            ) -> dict[str, Any]:
    """The risk score document of `token` as of `at_s` (epoch s), from its evidence set."""
    components = components_at(state, at_s, half_life_s=half_life_s)
    score = round(score_of(components, weights), 4)  # the level of the score reported: 0.69996
    return {"token": token, "time": rfc3339(at_s), "score": score,  # was "0.7, medium"
            "level": level_of(score),
            "components": {name: round(components[name], 4) for name in COMPONENTS},
            "explanation": _explanation(state, at_s, half_life_s, weights, explanation_size)}


def _explanation(state: dict, at_s: float, half_life_s: float, weights: Mapping[str, float],
                 size: int) -> list[dict]:
    """The anomalies that contribute most as of `at_s` (weighted, decayed), largest first,
    newest first on ties."""
    strongest = max(weights.values())
    entries = []
    for moment, kind, score, detector in _counted(sorted(state["evidence"].values()), at_s):
        if score <= 0:
            continue  # a calm sentiment snapshot: it explains nothing
        component = component_of(kind)
        value = weights.get(component, 0.0) / strongest * decay(score, at_s - moment, half_life_s)
        entries.append((-value, -moment, kind, detector, score, component))
    return [{"anomaly_type": kind, "component": component, "score": score,
             "time": rfc3339(-neg_moment), "detector": detector,
             "contribution": round(-neg_value, 4)}
            for neg_value, neg_moment, kind, detector, score, component in sorted(entries)[:size]]


def update_risk(state: dict | None, token: str, anomalies: Iterable[dict], *,
                now: str | None = None, half_life_s: float = DEFAULT_HALF_LIFE_S,
                weights: Mapping[str, float] = DEFAULT_WEIGHTS, explanation_size: int = 5
                ) -> tuple[dict, dict]:
    """Add `token`'s anomalies to its state; (new state, risk score document).

    The score is as of `now`, else as of the latest of the new anomalies, else as of the
    newest time in the state: an event's score is the token's risk at that event's time, and
    an anomaly that arrives late scores at its own time (later anomalies do not count there).
    """
    anomalies = list(anomalies)
    state = absorb(state, anomalies, half_life_s=half_life_s)
    if now is not None:
        moment = epoch_s(now)
    elif anomalies:
        moment = max(epoch_s(a["time"]) for a in anomalies)
    elif state["latest"] is not None:
        moment = state["latest"]
    else:
        raise ValueError("no time to score at: give anomalies or `now`")
    return state, risk_at(state, token, moment, half_life_s=half_life_s, weights=weights,
                          explanation_size=explanation_size)


def time_below(state: dict, floor: float, after_s: float, *,
               half_life_s: float = DEFAULT_HALF_LIFE_S,
               weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> float:
    """The first time after `after_s` at which the risk is below `floor`, when no evidence
    comes after `after_s` (risk only decays then), to the second. Scores are compared as
    `risk_at` reports them (4 decimals), as the alerts judge them. Never (inf) for a floor
    of 0 or less, which no such score falls below."""
    if not floor > 0:
        return math.inf

    def score(at_s: float) -> float:
        return round(score_of(components_at(state, at_s, half_life_s=half_life_s), weights), 4)

    if score(after_s) < floor:
        return after_s
    low, high = after_s, after_s + half_life_s
    while score(high) >= floor:  # every contribution halves per half-life: this ends
        low, high = high, high + 2 * (high - after_s)
    while high - low > 1.0:
        middle = (low + high) / 2
        low, high = (low, middle) if score(middle) < floor else (middle, high)
    return float(math.ceil(high))
