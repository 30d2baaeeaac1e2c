"""LiquidityDropDetector: pool liquidity falling away from its recent level (a pull).

>>> detector = LiquidityDropDetector()
>>> for second in range(0, 1800, 5):
...     detector.learn_one({"time": second, "price": 1.0, "liquidity": 1e5 * (1 + 0.001 * (second % 3))})
>>> detector.score_one({"time": 1800, "price": 1.0, "liquidity": 99_000}) < 0.5
True
>>> detector.score_one({"time": 1800, "price": 1.0, "liquidity": 40_000}) > 0.9
True
>>> detector.score_one({"time": 1800, "price": 1.0, "liquidity": 0.0}) > 0.999  # pulled empty
True
"""
from __future__ import annotations

import math
import sys

from kades.temporal.base import Detector, change_of, ratio_of, robust_update, squash, weight


# The level of a pool pulled empty (liquidity 0, which the contract allows): below any real
# pool's, so emptying is the largest drop there is. It becomes the reference at once (never
# learned into the scale), and a pool seen empty before any liquidity has nothing to drop from.
EMPTY_POOL_LEVEL = math.log(sys.float_info.min)


def liquidity_level(liquidity: float | None) -> float | None:
    """log liquidity; EMPTY_POOL_LEVEL for 0; None without a (usable) one."""
    if liquidity is None or not liquidity >= 0:
        return None
    return math.log(liquidity) if liquidity > 0 else EMPTY_POOL_LEVEL


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
        level = liquidity_level(x.get("liquidity"))
        if level is None or self.average is None:
            return None
        return (self.average - level) / max(self.scale, self.min_scale)

    def _score(self, x: dict) -> dict[str, float]:
        z = self._drop_z(x)
        return {"liquidity_drop": squash(z, self.half_score_z) if z and z > 0 else 0.0}

    def _learn(self, x: dict, *, learn: bool) -> None:
        level = liquidity_level(x.get("liquidity"))
        if level is not None and not (level == EMPTY_POOL_LEVEL and self.average is None):
            elapsed = self._elapsed(x)
            if (self.average is None or not learn
                    or EMPTY_POOL_LEVEL in (level, self.average)):
                # a flagged drop, an emptied pool and a refill after one: the new reference,
                # never learned
                self.average = level
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
                "liquidity_change": round(
                    change_of(liquidity_level(x["liquidity"]) - self.average), 6),
                "liquidity_z": round(-z, 2)}
