"""AnomalyLikelihood: raw detector scores turned into surprise, per anomaly kind.

The method of HTM's anomaly likelihood (Ahmad et al., "Unsupervised real-time anomaly
detection for streaming data", 2017), made streaming: for each kind, a long running normal
of the raw scores (mean and variance over about `history_points` points) and a short
average of the latest ones (`short_points`); the surprise is how improbable that short
average is under the long normal -- the tail probability Q(z) -- on a log scale:
0 at the usual score (Q = 1/2), 0.5 when 2Q(z) = 10^-`half_log10`, 1 at twice that. A token whose detectors score 0.6
every other hour gets little surprise from another 0.6; a calm one gets a lot. The long
normal learns every point, anomalies too, so a new regime becomes the normal and its
surprise falls. Counting points, not seconds, makes it the same for any rhythm.

Raw scores under `raw_floor` are never surprising (a token whose scores sit at 0.00 would
otherwise find 0.1 a miracle), and the variance has a floor (`floor_sd`) for the same reason.

`score_learn` runs on every point of every token, so Cython compiles this module as it does
kades.temporal.fused (shared/setup.py): its locals' annotations make them C doubles, the same
operations in the same order, so the same floats (tests/temporal/test_likelihood_compiled.py
runs both on the same inputs); Python ignores them. Cython checks an argument annotated with
a builtin type (dict, int, str) for that exact type, so the arguments name what they take in
types it leaves alone (Mapping, int | float, Hashable): compiled, they take what they took.

On request (`score_learn(raw, rare_out=kinds)`, the threshold filter's on coarse series)
those kinds' events stay out of their long normal while they are rare (RARE_SHARE).

>>> likelihood = AnomalyLikelihood(min_points=5)
>>> calm = {"pump": 0.05}
>>> for _ in range(200):
...     _ = likelihood.score_learn(calm)
>>> likelihood.score_learn(calm)["pump"]
0.0
>>> round(likelihood.score_learn({"pump": 0.9})["pump"], 2)      # rare for this token
1.0
>>> for _ in range(2000):                                          # a new normal
...     _ = likelihood.score_learn({"pump": 0.9})
>>> likelihood.score_learn({"pump": 0.9})["pump"] < 0.01
True
"""
from __future__ import annotations

import copy
import math
from typing import Any, Collection, Hashable, Mapping

STATE_VERSION = 1
_SQRT2 = math.sqrt(2.0)
_erfc, _log10, _sqrt = math.erfc, math.log10, math.sqrt  # Python's own, compiled or not
# Rare events are not the normal. Learning every point, a kind's events set its spread: one
# x3 spike every 100 points gives raw scores of 0.95 among 0.02s, a spread of 0.09, and the
# next spike's short average (0.48) is no longer a one-in-a-million score: an hourly KPI's
# spike every 3 days alerted once, a spike every 50-100 points 0/59 and 0/30 after the first
# thousand points. For the kinds in `rare_out`, an event (a surprise of EVENT_SURPRISE or
# more) is kept out of the long normal, as flagged points are kept out of the detectors'
# scales, while the kind's events are under RARE_SHARE of its latest RATE_POINTS or so
# points (an EWMA of 1 at an event, 0 otherwise, this one included): isolated events are
# judged against the points between them, each time. A series that turns spiky (an event
# every few points) passes the share within a few events, and its events become the normal
# as before. 1 in 15: an hourly series' daily event (1 in 24; its share peaks at 0.047)
# stays rare, for the threshold filter's daily rhythm (RECUR_DAYS) to judge by its time of
# day.
EVENT_SURPRISE = 0.5
RARE_SHARE = 1.0 / 15.0
RATE_POINTS = 100.0


class AnomalyLikelihood:
    """Surprise of each kind's raw scores against that kind's own history on this series.

    Parameters:
        history_points: about how many points the long normal spans (EWMA, 1/n weight).
        short_points: the short average's span (1 = the score itself).
        floor_sd: the smallest spread the long normal is given.
        half_log10: -log10 of the tail probability that scores 0.5.
        raw_floor: raw scores below this are never surprising.
        min_points: points learned before any surprise is given (a warm-up).
    """

    def __init__(self, *, history_points: int | float = 1000, short_points: float = 2.0,
                 floor_sd: float = 0.05, half_log10: float = 6.0, raw_floor: float = 0.3,
                 min_points: int | float = 30):
        if history_points < 2 or short_points < 1 or floor_sd <= 0 or half_log10 <= 0:
            raise ValueError("history_points >= 2, short_points >= 1, floor_sd > 0 and "
                             "half_log10 > 0 required")
        self.history_points = history_points
        self.short_points = short_points
        self.floor_sd = floor_sd
        self.half_log10 = half_log10
        self.raw_floor = raw_floor
        self.min_points = min_points
        self.seen = 0
        self.kinds: dict[str, list[float]] = {}  # kind -> [mean, variance, short average]
        self.event_rates: dict[str, float] = {}  # kind -> share of events (rare_out)

    def score_learn(self, raw: Mapping[str, float], *, rare_out: Collection[str] = (),
                    share: float = 1.0) -> dict[str, float]:
        """`score` then `learn` (as normal), in one pass over the kinds: the same numbers.
        The kinds in `rare_out` keep an event out of their long normal while their events
        are rare (RARE_SHARE); the share of events is kept for them only. `share`: how much
        of a point this one is to the long normal (a burst's reading, a fraction of the
        series' usual step: kades.temporal.clock.BURST_STEPS)."""
        # C doubles in the compiled build (shared/setup.py; Python never evaluates a local's
        # annotation): the same IEEE operations in the same order, so the same floats; max
        # and min are written `b if b > a else a` (the same value, NaN and ties alike)
        short_rate: float; floor: float; raw_floor: float; weight: float; half: float
        value: float; mean: float; variance: float; short: float; score: float
        delta: float; rate: float; tail: float; z: float; first: float; settled: float
        root2: float = _SQRT2
        short_rate = 1.0 / self.short_points
        scored = self.seen >= self.min_points
        floor, raw_floor = self.floor_sd * self.floor_sd, self.raw_floor
        first, settled = 1.0 / (self.seen + 1), 1.0 / self.history_points
        weight = (settled if settled > first else first) * share
        half = 2.0 * self.half_log10
        kinds, rates, surprise = self.kinds, self.event_rates, {}
        for kind, given in raw.items():
            value = given
            stats = kinds.get(kind)
            if stats is None:
                stats = kinds[kind] = [0.0, 0.0, given]
            mean, variance, short = stats
            short += short_rate * (value - short)
            score = 0.0
            if scored and value >= raw_floor and short > mean:  # Q(z), on a log scale
                z = (short - mean) / _sqrt(variance + floor)
                tail = _erfc(z / root2)  # twice Q(z): 1 at z = 0
                if tail <= 0.0:
                    score = 1.0
                else:
                    score = -_log10(tail)
                    score = (score if score > 0.0 else 0.0) / half
                    score = score if score < 1.0 else 1.0
            surprise[kind] = score
            if kind in rare_out and (score >= EVENT_SURPRISE or kind in rates):
                event = score >= EVENT_SURPRISE
                rate = rates.get(kind, 0.0)
                rate = rate + (event - rate) / RATE_POINTS
                rates[kind] = rate
                if event and rate < RARE_SHARE:  # rare: the normal is the points around it
                    stats[2] = short
                    continue
            delta = value - mean
            stats[0] = mean + weight * delta
            stats[1] = (1.0 - weight) * (variance + weight * delta * delta)
            stats[2] = short
        self.seen += 1
        return surprise

    def score(self, raw: Mapping[str, float]) -> dict[str, float]:
        """Each kind's surprise in [0, 1] at these raw scores, judged on the history before
        them (learns nothing): what `score_learn` would give, on a copy."""
        return copy.deepcopy(self).score_learn(raw)

    def learn(self, raw: Mapping[str, float], *, normal: bool = True) -> None:
        """Take these raw scores into the short averages, and into the long normal unless
        `normal` is False (a point of an anomalous run: the run is judged against the time
        before it, until the caller calls it a new normal)."""
        weight = max(1.0 / (self.seen + 1), 1.0 / self.history_points)
        short_rate = 1.0 / self.short_points
        for kind, value in raw.items():
            stats = self.kinds.get(kind)
            if stats is None:
                stats = self.kinds[kind] = [0.0, 0.0, value]
            mean, variance, short = stats
            stats[2] = short + short_rate * (value - short)
            if normal:
                delta = value - mean
                stats[0] = mean + weight * delta
                stats[1] = (1.0 - weight) * (variance + weight * delta * delta)
        self.seen += normal

    def evidence(self, kind: Hashable) -> dict[str, Any]:
        """What the kind's surprise was judged against: its usual raw score and spread."""
        mean, variance, _ = self.kinds.get(kind, (0.0, 0.0, 0.0))
        return {"usual_score": round(mean, 4), "usual_spread": round(math.sqrt(variance), 4)}

    def to_state(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "seen": self.seen,
                "kinds": {kind: list(stats) for kind, stats in self.kinds.items()},
                **({"event_rates": dict(self.event_rates)} if self.event_rates else {})}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, **params: Any) -> "AnomalyLikelihood":
        """One with `params` carrying on from `state`; None or another version: a fresh one
        (it warms up again in `min_points` points)."""
        likelihood = cls(**params)
        if state and state.get("version") == STATE_VERSION:
            likelihood.seen = state["seen"]
            likelihood.kinds = {kind: list(stats) for kind, stats in state["kinds"].items()}
            likelihood.event_rates = dict(state.get("event_rates", {}))  # optional: none before
        return likelihood
