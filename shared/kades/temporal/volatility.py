"""VolatilityRegimeDetector: volatility that jumps to a new regime (EWMA variance ratio).

The squared return per second is averaged over a short and a long half-life; their ratio
is the volatility regime. Each return enters clipped at a few long-run deviations, so one
spike (another detector's business) cannot make a regime on its own.

>>> import random
>>> from kades.temporal.threshold import ThresholdFilter
>>> rng, price, flags = random.Random(2), 1.0, []
>>> monitor = ThresholdFilter(VolatilityRegimeDetector())   # flagged points are not learned
>>> for second in range(0, 7200, 5):
...     sigma = 0.002 if second < 5400 else 0.012      # six times the volatility from 5400 s
...     price *= 1 + rng.gauss(0, sigma)
...     flags += monitor.process_one({"time": second, "price": price})
>>> [(flag["anomaly_type"], 5400 <= flag["time"] < 5400 + 300) for flag in flags][:1]
[('volatility_regime', True)]
"""
from __future__ import annotations

import math

from kades.temporal.base import (Detector, level_of, squash, tail_adjusted, taught,
                                 update_resolution, update_tail, weight)

NORMAL_TAIL_LOG_RATIO = math.log(2.0)  # 1-in-100 short/long variance ratio of a steady market


class VolatilityRegimeDetector(Detector):
    """Scores the ratio of short-run to long-run variance of returns per second.

    Parameters:
        short_half_life_s / long_half_life_s: the two variance averages (seconds).
        half_score_ratio: the variance ratio scored 0.5 (3x the standard deviation = 9).
        clip_z: a return enters the averages clipped at this many long-run deviations.
        grace_period: returns learned before scoring.
        grid_steps: a few steps of the learned price grid per short half-life are no regime.
        min_points: the short average spans at least this many points.
        log_scale: log values (prices); False for series that may be <= 0.
    """

    name = "volatility_regime"
    kinds = ("volatility_regime",)
    STATE = ("seen", "last_time", "last_level", "short_variance", "long_variance", "resolution",
             "tail")

    def __init__(self, *, short_half_life_s: float = 120.0, long_half_life_s: float = 3600.0,
                 half_score_ratio: float = 4.0, clip_z: float = 6.0, grace_period: int = 60,
                 min_variance: float = 1e-12, grid_steps: float = 2.0, min_points: int = 10,
                 log_scale: bool = True):
        if not 0 < short_half_life_s < long_half_life_s or half_score_ratio <= 1 or grace_period < 2:
            raise ValueError("0 < short_half_life_s < long_half_life_s, half_score_ratio > 1, "
                             "grace_period >= 2 are required")
        self.short_half_life_s = short_half_life_s
        self.long_half_life_s = long_half_life_s
        self.half_score_ratio = half_score_ratio
        self.clip_z = clip_z
        self.grace_period = grace_period
        self.min_variance = min_variance
        self.log_scale = log_scale
        self.grid_steps = grid_steps
        self.min_points = min_points
        self.resolution = 0.0
        self.tail = NORMAL_TAIL_LOG_RATIO  # 99th percentile of the log variance ratio, learned
        self.seen = 0
        self.last_time: float | None = None
        self.last_level: float | None = None
        self.short_variance = 0.0
        self.long_variance = 0.0

    def _ratio(self, x: dict) -> float:
        short = self._next_short(x)
        # on a coarse price grid, a few steps per short half-life is no regime
        grid = (self.grid_steps * self.resolution) ** 2 / self.short_half_life_s
        return short / max(self.long_variance, self.min_variance, grid)

    def _next_short(self, x: dict) -> float:
        elapsed = self._elapsed(x)
        rate = (level_of(x["price"], self.log_scale) - self.last_level) ** 2 / elapsed
        rate = min(rate, self.clip_z ** 2 * max(self.long_variance, self.min_variance))
        return self.short_variance + self._short_rate(elapsed) * (rate - self.short_variance)

    def _short_rate(self, elapsed: float) -> float:
        # at least `min_points` points in the short average, however sparse the ticks:
        # a variance of two or three returns is noise, not a regime
        return min(1 - 0.5 ** (elapsed / self.short_half_life_s), 1.0 / self.min_points)

    def _score(self, x: dict) -> dict[str, float]:
        ratio = self._ratio(x)
        z = tail_adjusted(math.log(ratio), self.tail, normal=NORMAL_TAIL_LOG_RATIO) if ratio > 1 else 0.0
        return {"volatility_regime": squash(z, math.log(self.half_score_ratio))}

    def _learn(self, x: dict, *, learn: bool) -> None:
        level = level_of(x["price"], self.log_scale)
        if self.last_level is not None:
            elapsed = self._elapsed(x)
            rate = (level - self.last_level) ** 2 / elapsed
            self.resolution = update_resolution(self.resolution, level - self.last_level)
            if learn:
                ratio = self._ratio(x)
                self.tail = update_tail(self.tail, math.log(ratio) if ratio > 1 else 0.0, rate=0.003)
            if learn:  # the baseline never learns from flagged points; "now" always does
                clipped = min(rate, self.clip_z ** 2 * self.long_variance) if self.seen >= 5 else rate
                self.long_variance += weight(elapsed, self.long_half_life_s, self.seen) * (
                    clipped - self.long_variance)
                self.seen += 1
            self.short_variance = self._next_short(x) if self.seen > 1 else self.long_variance
        self.last_time, self.last_level = float(x["time"]), level

    def rescale_time(self, slowed: float, taught_s: float = math.inf) -> None:
        """The clock now runs `slowed` times slower (kades.temporal.clock, a new cadence):
        the variances learned per second of the old clock, in the new one's seconds, once
        the new cadence's steps taught the long one (`taught_s` of them: base.taught); both
        or neither, or their ratio would jump."""
        if taught(taught_s, self.long_half_life_s):
            self.short_variance *= slowed
            self.long_variance *= slowed

    def evidence(self, x: dict) -> dict:
        if self.last_level is None:
            return {}
        return {"volatility_ratio": round(math.sqrt(self._ratio(x)), 3),
                "window_s": self.short_half_life_s, "baseline_window_s": self.long_half_life_s}
