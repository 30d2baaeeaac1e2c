"""YoungSeries: a new series' large moves, judged while the detectors still warm up.

The detectors learn their scales from their first 30 returns and the likelihood its normal
from its first 30 points, and until both have, nothing scores: a new token pulled or dumped
in its first half hour of 1-minute bars was never alerted (40 % crashes at points 3-30 of a
walk of 0.5 % moves: 0/40 caught; from point 40 on 40/40), nor a crash 3-20 points after a
flat start's first move, where the detectors start afresh (ThresholdFilter.flat_start). That
is when most rugs happen. Until then each move is judged against the moves before it, with
two bars a move must clear: YOUNG_RATIO times their mean size (a robust enough scale from
MIN_MOVES moves, a t(3) tail passes it once in ~600 moves) and a size of its own
(MIN_DROP, MIN_RISE), so a quiet young series does not find its first ordinary tick news.
A pool drained (DRAINED) is news from the first move. On the 34 real Uniswap pools of
../shared/data from their creation (tests/temporal/budget.py) the pulls and dumps alerted
went from 5/23 to 22/23 in-sample (1 false alert) and 3/8 to 8/8 held out.
Moves per point, not per second: a few dozen points give no rhythm to judge time by. On
linear scale (signed series) it stays out: a move's size there has no unit.

>>> young = YoungSeries()
>>> price = 1.0
>>> for minute in range(8):
...     price *= 1.01 if minute % 2 else 0.99
...     young.learn({"time": 60.0 * minute, "price": price}, flagged=False)
>>> young.score({"time": 480.0, "price": price * 0.6})
{'flash_crash': 0.8105}
>>> young.score({"time": 480.0, "price": price * 0.97})
{}
"""
from __future__ import annotations

import math
from typing import Any

from kades.temporal.base import change_of
from kades.temporal.liquidity import EMPTY_POOL_LEVEL, liquidity_level

YOUNG_RATIO = 10.0   # times the mean move size of the series so far
MIN_MOVES = 5        # moves seen before any is judged
SETTLED_MOVES = 10   # with fewer, the bar is higher by sqrt(SETTLED_MOVES / moves)
KEPT_MOVES = 60      # the latest move sizes remembered (the warm-up is about 30 points)
MIN_DROP = math.log(0.88)   # a fall of 12 % or more (price)
MIN_RISE = math.log(1.25)   # a rise of 25 % or more (price)
MIN_PULL = math.log(0.75)   # liquidity down 25 % or more
DRAINED = math.log(0.1)     # down 90 % or more: a pool drained, news from the first move
NAME = "young_series"


def _score(size: float, scale: list[float]) -> float:
    """0.5 at YOUNG_RATIO times the mean of `scale`'s sizes, higher the fewer they are
    (SETTLED_MOVES), towards 1 beyond."""
    typical, seen = sum(scale) / len(scale), len(scale)
    if typical <= 0:
        return 1.0
    ratio, bar = size / typical, YOUNG_RATIO * math.sqrt(max(1.0, SETTLED_MOVES / seen))
    return round(ratio / (ratio + bar), 4)


class YoungSeries:
    """The moves of a series' first points (price and liquidity, log sizes) and the last
    point's levels. `score(x)`: each kind x's move raises, on its own scale; `learn(x)`."""

    def __init__(self):
        self.last: list | None = None    # [time, log price, log liquidity or None]
        self.moves: list[float] = []     # |log price move| of the latest unflagged points
        self.pulls: list[float] = []     # |log liquidity move|, likewise
        self.last_found: dict[str, float] = {}   # kind -> the move x made (evidence)
        self.points = 0                  # points learned
        self.last_flagged = False        # the last point was flagged: the move out of it too

    def score(self, x: dict) -> dict[str, float]:
        """{kind: score in [0, 1]} for the kinds x's move is large for, judged against the
        moves before it; {} for a point not after the last one."""
        last, found, self.last_found = self.last, {}, {}
        if last is None or x["time"] <= last[0] or not x["price"] > 0:
            return found
        move = math.log(x["price"]) - last[1]
        if len(self.moves) >= MIN_MOVES and (move <= MIN_DROP or move >= MIN_RISE):
            score = _score(abs(move), self.moves)
            if score >= 0.5:
                kind = "flash_crash" if move < 0 else "price_spike"
                found[kind], self.last_found[kind] = score, move
        level = liquidity_level(x.get("liquidity"))
        if level is not None and last[2] is not None:
            drop = level - last[2]
            if drop <= DRAINED or (drop <= MIN_PULL and len(self.pulls) >= MIN_MOVES):
                score = 1.0 if drop <= DRAINED else _score(-drop, self.pulls)
                if score >= 0.5:
                    found["liquidity_drop"], self.last_found["liquidity_drop"] = score, drop
        return found

    def learn(self, x: dict, *, flagged: bool) -> None:
        """x becomes the last point; its moves join the scales unless `flagged` (a crash
        must not widen the scale the next one is judged by), nor do the moves out of a
        flagged point (a drained pool refilled, a spike reverting: as large)."""
        if not x["price"] > 0 or (self.last is not None and x["time"] <= self.last[0]):
            return
        price, level = math.log(x["price"]), liquidity_level(x.get("liquidity"))
        last = self.last
        self.points += 1
        if last is not None and not flagged and not self.last_flagged:
            self.moves = [*self.moves, abs(price - last[1])][-KEPT_MOVES:]
            if level is not None and last[2] is not None and EMPTY_POOL_LEVEL not in (level, last[2]):
                self.pulls = [*self.pulls, abs(level - last[2])][-KEPT_MOVES:]
        self.last = [x["time"], price, level if level is not None else
                     (last[2] if last is not None else None)]
        self.last_flagged = flagged

    def evidence(self, kind: str) -> dict[str, Any]:
        """What judged the last point scored: its move, the typical one, how many."""
        scale = self.pulls if kind == "liquidity_drop" else self.moves
        move = self.last_found.get(kind)
        # (capped: a schema-valid price of 5e-324 after 1e30 overflowed expm1, and every
        # later event of the token failed with it)
        return {"move": round(change_of(move), 6) if move is not None else None,
                "typical_move": round(change_of(sum(scale) / len(scale)), 6) if scale else None,
                "moves_seen": len(scale), "young_ratio": YOUNG_RATIO}

    def to_state(self) -> dict[str, Any]:
        return {"last": list(self.last) if self.last else None, "points": self.points,
                "moves": list(self.moves), "pulls": list(self.pulls),
                **({"last_flagged": True} if self.last_flagged else {})}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "YoungSeries":
        young = cls()
        if state:
            young.last = list(state["last"]) if state.get("last") else None
            young.points = int(state.get("points", 0))
            young.moves = [float(m) for m in state.get("moves", [])]
            young.pulls = [float(m) for m in state.get("pulls", [])]
            young.last_flagged = bool(state.get("last_flagged", False))
        return young
