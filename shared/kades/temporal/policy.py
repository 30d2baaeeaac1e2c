"""The alert policy: what temporal-analysis and `kades score` run on every point, in one place.

One policy for every series and token, no per-series tuning: the ensemble's raw scores, made
surprise by the series' own anomaly likelihood (kades.temporal.likelihood), then the
threshold filter (0.5, one flag per run, cooldown). Its budget, measured by `make eval`
(tests/eval/eval_temporal.py) on real pump-and-dump tapes: at most 1 false alert per
token-day away from the pumps, and the pumps caught from 5 minutes before to 10 after their
start. The parameters were chosen on the in-sample two thirds of the shared corpora only.

>>> import random
>>> rng, monitor, price = random.Random(2), new_monitor(), 1.0
>>> verdicts = []
>>> for minute in range(600):
...     price *= 1 + rng.gauss(0, 0.002) + (0.25 if minute == 500 else 0)
...     volume = 100 * (1 + rng.random()) * (30 if minute == 500 else 1)
...     verdicts.append(step(monitor, {"time": 60.0 * minute, "price": price, "volume": volume}))
>>> [(minute, v.alert) for minute, v in enumerate(verdicts) if v.alert]
[(500, 'price_spike')]
>>> max(v.score for v in verdicts[200:500]) < 0.5 < verdicts[500].score
True
"""
from __future__ import annotations

import math
from collections import Counter
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from kades.temporal.ensemble import TemporalEnsemble
from kades.temporal.threshold import ThresholdFilter

DETECTOR_PARAMS: Mapping[str, Any] = MappingProxyType({})    # TemporalEnsemble defaults
# one alert an event; a young series judged until its detectors are warm (kades.temporal.young)
FILTER_PARAMS: Mapping[str, Any] = MappingProxyType({"episode_s": 600.0, "young_points": 60})
LIKELIHOOD_PARAMS: Mapping[str, Any] = MappingProxyType({})  # AnomalyLikelihood defaults


# The detectors' time step (their min_interval_s): what comes sooner is not a new point.
MIN_STEP_S = 1.0
# ...unless it pulls the pool: a point less than MIN_STEP_S from the last one taken whose
# liquidity is this share or more below that point's is taken MIN_STEP_S after it. Block
# times are whole seconds (Solana's blockTime) and Solana makes 2-3 blocks a second, so a
# pool pulled in the block after the last trade's came at its time or under a second on:
# left out, it was never alerted (generated: 0/4; fed a tick per Sync, 3 of the 9 in-sample
# drained Uniswap pools of ../shared/data were drained in their last swap's block). A sell
# that takes a quarter of the quote reserve in a second is a dump, news as well.
PULL_SHARE = 0.25


class LinearUnit:
    """The unit a series on linear scale (`new_monitor(log_scale=False)`, for series that
    touch 0 or go negative) is scored in: the median of its nonzero |values|, to 1 %. The
    detectors' floors (1e-4) are absolute on that scale, so a signed series whose moves were
    under 1e-4 in its own units never scored; divided by its unit, a series scores alike in
    any unit. Counted in bins, so a file's first pass keeps no values.

    >>> unit = LinearUnit()
    >>> for value in (0.0, -2e-6, 3e-6, 5e-6): unit.add(value)
    >>> round(unit.unit / 3e-6, 2)
    1.0
    """

    BIN = math.log(1.01)

    def __init__(self):
        self.bins: Counter[int] = Counter()

    def add(self, value: float) -> None:
        if value and math.isfinite(value):
            self.bins[round(math.log(abs(value)) / self.BIN)] += 1

    @property
    def unit(self) -> float:
        half, seen = sum(self.bins.values()) / 2, 0
        for index in sorted(self.bins):
            seen += self.bins[index]
            if seen >= half:
                return math.exp(index * self.BIN)
        return 1.0  # every value 0


class Verdict(NamedTuple):  # a tuple: made for every point, and a dataclass costs 3x as much
    """What the policy says of one point: its score in [0, 1] (surprise, the strongest kind),
    the ensemble member behind that kind ('' when nothing scored), the anomaly type it
    raises ('' when none), the flags themselves (at most one), and why the point was left
    out ('' when it was taken: TOO_SOON or NO_TRADE)."""

    score: float
    top_detector: str
    alert: str
    flags: list[dict[str, Any]]
    left_out: str = ""


_VERDICT = tuple.__new__
TOO_SOON, NO_TRADE = "too soon", "no trade"
_TOO_SOON = Verdict(score=0.0, top_detector="", alert="", flags=[], left_out=TOO_SOON)
_NO_TRADE = Verdict(score=0.0, top_detector="", alert="", flags=[], left_out=NO_TRADE)


def new_monitor(state: dict | None = None, *, log_scale: bool = True) -> ThresholdFilter:
    """The policy's monitor, carrying on from `state` (None: a fresh one). `log_scale=False`
    for series that touch zero or go negative."""
    return ThresholdFilter.from_state(state, detector_class=TemporalEnsemble,
                                      detector_params={**DETECTOR_PARAMS, "log_scale": log_scale},
                                      likelihood_params=dict(LIKELIHOOD_PARAMS), **FILTER_PARAMS)


def too_soon(monitor: ThresholdFilter, moment: float) -> bool:
    """Whether a point at `moment` scores 0 and teaches nothing for coming too soon: less
    than MIN_STEP_S after the last point the monitor took (`step`), or at its time or before
    (the detectors never look back)."""
    last = monitor.last_time
    return last is not None and moment < last + MIN_STEP_S


def no_trade(monitor: ThresholdFilter, x: dict) -> bool:
    """Whether x is a bar in which nothing traded: volume 0, and the price and liquidity of
    the last point the monitor took. Many feeds send a bar every minute and repeat the last
    close when nobody trades; learned, these rows taught the scales a move of 0 at nearly
    every point, and every trade of a thin token looked large (trading in 2-20 % of minutes:
    1.3-7.9 false alerts a day; left out, 0-0.43). A changed
    liquidity is news even without a trade (liquidity pulled)."""
    return x.get("volume") == 0 and monitor.holds(x)


def pulls(monitor: ThresholdFilter, x: dict) -> bool:
    """Whether x's liquidity is PULL_SHARE or more below the last one a point the monitor took
    gave (a point without liquidity between them changes nothing)."""
    liquidity, before = x.get("liquidity"), monitor.liquidity_seen
    return (isinstance(liquidity, (int, float)) and isinstance(before, (int, float))
            and before > 0 and liquidity <= before * (1.0 - PULL_SHARE))


def pull_taken(monitor: ThresholdFilter, x: dict) -> bool:
    """Whether `step` takes x, within MIN_STEP_S of the last point, as a pull (a second on;
    within a second before it too: the last one was a pull taken so)."""
    last = monitor.last_time
    return (last is not None and last - MIN_STEP_S <= x["time"] < last + MIN_STEP_S
            and pulls(monitor, x))


def step(monitor: ThresholdFilter, x: dict) -> Verdict:
    """Run one point through the monitor: learn from it and say what it raises. A point less
    than MIN_STEP_S after the last one is left out (score 0, nothing learned), as one at the
    same time is: the detectors step in seconds, and a burst of 10,000 ticks within 4 s,
    each learned as a full second, left a token's alerts muted for hours. So is a bar in
    which nothing traded (`no_trade`). The verdict says which (`left_out`). A pull is not
    too soon (`pulls`): it is taken MIN_STEP_S after the last point, its flag at its own time."""
    last, moment = monitor.last_time, x["time"]
    if last is not None and moment < last + MIN_STEP_S:
        if pull_taken(monitor, x):
            x = {**x, "time": last + MIN_STEP_S}
        elif last < moment:
            return _TOO_SOON
    if no_trade(monitor, x):
        return _NO_TRADE
    flags = monitor.process_one(x)
    if x["time"] != moment:
        for flag in flags:
            flag["time"] = moment
    kind = best = None
    for each, value in monitor.last_parts.items():  # max(parts, key=parts.get), no calls
        if kind is None or value > best:
            kind, best = each, value
    score = min(1.0, max(0.0, best)) if kind else 0.0
    by = getattr(monitor.detector, "last_by", {})
    # Verdict(score, top_detector, alert, flags) without the Python-level __new__ that a
    # NamedTuple's constructor runs (a third of a microsecond, on every point)
    return _VERDICT(Verdict, (score, by.get(kind, "") if score > 0 else "",
                              flags[0]["anomaly_type"] if flags else "", flags, ""))
