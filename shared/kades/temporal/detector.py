"""ReturnSpikeDetector: a streaming, per-token detector of price spikes, flash crashes and
volume spikes (river-shaped: `learn_one` / `score_one`, explicit warm-up, state as a dict).

Why log returns: a price ×1000 gives the same returns, so one detector fits a $0.000001
memecoin and a $100 token. Why a time-normalised scale: under a random walk the spread of a
return grows with sqrt(elapsed time), so a move over a 60 s gap is judged against
sqrt(60 s) worth of typical movement, not against one 5 s step. Why mean absolute deviation
(winsorised): it is barely moved by the heavy tails of memecoin returns.

>>> import random
>>> rng = random.Random(7)
>>> detector = ReturnSpikeDetector(grace_period=30)
>>> price = 1.0
>>> for second in range(0, 600, 5):
...     price *= 1 + rng.gauss(0, 0.002)
...     x = {"time": second, "price": price, "volume": 1000 * (1 + rng.random() / 5)}
...     assert detector.score_one(x) < 0.5
...     detector.learn_one(x)
>>> spike = {"time": 600, "price": price * 1.25, "volume": 1100}
>>> round(detector.score_one(spike), 2)
1.0
>>> max(detector.score_parts(spike), key=detector.score_parts(spike).get)
'price_spike'
"""
from __future__ import annotations

import math
from typing import Any

from kades.temporal.base import (MAX_GRID_STEP, NORMAL_TAIL_Z, change_of, level_of, ratio_of,
                                 tail_adjusted, taught, update_resolution, update_tail)

STATE_VERSION = 2
_STATISTICS = ("returns_seen", "volumes_seen", "last_time", "last_log_price", "return_scale", "resolution", "tail",
               "volume_level", "volume_scale")


class ReturnSpikeDetector:
    """Scores how surprising a tick's price return and volume are, 0 (usual) to 1.

    Parameters:
        grace_period: returns to learn from before scoring anything above 0.
        half_life_s: how fast the running statistics forget (in seconds, not in ticks).
        half_score_z: robust deviations at which a score is 0.5 (z=2·half gives 0.8).
        min_interval_s: the shortest time between ticks the scale assumes (same-second ticks).
        winsorise_z: deviations beyond this many scales enter the statistics clipped.
        min_return_scale: the smallest typical |log return| per sqrt(second) assumed, so that
            a stale price (no trades) does not make the next tiny move a spike.
        min_volume_scale: likewise for log volume (a stale or constant volume figure).
        grid_steps: a move of this many steps of the learned price grid (an illiquid token
            quotes on a coarse one) has robust deviation 1 at most; a step counts up to
            base.MAX_GRID_STEP.
        log_scale: log values (prices); False for series that may be zero or negative.
    """

    name = "return_spike"
    kinds = ("price_spike", "flash_crash", "volume_spike")

    def __init__(self, *, grace_period: int = 30, half_life_s: float = 900.0,
                 half_score_z: float = 7.0, min_interval_s: float = 1.0,
                 winsorise_z: float = 4.0, min_return_scale: float = 1e-4,
                 min_volume_scale: float = 0.05, grid_steps: float = 2.0,
                 log_scale: bool = True):
        if grace_period < 2 or half_life_s <= 0 or half_score_z <= 0 or min_interval_s <= 0:
            raise ValueError("grace_period >= 2 and positive half_life_s, half_score_z, "
                             "min_interval_s are required")
        self.grace_period = grace_period
        self.half_life_s = half_life_s
        self.half_score_z = half_score_z
        self.min_interval_s = min_interval_s
        self.winsorise_z = winsorise_z
        self.min_return_scale = min_return_scale
        self.min_volume_scale = min_volume_scale
        self.log_scale = log_scale
        self.grid_steps = grid_steps
        self.resolution = 0.0         # the price grid's step (in log price), learned
        self.tail = NORMAL_TAIL_Z     # the 99th percentile of the return z's, learned
        self.returns_seen = 0         # returns learned from (the first tick has none)
        self.volumes_seen = 0
        self.last_time: float | None = None
        self.last_log_price: float | None = None
        self.return_scale = 0.0       # mean |log return| per sqrt(second)
        self.volume_level = 0.0       # running mean of log volume
        self.volume_scale = 0.0       # mean |log volume - level|

    # --- streaming API ---------------------------------------------------------------------

    @property
    def warmed_up(self) -> bool:
        return self.returns_seen >= self.grace_period

    def score_parts(self, x: dict) -> dict[str, float]:
        """Score per anomaly type: `price_spike` or `flash_crash` (the return's sign decides)
        and `volume_spike`. All 0 during the warm-up and for a tick not after the last one."""
        parts = {"price_spike": 0.0, "flash_crash": 0.0, "volume_spike": 0.0}
        if not self.warmed_up or x["time"] <= self.last_time:
            return parts
        log_return, z_price, z_volume = self.deviations(x)
        parts["price_spike" if log_return > 0 else "flash_crash"] = self._squash(z_price)
        parts["volume_spike"] = self._squash(z_volume)
        return parts

    def score_one(self, x: dict) -> float:
        return max(self.score_parts(x).values())

    def learn_one(self, x: dict) -> None:
        """Learn the tick's return and volume, then make it the reference for the next one."""
        if self.last_time is not None and x["time"] <= self.last_time:
            return  # never learn from the past: a late tick would be a look-back return
        elapsed = self._elapsed(x)
        if self.last_log_price is not None:
            move = level_of(x["price"], self.log_scale) - self.last_log_price
            self.tail = update_tail(self.tail, self._raw_z(move, elapsed))
            rate = abs(move) / math.sqrt(elapsed)
            self.return_scale = self._update(self.return_scale, rate, elapsed, self.returns_seen)
            self.returns_seen += 1
        volume = x.get("volume")
        if volume is not None and volume > 0:
            if self.volumes_seen == 0:
                self.volume_level = math.log(volume)
            else:
                deviation = math.log(volume) - self.volume_level
                self.volume_scale = self._update(self.volume_scale, abs(deviation), elapsed,
                                                 self.volumes_seen - 1)
                self.volume_level += self._weight(elapsed, self.volumes_seen) * deviation
            self.volumes_seen += 1
        self.advance_one(x)

    def advance_one(self, x: dict) -> None:
        """Make x the reference for the next return without learning from it (for flagged
        ticks: the next return starts after the jump, but the scale never saw the jump).
        The price grid is learned from every point, flagged ones too (as the other members
        learn it): on a flat quantised series (a thin token on one tick) the first one-step
        blips are flagged, and if they never taught the grid every later blip was flagged
        again (2-3 alerts a day for a blip every 500 minutes)."""
        if self.last_time is None or x["time"] > self.last_time:
            level = level_of(x["price"], self.log_scale)
            if self.last_log_price is not None:
                self.resolution = update_resolution(self.resolution, level - self.last_log_price)
            self.last_time = float(x["time"])
            self.last_log_price = level

    def rescale_time(self, slowed: float, taught_s: float = math.inf) -> None:
        """The clock now runs `slowed` times slower (kades.temporal.clock, a new cadence):
        the scale learned per sqrt(second) of the old clock, in the new one's seconds, once
        the new cadence's steps taught it (`taught_s` of them: base.taught)."""
        if taught(taught_s, self.half_life_s):
            self.return_scale *= math.sqrt(slowed)

    def deviations(self, x: dict) -> tuple[float, float, float]:
        """(log return, its robust z, the robust z of log volume above its level)."""
        elapsed = self._elapsed(x)
        log_return = level_of(x["price"], self.log_scale) - self.last_log_price
        z_price = tail_adjusted(self._raw_z(log_return, elapsed), self.tail)
        volume = x.get("volume")
        z_volume = 0.0
        if volume is not None and volume > 0 and self.volumes_seen >= self.grace_period // 2:
            excess = math.log(volume) - self.volume_level
            z_volume = max(0.0, excess) / max(self.volume_scale, self.min_volume_scale)
        return log_return, z_price, z_volume

    def evidence(self, x: dict) -> dict[str, Any]:
        """The move since the previous point, the baseline price and the robust z's."""
        if self.last_log_price is None:
            return {}
        log_return, z_price, z_volume = self.deviations(x)
        baseline = ratio_of(self.last_log_price) if self.log_scale else self.last_log_price
        move = change_of(log_return) if self.log_scale else log_return
        return {"window_s": round(self._elapsed(x), 3), "baseline": round(baseline, 12),
                "move": round(move, 6), "return_z": round(z_price, 2), "volume_z": round(z_volume, 2)}

    # --- state (lives in Redis as JSON) ------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, **{name: getattr(self, name) for name in _STATISTICS}}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, **params: Any) -> "ReturnSpikeDetector":
        """A detector with `params` that carries on from `state` (None: a fresh one)."""
        detector = cls(**params)
        if state:
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"unknown detector state version {state.get('version')!r}")
            for name in _STATISTICS:
                setattr(detector, name, state[name])
        return detector

    # --- helpers ----------------------------------------------------------------------------

    def _elapsed(self, x: dict) -> float:
        return max(self.min_interval_s, x["time"] - self.last_time) if self.last_time is not None \
            else self.min_interval_s

    def _raw_z(self, log_return: float, elapsed: float) -> float:
        # a grid step counts up to MAX_GRID_STEP: on a 20 % grid a drop to a fifth is 8 steps
        spread = max(max(self.return_scale, self.min_return_scale) * math.sqrt(elapsed),
                     self.grid_steps * min(self.resolution, MAX_GRID_STEP))
        return abs(log_return) / spread

    def _weight(self, elapsed_s: float, count: int) -> float:
        # Time-based EWMA weight; plain averaging while few ticks are in (no start-up bias).
        return max(1.0 - 0.5 ** (elapsed_s / self.half_life_s), 1.0 / (count + 1))

    def _update(self, scale: float, value: float, elapsed_s: float, count: int) -> float:
        """One step of a winsorised running mean (clipping only once the scale means something)."""
        if count >= 5:
            value = min(value, self.winsorise_z * scale)
        return scale + self._weight(elapsed_s, count) * (value - scale)

    def _squash(self, z: float) -> float:
        return z * z / (z * z + self.half_score_z ** 2)
