"""MultiWindowReturnDetector: price spikes and flash crashes over several windows at once.

A single-step detector misses a -20% slide spread over five minutes; this one compares the
level with its exponentially weighted average over each window (1, 5, 15 minutes by
default) and judges the gap against that window's own robust scale, learned on the token
itself. So a -20% fall in 5 minutes on a calm token scores high, while the same fall on a
token that moves 20% an hour does not. The gap's usual bias is learned too: a steady trend
keeps the level ahead of its average and is not an anomaly.

The longest window is judged from where the local trend puts the level, not from its average:
an average lags a trend by its own span, and two averages tell the trend (the longest one lags
the next by the difference of their spans), so its gap is taken less that lag
(`trend_weight`). On a smooth cycle the lag swings with the cycle's slope, and the bias,
learned over an hour, cannot follow it: on a 12-hour cycle of 5 sd at 5-minute steps the
15-minute window's scale grew 2.3-fold, and 10-sd spikes were caught 14/30 (now 28/30).

>>> import random
>>> rng, detector, price = random.Random(5), MultiWindowReturnDetector(), 1.0
>>> for second in range(0, 3600, 5):
...     price *= 1 + rng.gauss(0, 0.002)
...     detector.learn_one({"time": second, "price": price})
>>> slide = [price * (1 - 0.004 * step) for step in range(1, 61)]   # -24% over 5 minutes
>>> scores = [detector.score_one({"time": 3600 + 5 * i, "price": p}) for i, p in enumerate(slide)]
>>> first = next(i for i, s in enumerate(scores) if s >= 0.5)
>>> 0 < first < 30, max(scores) > 0.9
(True, True)
"""
from __future__ import annotations

import math

from kades.temporal.base import (NORMAL_TAIL_Z, Detector, change_of, level_of, ratio_of,
                                 robust_update, squash, tail_adjusted, update_resolution,
                                 update_tail, weight)


class MultiWindowReturnDetector(Detector):
    """Scores the gap between the level and its moving averages, per window.

    Parameters:
        windows_s: half-lives of the moving averages (seconds).
        grace_period: points to learn from before scoring.
        half_life_s: how fast the learned scales forget.
        half_score_z: robust deviations at which the score is 0.5.
        winsorise_z: deviations beyond this many scales enter the scales clipped.
        min_scale: smallest scale assumed (in level units: log price by default).
        grid_steps: a gap of this many steps of the learned price grid has z 1 at most.
        log_scale: work on log values (prices); False for series that may be <= 0.
    """

    name = "multi_window"
    kinds = ("price_spike", "flash_crash")
    STATE = ("seen", "last_time", "last_level", "averages", "biases", "scales", "resolution", "tail")

    def __init__(self, *, windows_s: tuple[float, ...] = (60.0, 300.0, 900.0),
                 grace_period: int = 60, half_life_s: float = 3600.0, half_score_z: float = 7.0,
                 winsorise_z: float = 4.0, min_scale: float = 1e-4, grid_steps: float = 2.0,
                 log_scale: bool = True):
        if not windows_s or min(windows_s) <= 0 or grace_period < 2 or half_score_z <= 0:
            raise ValueError("positive windows_s, grace_period >= 2 and half_score_z > 0 required")
        self.windows_s = tuple(windows_s)
        self.grace_period = grace_period
        self.half_life_s = half_life_s
        self.half_score_z = half_score_z
        self.winsorise_z = winsorise_z
        self.min_scale = min_scale
        self.log_scale = log_scale
        self.grid_steps = grid_steps
        self.resolution = 0.0
        self.tail = NORMAL_TAIL_Z
        self.seen = 0
        self.last_time: float | None = None
        self.last_level: float | None = None
        self.averages: list[float] = []
        self.biases = [0.0] * len(self.windows_s)
        self.scales = [0.0] * len(self.windows_s)
        # the longest window's lag under a linear trend, per unit of the gap between it and the
        # next one's average (EWMA lags are proportional to their spans): 1.5 for 5 and 15 min
        longest, before = (self.windows_s[-1], self.windows_s[-2]) if len(self.windows_s) > 1 \
            else (0.0, 0.0)
        self.trend_weight = longest / (longest - before) if longest > before else 0.0

    def _trend_gap(self) -> float:
        """How far the local trend puts the level ahead of the longest window's average, from
        the gap between its average and the next one's: the lag of an average behind a trend
        is proportional to its span."""
        if not self.trend_weight:
            return 0.0
        return self.trend_weight * (self.averages[-2] - self.averages[-1])

    def _gaps(self, x: dict) -> tuple[float, list[float]]:
        """(level, robust z of the level's gap to each window's average, signed)."""
        level = level_of(x["price"], self.log_scale)
        elapsed = self._elapsed(x)
        zs, last = [], len(self.windows_s) - 1
        trend = self._trend_gap()
        for i, (window, average, bias, scale) in enumerate(zip(self.windows_s, self.averages,
                                                               self.biases, self.scales)):
            # a long silence lets the level wander further from an old average
            spread = max(max(scale, self.min_scale) * math.sqrt(1.0 + elapsed / window),
                         self.grid_steps * self.resolution)
            gap = level - average - trend if i == last else level - average
            zs.append((gap - bias) / spread)
        return level, zs

    def _score(self, x: dict) -> dict[str, float]:
        _, zs = self._gaps(x)
        z = tail_adjusted(max(zs, key=abs), self.tail)
        score = squash(abs(z), self.half_score_z)
        return {"price_spike": score if z > 0 else 0.0, "flash_crash": score if z < 0 else 0.0}

    def _learn(self, x: dict, *, learn: bool) -> None:
        level = level_of(x["price"], self.log_scale)
        elapsed = self._elapsed(x)
        if self.last_level is not None:
            self.resolution = update_resolution(self.resolution, level - self.last_level)
        if not self.averages:
            self.averages = [level] * len(self.windows_s)
        elif not learn:  # a flagged jump: averages restart from it, scales never see it
            self.averages = [level] * len(self.windows_s)
        else:
            self.tail = update_tail(self.tail, max(map(abs, self._gaps(x)[1])))
            rate = weight(elapsed, self.half_life_s, self.seen)
            trend, last = self._trend_gap(), len(self.windows_s) - 1
            for i, window in enumerate(self.windows_s):
                gap = level - self.averages[i]
                judged = gap - trend if i == last else gap  # the trend's lag taken out
                self.scales[i] = robust_update(self.scales[i], abs(judged - self.biases[i]),
                                               rate, self.seen, self.winsorise_z)
                self.biases[i] += rate * (judged - self.biases[i])
                self.averages[i] += (1.0 - 0.5 ** (elapsed / window)) * gap
            self.seen += 1
        self.last_time, self.last_level = float(x["time"]), level

    def evidence(self, x: dict) -> dict:
        if not self.averages:
            return {}
        level, zs = self._gaps(x)
        i = max(range(len(zs)), key=lambda k: abs(zs[k]))
        baseline = self.averages[i] + (self._trend_gap() if i == len(zs) - 1 else 0.0)
        move = (change_of(level - baseline) if self.log_scale else level - baseline)
        return {"window_s": self.windows_s[i], "move": round(move, 6),
                "baseline": round(ratio_of(baseline) if self.log_scale else baseline, 12),
                "z": round(zs[i], 2)}
