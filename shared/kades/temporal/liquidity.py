"""LiquidityDropDetector: pool liquidity falling away from its recent level (a pull).

>>> detector = LiquidityDropDetector()
>>> for second in range(0, 1800, 5):
...     detector.learn_one({"time": second, "price": 1.0, "liquidity": 1e5 * (1 + 0.001 * (second % 3))})
>>> detector.score_one({"time": 1800, "price": 1.0, "liquidity": 99_000}) < 0.5
True
>>> detector.score_one({"time": 1800, "price": 1.0, "liquidity": 40_000}) > 0.9
True
"""
from __future__ import annotations

import math

from kades.temporal.base import Detector, change_of, ratio_of, robust_update, squash, weight


class LiquidityDropDetector(Detector):
    """Scores how far log liquidity has fallen below its moving average.

    Parameters:
        window_s: half-life of the liquidity average the drop is measured from.
        half_life_s: how fast the learned scale forgets.
        half_score_z: robust deviations at which the score is 0.5.
        min_scale: smallest scale of log liquidity assumed (0.01 = 1%): a pool whose
            liquidity never moves must not call a 0.5% dip a pull.
        grace_period: points with liquidity learned before scoring.
    """

    name = "liquidity_drop"
    kinds = ("liquidity_drop",)
    STATE = ("seen", "last_time", "average", "scale")

    def __init__(self, *, window_s: float = 300.0, half_life_s: float = 3600.0,
                 half_score_z: float = 7.0, min_scale: float = 0.01, grace_period: int = 30):
        if window_s <= 0 or half_score_z <= 0 or grace_period < 2:
            raise ValueError("window_s > 0, half_score_z > 0 and grace_period >= 2 required")
        self.window_s = window_s
        self.half_life_s = half_life_s
        self.half_score_z = half_score_z
        self.min_scale = min_scale
        self.grace_period = grace_period
        self.seen = 0
        self.last_time: float | None = None
        self.average: float | None = None
        self.scale = 0.0

    def _drop_z(self, x: dict) -> float | None:
        liquidity = x.get("liquidity")
        if not liquidity or liquidity <= 0 or self.average is None:
            return None
        return (self.average - math.log(liquidity)) / max(self.scale, self.min_scale)

    def _score(self, x: dict) -> dict[str, float]:
        z = self._drop_z(x)
        return {"liquidity_drop": squash(z, self.half_score_z) if z and z > 0 else 0.0}

    def _learn(self, x: dict, *, learn: bool) -> None:
        liquidity = x.get("liquidity")
        if liquidity and liquidity > 0:
            level = math.log(liquidity)
            elapsed = self._elapsed(x)
            if self.average is None or not learn:
                self.average = level  # a flagged drop is the new reference, never learned
            else:
                gap = level - self.average
                self.scale = robust_update(self.scale, abs(gap),
                                           weight(elapsed, self.half_life_s, self.seen), self.seen, 4.0)
                self.average += (1 - 0.5 ** (elapsed / self.window_s)) * gap
                self.seen += 1
        self.last_time = float(x["time"])

    def evidence(self, x: dict) -> dict:
        z = self._drop_z(x)
        if z is None:
            return {}
        return {"window_s": self.window_s, "baseline_liquidity": round(ratio_of(self.average), 2),
                "liquidity_change": round(change_of(math.log(x["liquidity"]) - self.average), 6),
                "liquidity_z": round(-z, 2)}
