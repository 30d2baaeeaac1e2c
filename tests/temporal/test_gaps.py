"""Gaps in a series (a token that stops trading for hours, a market that closes overnight):
the point after one is scored but teaches the scales nothing, so the next ordinary move is
not an alert. Generated series, where the answer is known."""
from __future__ import annotations

import math
import random

from kades.temporal.policy import new_monitor, step
from kades.temporal.clock import GAP_FACTOR

DAY = 86400.0


def calm_minutes(seed: int, days: int = 14) -> list[float]:
    """A level with Gaussian noise, one value a minute: nothing to alert on."""
    rng = random.Random(seed)
    return [100.0 + rng.gauss(0, 1) for _ in range(days * 1440)]


def alerts(times: list[float], values: list[float]) -> list[int]:
    monitor = new_monitor()
    return [i for i, (t, v) in enumerate(zip(times, values))
            if step(monitor, {"time": t, "price": v}).alert]


def test_day_long_gaps_in_a_calm_series_raise_no_alerts():
    """Before: ten 1-day gaps in 14 calm days gave 41 alerts against 1 without them (one
    point after a gap replaced the learned scales, and the next move looked huge)."""
    for seed in (1, 2, 3):
        values = calm_minutes(seed)
        steady = [60.0 * i for i in range(len(values))]
        gapped = [t + DAY * (11 * i // len(values)) for i, t in enumerate(steady)]
        without, with_gaps = alerts(steady, values), alerts(gapped, values)
        print(f"\nseed {seed}: {len(without)} alerts without gaps, {len(with_gaps)} with ten "
              "1-day gaps")
        assert len(with_gaps) <= len(without) + 1


def test_a_crash_after_a_gap_is_still_alerted():
    values = calm_minutes(4, days=3)
    times = [60.0 * i + (DAY if i >= 2000 else 0.0) for i in range(len(values))]
    values[2005:] = [v - 50.0 for v in values[2005:]]  # five minutes after the reopening
    assert 2005 in alerts(times, values)


def test_a_series_that_turns_slower_is_learned_again():
    """The typical step follows the series: after minute points, hourly ones count as gaps
    only for the first few, then are ordinary steps again."""
    monitor = new_monitor()
    rng, moment = random.Random(5), 0.0
    for i in range(2200):
        moment += 60.0 if i < 2000 else 3600.0
        step(monitor, {"time": moment, "price": 100.0 + rng.gauss(0, 1)})
    assert 3600.0 / GAP_FACTOR < math.exp(monitor.clock.log_step) <= 3600.0
