"""LevelRangeDetector: a level that drifts out of its usual range, however slowly.

The other members look back 15 minutes at most, and the multi-window member learns a
steady trend as its gaps' bias within the hour: a sensor failing by a slow ramp (a quarter
of its noise's sd a minute, 90 sd off after 6 hours) was never alerted. This member keeps
a long robust baseline of the level (half-life `baseline_s`, a day): its EWMA mean and the
EWMA mean |deviation| from it, no bias learning, and scores how far a short EWMA of the
level (`smooth_s`) stands from that mean, in those deviations. A single outlier barely
moves the short average: the member speaks of sustained departures only.

Only a mean-reverting series has a range: a price (a random walk) wanders away from any
baseline and may trend for days. The member scores only while the series' long deviation
is at most `max_range_ratio` times its typical step (EWMA mean |step|, same half-life):
about 0.7 for white noise, 2 for an AR(1) of 0.9, sqrt(points per half-life) for a random
walk (25-30 here).

A departure that was flagged (a point the filter advanced past, not learned), or that
reaches an alert's score here, is accepted: further scores on that side are judged against twice its size, so a drift alerts again
each time it doubles, not at every cooldown; what is accepted fades with the baseline.

Stepped in the ensemble's one pass (kades.temporal.fused) with the other members; its scores
are kept apart there and meet the threshold as they are, not through the anomaly likelihood
(TemporalEnsemble.last_direct, ThresholdFilter): the likelihood learned a slowly rising raw
score as the normal, and the slow drifts this member is for became the normal too.

>>> import random
>>> rng, detector = random.Random(4), LevelRangeDetector(log_scale=False)
>>> for minute in range(2 * 1440):   # two calm days of a level: warmed up, mean-reverting
...     detector.learn_one({"time": 60.0 * minute, "price": 100 + rng.gauss(0, 1)})
>>> detector.mean_reverting(), round(detector.deviation / detector.step, 1)
(True, 0.7)
>>> scores = []
>>> for minute in range(2880, 2880 + 60):   # a ramp of 15 sd an hour
...     x = {"time": 60.0 * minute, "price": 100 + rng.gauss(0, 1) + (minute - 2880) / 4}
...     scores.append(detector.score_one(x))   # (all learned: no filter here)
...     detector.learn_one(x)
>>> scores[0] < 0.05, min(i for i, score in enumerate(scores) if score >= 0.5)
(True, 33)
"""
from __future__ import annotations

from kades.temporal.base import (Detector, change_of, level_of, ratio_of, robust_update, squash,
                                 update_resolution, weight)


ACCEPT_SCORE = 0.5  # the threshold filter's


class LevelRangeDetector(Detector):
    name = "level_range"
    kinds = ("price_spike", "flash_crash")
    STATE = ("seen", "last_time", "first_time", "last_level", "mean", "deviation", "step",
             "smooth", "resolution", "accepted")

    def __init__(self, *, baseline_s: float = 86400.0, smooth_s: float = 300.0,
                 grace_s: float = 21600.0, grace_period: int = 240, half_score_z: float = 8.0,
                 max_range_ratio: float = 4.0, winsorise_z: float = 4.0,
                 min_scale: float = 1e-4, log_scale: bool = True):
        self.baseline_s = baseline_s
        self.smooth_s = smooth_s
        self.grace_s = grace_s
        self.grace_period = grace_period
        self.half_score_z = half_score_z
        self.max_range_ratio = max_range_ratio
        self.winsorise_z = winsorise_z
        self.min_scale = min_scale
        self.log_scale = log_scale
        self.seen = 0
        self.last_time: float | None = None
        self.first_time: float | None = None
        self.last_level: float | None = None
        self.mean = 0.0
        self.deviation = 0.0
        self.step = 0.0
        self.smooth = 0.0
        self.resolution = 0.0
        self.accepted = 0.0  # signed z of the largest departure flagged, fading

    @property
    def warmed_up(self) -> bool:
        return (self.seen >= self.grace_period and self.first_time is not None
                and self.last_time - self.first_time >= self.grace_s)

    def mean_reverting(self) -> bool:
        return self.deviation <= self.max_range_ratio * self.step

    def _smooth(self, x: dict) -> tuple[float, float]:
        level = level_of(x["price"], self.log_scale)
        if self.last_level is None:  # (not last_time: one added to an older state has a time)
            return level, level
        rate = 1.0 - 0.5 ** (self._elapsed(x) / self.smooth_s)
        return level, self.smooth + rate * (level - self.smooth)

    def _z(self, x: dict) -> float:
        _, smooth = self._smooth(x)
        scale = max(self.deviation, self.min_scale, self.resolution)
        return (smooth - self.mean) / scale

    def _score(self, x: dict) -> dict[str, float]:
        if not self.mean_reverting():
            return {"price_spike": 0.0, "flash_crash": 0.0}
        z = self._z(x)
        accepted = self.accepted
        if accepted and (accepted > 0) == (z > 0):
            z *= min(1.0, self.half_score_z / (2.0 * abs(accepted)))
        score = squash(abs(z), self.half_score_z)
        return {"price_spike": score if z > 0 else 0.0, "flash_crash": score if z < 0 else 0.0}

    def _learn(self, x: dict, *, learn: bool) -> None:
        level, smooth = self._smooth(x)
        elapsed = self._elapsed(x)
        fade = 0.5 ** (elapsed / self.baseline_s)
        if self.last_level is None or (self.resolution <= 0 and level == self.last_level):
            # the member starts at the series' first move: a series constant so far has no
            # range (deviation and step 0, which winsorised learning never leaves), and on
            # one its first noise scored 1 on and on (600 alerts in 6 days, against 12-21)
            self.mean = smooth = level
            self.first_time = float(x["time"])
            self.seen = 0
        else:
            # A departure is accepted when flagged (advanced past: something alerted, or a run
            # goes on) or when this member reaches an alert's score (ACCEPT_SCORE) itself, also
            # in a long run the filter learns from again (relearn_after_s): the level's own
            # departure, as the short average lags a step and would alert again on catching up.
            if self.warmed_up and self.mean_reverting() and (
                    not learn or max(self._score(x).values()) >= ACCEPT_SCORE):
                z = (level - self.mean) / max(self.deviation, self.min_scale, self.resolution)
                if abs(z) > abs(self.accepted) or (z > 0) != (self.accepted > 0):
                    self.accepted = z
            if learn:
                move = level - self.last_level
                self.resolution = update_resolution(self.resolution, move)
                rate = weight(elapsed, self.baseline_s, self.seen)
                self.step = robust_update(self.step, abs(move), rate, self.seen,
                                          self.winsorise_z)
                self.deviation = robust_update(self.deviation, abs(level - self.mean), rate,
                                               self.seen, self.winsorise_z)
                self.mean += rate * (level - self.mean)
                self.seen += 1
        self.accepted *= fade
        self.smooth = smooth
        self.last_time, self.last_level = float(x["time"]), level

    def evidence(self, x: dict) -> dict:
        if self.last_level is None:
            return {}
        level, smooth = self._smooth(x)
        gap = smooth - self.mean
        move = change_of(gap) if self.log_scale else gap
        return {"window_s": self.baseline_s, "move": round(move, 6),
                "baseline": round(ratio_of(self.mean) if self.log_scale else self.mean, 12),
                "z": round(self._z(x), 2)}
