"""Streaming-benchmark scoring of detections against labelled windows (as the Numenta
Anomaly Benchmark scores them).

Each true anomaly has a window. The earliest detection inside a window scores
`A_TP * sigma(y)`, where y is its place in the window (-1 at its start, 0 at its end) and
sigma(y) = 2 / (1 + e^(5y)) - 1 falls from ~0.987 to 0: the earlier, the better; later
detections in the same window count nothing. A window without detection costs `A_FN`.
A detection outside every window costs `A_FP`, less so right after a window (y measured past
its end, same sigma), fully before the first one. Detections inside the probationary period
(the first 15% of a series, a detector's warm-up) are not counted. Three weightings:

| profile | A_TP | A_FP | A_FN |
|---|---|---|---|
| standard | 1.0 | 0.11 | 1.0 |
| reward_low_fp | 1.0 | 0.22 | 1.0 |
| reward_low_fn | 1.0 | 0.11 | 2.0 |

A corpus is scored by summing raw scores, then normalised so that 100 is perfect (every
window detected at its very start, nothing else) and 0 is the null detector (nothing).

>>> window = [(100.0, 200.0)]
>>> round(raw_score([100.0], window, "standard").total, 3)
0.987
>>> round(raw_score([150.0, 160.0, 900.0], window, "standard").total, 3)
0.738
>>> raw_score([], window, "reward_low_fn").total
-2.0
>>> corpus = [raw_score([100.0], window, "standard"), raw_score([], window, "standard")]
>>> round(normalised(corpus), 1)
50.0
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from types import MappingProxyType

PROFILES = MappingProxyType({
    "standard": MappingProxyType({"tp": 1.0, "fp": 0.11, "fn": 1.0}),
    "reward_low_fp": MappingProxyType({"tp": 1.0, "fp": 0.22, "fn": 1.0}),
    "reward_low_fn": MappingProxyType({"tp": 1.0, "fp": 0.11, "fn": 2.0}),
})
PROBATION = 0.15


def sigma(y: float) -> float:
    """NAB's scaled sigmoid: ~0.987 at y = -1 (window start), 0 at y = 0 (window end),
    towards -1 long after it."""
    return 2.0 / (1.0 + math.exp(min(50.0, 5.0 * y))) - 1.0


@dataclass(frozen=True)
class Score:
    total: float      # the raw score of one series
    perfect: float   # what detecting every window at its start would score
    null: float      # what detecting nothing scores
    detected: int
    windows: int
    false_positives: int
    delays_s: tuple[float, ...]  # first detection minus window start, per detected window


def raw_score(detections: list[float], windows: list[tuple[float, float]], profile: str, *,
              probation_end: float | None = None) -> Score:
    """Score detection times against sorted, non-overlapping (start, end) windows."""
    weights = PROFILES[profile]
    windows = sorted(windows)
    times = sorted(t for t in detections if probation_end is None or t >= probation_end)
    total, detected, delays = 0.0, 0, []
    inside = set()
    for start, end in windows:
        lo, hi = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        inside.update(range(lo, hi))
        if hi > lo:
            length = max(end - start, 1e-9)
            total += weights["tp"] * sigma((times[lo] - end) / length)
            detected += 1
            delays.append(times[lo] - start)
        else:
            total -= weights["fn"]
    ends = [end for _, end in windows]
    false_positives = 0
    for index, moment in enumerate(times):
        if index in inside:
            continue
        false_positives += 1
        previous = bisect.bisect_left(ends, moment) - 1
        if previous < 0:
            total -= weights["fp"]
        else:
            start, end = windows[previous]
            total += weights["fp"] * sigma((moment - end) / max(end - start, 1e-9))
    return Score(total=total, perfect=weights["tp"] * sigma(-1.0) * len(windows),
                 null=-weights["fn"] * len(windows), detected=detected, windows=len(windows),
                 false_positives=false_positives, delays_s=tuple(delays))


def normalised(scores: list[Score]) -> float:
    """100 * (raw - null) / (perfect - null) over a corpus of series."""
    raw = sum(s.total for s in scores)
    perfect = sum(s.perfect for s in scores)
    null = sum(s.null for s in scores)
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0


def probation_end(times: list[float]) -> float:
    """The time at which the probationary period (first 15% of the points) ends."""
    return times[min(len(times) - 1, int(PROBATION * len(times)))]
