"""PumpDetector: price and volume surging together (the signature of a pump), and its falling
side, a dump: a point that falls on a volume surge, over DUMP_GRIDS price steps under the
price average (kind `dump`).

Two gaps, each judged against its own robust scale learned on the token: the log price
above its average over `price_window_s`, and the short-run average of log volume above its
long-run level. The score is the geometric mean of the two squashed gaps, so a price rise
on thin volume or heavy volume on a flat price stays low; only both together score high.

>>> import random
>>> rng, detector, price = random.Random(4), PumpDetector(), 1.0
>>> for second in range(0, 3600, 5):
...     price *= 1 + rng.gauss(0, 0.002)
...     detector.learn_one({"time": second, "price": price, "volume": 100 * (1 + rng.random())})
>>> rally = {"time": 3605, "price": price * 1.05, "volume": 150.0}
>>> heavy = {"time": 3605, "price": price, "volume": 5000.0}
>>> for step in range(1, 13):                       # +40% in a minute on 20x the volume
...     pumped = {"time": 3600 + 5 * step, "price": price * 1.03 ** step, "volume": 3000.0}
...     score = detector.score_one(pumped)
...     detector.learn_one(pumped)
>>> detector.score_one(rally) < 0.5, score > 0.5
(True, True)
"""
from __future__ import annotations

import math

from kades.temporal.base import (Detector, level_of, ratio_of, robust_update, squash,
                                 update_resolution, weight)

# A dump is a fall on heavy volume; on a price grid a fall of a step or two under the average
# is the grid (a thin token's bar that ticks down while an unrelated large trade prints).
DUMP_GRIDS = 2.0


class PumpDetector(Detector):
    """Scores price and volume surging together.

    Parameters:
        price_window_s: half-life of the price average the rise is measured from.
        volume_window_s / volume_baseline_s: half-lives of the short and long volume averages.
        half_life_s: how fast the learned scales forget.
        half_score_z: robust deviations at which each half of the score is 0.5.
        grace_period: points learned before scoring.
    """

    name = "pump"
    kinds = ("pump", "dump")
    STATE = ("seen", "last_time", "price_average", "price_scale", "volume_short",
             "volume_long", "volume_scale", "volumes_seen", "last_level", "resolution")

    def __init__(self, *, price_window_s: float = 300.0, volume_window_s: float = 60.0,
                 volume_baseline_s: float = 3600.0, half_life_s: float = 3600.0,
                 half_score_z: float = 5.0, grace_period: int = 60, min_price_scale: float = 1e-4,
                 min_volume_scale: float = 0.05, log_scale: bool = True):
        if min(price_window_s, volume_window_s) <= 0 or volume_baseline_s <= volume_window_s:
            raise ValueError("positive windows and volume_baseline_s > volume_window_s required")
        if grace_period < 2 or half_score_z <= 0:
            raise ValueError("grace_period >= 2 and half_score_z > 0 required")
        self.price_window_s = price_window_s
        self.volume_window_s = volume_window_s
        self.volume_baseline_s = volume_baseline_s
        self.half_life_s = half_life_s
        self.half_score_z = half_score_z
        self.grace_period = grace_period
        self.min_price_scale = min_price_scale
        self.min_volume_scale = min_volume_scale
        self.log_scale = log_scale
        self.seen = 0
        self.volumes_seen = 0
        self.last_time: float | None = None
        self.price_average: float | None = None
        self.price_scale = 0.0
        self.volume_short = 0.0
        self.volume_long = 0.0
        self.volume_scale = 0.0
        self.last_level: float | None = None  # a dump is a point that falls,
        self.resolution = 0.0                   # more than DUMP_GRIDS price steps under the average

    def _gaps(self, x: dict) -> tuple[float, float]:
        """(robust z of the price rise, robust z of the short volume average's surge)."""
        elapsed = self._elapsed(x)
        rise = level_of(x["price"], self.log_scale) - self.price_average
        z_price = rise / max(self.price_scale, self.min_price_scale)
        volume = x.get("volume")
        if not volume or volume <= 0 or self.volumes_seen < self.grace_period // 2:
            return z_price, 0.0
        short = self.volume_short + (1 - 0.5 ** (elapsed / self.volume_window_s)) * (
            math.log(volume) - self.volume_short)
        return z_price, (short - self.volume_long) / max(self.volume_scale, self.min_volume_scale)

    def _score(self, x: dict) -> dict[str, float]:
        z_price, z_volume = self._gaps(x)
        level = level_of(x["price"], self.log_scale)
        falls = (z_price < 0 and self.last_level is not None and level < self.last_level
                 and self.price_average - level > DUMP_GRIDS * self.resolution)
        if not (z_price > 0 or falls) or z_volume <= 0:
            return {"pump": 0.0, "dump": 0.0}
        score = math.sqrt(squash(z_price, self.half_score_z) * squash(z_volume, self.half_score_z))
        return {"pump": score, "dump": 0.0} if z_price > 0 else {"pump": 0.0, "dump": score}

    def _learn(self, x: dict, *, learn: bool) -> None:
        level = level_of(x["price"], self.log_scale)
        elapsed = self._elapsed(x)
        rate = weight(elapsed, self.half_life_s, self.seen)
        if self.price_average is None:
            self.price_average = level
        else:
            gap = level - self.price_average
            if learn:
                self.price_scale = robust_update(self.price_scale, abs(gap), rate, self.seen, 4.0)
                self.seen += 1
            self.price_average += (1 - 0.5 ** (elapsed / self.price_window_s)) * gap
        volume = x.get("volume")
        if volume and volume > 0:
            log_volume = math.log(volume)
            if self.volumes_seen == 0:
                self.volume_short = self.volume_long = log_volume
            else:
                self.volume_short += (1 - 0.5 ** (elapsed / self.volume_window_s)) * (
                    log_volume - self.volume_short)
                if learn:
                    surge = self.volume_short - self.volume_long
                    self.volume_scale = robust_update(self.volume_scale, abs(surge), rate,
                                                      self.volumes_seen, 4.0)
                    self.volume_long += weight(elapsed, self.volume_baseline_s,
                                               self.volumes_seen) * (log_volume - self.volume_long)
            self.volumes_seen += 1
        if self.last_level is not None:
            self.resolution = update_resolution(self.resolution, level - self.last_level)
        self.last_level = level
        self.last_time = float(x["time"])

    @classmethod
    def from_state(cls, state, **params):
        if state and "last_level" not in state:  # saved before dumps were scored
            state = {**state, "last_level": None, "resolution": 0.0}
        return super().from_state(state, **params)

    def evidence(self, x: dict) -> dict:
        if self.price_average is None:
            return {}
        z_price, z_volume = self._gaps(x)
        baseline = ratio_of(self.price_average) if self.log_scale else self.price_average
        return {"window_s": self.price_window_s, "baseline": round(baseline, 12),
                "price_z": round(z_price, 2), "volume_z": round(z_volume, 2),
                "volume_ratio": round(ratio_of(self.volume_short - self.volume_long), 3)}
