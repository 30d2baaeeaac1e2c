"""MomentumFeatures: RSI and MACD over time-based averages, as evidence, never an alert.

Momentum crossings happen all the time in healthy markets; alone they are noise. They are
context beside the other detectors' scores (a crash after an RSI of 90 is a dump).

>>> features = MomentumFeatures()
>>> for second in range(0, 1200, 5):
...     features.learn_one({"time": second, "price": 1.0 + second / 1200})
>>> features.score_parts({"time": 1200, "price": 2.0})
{}
>>> evidence = features.evidence({"time": 1200, "price": 2.0})
>>> evidence["rsi"] > 90, evidence["macd"] > 0
(True, True)
"""
from __future__ import annotations

from kades.temporal.base import Detector, level_of


class MomentumFeatures(Detector):
    """RSI (time-based Wilder averages of up and down moves) and MACD of the level.

    Parameters:
        rsi_half_life_s: half-life of the up/down move averages.
        fast_s / slow_s / signal_s: half-lives of the MACD averages.
    """

    name = "momentum"
    kinds = ()
    STATE = ("seen", "last_time", "last_level", "up", "down", "fast", "slow", "signal")

    def __init__(self, *, rsi_half_life_s: float = 300.0, fast_s: float = 60.0,
                 slow_s: float = 130.0, signal_s: float = 45.0, grace_period: int = 30,
                 log_scale: bool = True):
        if not 0 < fast_s < slow_s or rsi_half_life_s <= 0 or signal_s <= 0:
            raise ValueError("0 < fast_s < slow_s and positive rsi_half_life_s, signal_s required")
        self.rsi_half_life_s = rsi_half_life_s
        self.fast_s, self.slow_s, self.signal_s = fast_s, slow_s, signal_s
        self.grace_period = grace_period
        self.log_scale = log_scale
        self.seen = 0
        self.last_time: float | None = None
        self.last_level: float | None = None
        self.up = self.down = self.fast = self.slow = self.signal = 0.0

    def _score(self, x: dict) -> dict[str, float]:
        return {}

    def _learn(self, x: dict, *, learn: bool) -> None:
        level = level_of(x["price"], self.log_scale)
        if self.last_level is None:
            self.fast = self.slow = level
        else:
            elapsed = self._elapsed(x)
            move = level - self.last_level
            rsi_rate = 1 - 0.5 ** (elapsed / self.rsi_half_life_s)
            self.up += rsi_rate * (max(move, 0.0) - self.up)
            self.down += rsi_rate * (max(-move, 0.0) - self.down)
            self.fast += (1 - 0.5 ** (elapsed / self.fast_s)) * (level - self.fast)
            self.slow += (1 - 0.5 ** (elapsed / self.slow_s)) * (level - self.slow)
            self.signal += (1 - 0.5 ** (elapsed / self.signal_s)) * (self.fast - self.slow - self.signal)
            self.seen += 1
        self.last_time, self.last_level = float(x["time"]), level

    def evidence(self, x: dict) -> dict:
        if not self.warmed_up:
            return {}
        total = self.up + self.down
        macd = self.fast - self.slow
        return {"rsi": round(100 * self.up / total, 1) if total > 0 else 50.0,
                "macd": round(macd, 8), "macd_signal": round(self.signal, 8),
                "macd_above_signal": macd > self.signal}
