"""What every streaming detector shares: the river-shaped interface, time-based forgetting,
robust running scales, squashing a deviation into a score in [0, 1], and state as JSON.

A detector sees points `x = {"time": epoch s, "price": float, "volume"?, "liquidity"?}`:
`score_parts(x)` gives a score per anomaly kind (all 0 while warming up and for a point not
after the last one learned: no look-ahead, time never runs backwards), `learn_one(x)` learns
from x, `advance_one(x)` moves the references on to x without learning from it (what a
threshold filter does with a flagged point), `evidence(x)` says why it scored as it did.

>>> squash(7.0, 7.0), round(squash(14.0, 7.0), 2), weight(900.0, 900.0, 100)
(0.5, 0.8, 0.5)
"""
from __future__ import annotations

import math
from typing import Any, ClassVar


def squash(z: float, half: float) -> float:
    """A deviation z >= 0 as a score in [0, 1): 0.5 at z == half, 0.8 at twice that."""
    return z * z / (z * z + half * half)


def weight(elapsed_s: float, half_life_s: float, count: int) -> float:
    """Time-based EWMA weight (irregular timestamps forget by time, not by point count);
    plain averaging while few points are in, so that a start-up value does not linger."""
    return max(1.0 - 0.5 ** (elapsed_s / half_life_s), 1.0 / (count + 1))


def robust_update(scale: float, value: float, rate: float, count: int, clip: float) -> float:
    """One step of a winsorised running mean of |deviations|: values beyond `clip` scales
    enter clipped once the scale means something, so heavy tails barely move it."""
    if count >= 5:
        value = min(value, clip * scale)
    return scale + rate * (value - scale)


RESOLUTION_GROWTH = 1.002  # update_resolution's creep per non-zero move
MAX_GRID_STEP = 0.1  # the coarsest grid step the return-spike member believes (~10 % on logs)


def taught(taught_s: float, half_life_s: float) -> bool:
    """Whether a statistic learned per second with `half_life_s` is to be read in a new
    cadence's seconds (rescaled: kades.temporal.clock, `slowed`): when the cadence's run
    taught it for `taught_s` seconds of the old clock, at least its half-life, so that the
    run's steps make up at least half of it. The run's steps after a gap teach nothing (1
    minute -> hourly: none of its 8), and rescaled, what the minutes taught held the
    volatility member's baseline 60 times too high (x4 regimes of a walk caught 2-4/6 in
    the 5 days after, 6/6 unrescaled)."""
    return taught_s >= half_life_s


def update_resolution(resolution: float, move: float, *,
                      growth: float = RESOLUTION_GROWTH) -> float:
    """The price grid's step, learned: the smallest non-zero |move| seen lately (it creeps up
    by `growth` per non-zero move so that a coarser grid after a price change is learned too).
    Illiquid markets quote on a grid where one step can be 1% of the price: a one-step move
    is then never an anomaly, whatever the usual scale of moves says.
    A point that does not move says nothing of the grid and leaves it: a quantised series
    that sits on one value for hours (a thin token on one tick, a counter) keeps the step it
    learned. When it crept on such points too, the step grew x2.7 in 500 flat points and x54
    in 2,000, so a one-step blip was forgotten before the next and a move of 20 steps
    was taken for a few steps of a coarser grid."""
    if move == 0.0:
        return resolution
    move = abs(move)
    return move if resolution <= 0 else min(resolution * growth, move)


NORMAL_TAIL_Z = 3.2  # the 99th percentile of |robust z| on Gaussian moves (2.58 sd / 0.8)


def update_tail(tail: float, z: float, *, rate: float = 0.05, quantile: float = 0.99) -> float:
    """One step of a streaming quantile estimate (stochastic gradient on the pinball loss)
    of |z|: the token's own tail. Each step moves it by at most `rate`, so one huge z
    cannot drag it."""
    return tail + rate * (quantile if z > tail else quantile - 1.0)


def tail_adjusted(z: float, tail: float, *, normal: float = NORMAL_TAIL_Z) -> float:
    """z judged against the token's own tail: a token whose 1-in-100 move is 8 robust
    deviations (heavy tails) needs 2.5x the move of a Gaussian one for the same score."""
    return z * normal / max(tail, normal)


class Detector:
    """Base of the streaming detectors. Subclasses set `name`, `kinds`, `STATE`
    (the attribute names that make up the learned state) and implement the hooks."""

    name: ClassVar[str] = "detector"
    kinds: ClassVar[tuple[str, ...]] = ()
    STATE: ClassVar[tuple[str, ...]] = ()
    STATE_VERSION: ClassVar[int] = 1
    last_time: float | None
    seen: int
    grace_period: int

    # --- streaming API ---------------------------------------------------------------------

    @property
    def warmed_up(self) -> bool:
        return self.seen >= self.grace_period

    def is_new(self, x: dict) -> bool:
        return self.last_time is None or x["time"] > self.last_time

    def score_parts(self, x: dict) -> dict[str, float]:
        if not self.warmed_up or not self.is_new(x):
            return dict.fromkeys(self.kinds, 0.0)
        return self._score(x)

    def score_one(self, x: dict) -> float:
        parts = self.score_parts(x)
        return max(parts.values()) if parts else 0.0

    def learn_one(self, x: dict) -> None:
        if self.is_new(x):
            self._learn(x, learn=True)

    def advance_one(self, x: dict) -> None:
        if self.is_new(x):
            self._learn(x, learn=False)

    def evidence(self, x: dict) -> dict[str, Any]:
        return {}

    # --- hooks ------------------------------------------------------------------------------

    def _score(self, x: dict) -> dict[str, float]:
        raise NotImplementedError

    def _learn(self, x: dict, *, learn: bool) -> None:
        raise NotImplementedError

    def _elapsed(self, x: dict, min_interval_s: float = 1.0) -> float:
        return (max(min_interval_s, x["time"] - self.last_time) if self.last_time is not None
                else min_interval_s)

    # --- state (lives in Redis as JSON; pickles too, being plain attributes) ---------------

    def to_state(self) -> dict[str, Any]:
        return {"version": self.STATE_VERSION, **{name: getattr(self, name) for name in self.STATE}}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, **params: Any):
        """A detector with `params` that carries on from `state` (None: a fresh one)."""
        detector = cls(**params)
        if state:
            if state.get("version") != cls.STATE_VERSION:
                raise ValueError(f"unknown {cls.name} state version {state.get('version')!r}")
            for name in cls.STATE:
                value = state[name]
                setattr(detector, name, list(value) if isinstance(value, list) else value)
        return detector


def level_of(value: float, log_scale: bool) -> float:
    """Log for prices (scale-free: x1000 changes nothing), the value itself for series that
    may be zero or negative."""
    return math.log(value) if log_scale else float(value)


# Evidence turns log gaps back into ratios. A gap past ~709 (a price going from 1e-300 to 1e8,
# say) overflows a float, so it is capped: the evidence then says "more than e^700 times".
_EXP_CAP = 700.0


def ratio_of(log_gap: float) -> float:
    """exp(log_gap), capped where a float would overflow."""
    return math.exp(min(log_gap, _EXP_CAP))


def change_of(log_gap: float) -> float:
    """exp(log_gap) - 1, the relative change of a log gap, capped alike."""
    return math.expm1(min(log_gap, _EXP_CAP))
