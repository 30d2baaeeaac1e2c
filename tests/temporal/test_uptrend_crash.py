"""A crash inside a steady uptrend: the dump during or right after a pump. The trend is
learned as usual movement (docs/temporal.md, "A crash inside a steady uptrend"), so the crash
must stand out against scales the trend has widened. Generated series through the live
policy (kades.temporal.policy), where the answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from kades.temporal.policy import new_monitor, step

DAY = 86400.0
START = 3 * DAY  # three calm days before the trend
CATCH = 3        # caught when alerted at the crash or the next 2 points


def uptrend_crash(seed: int, step_s: float, rate_sd_h: float, crash_h: float,
                  kind: str = "level", crash_sd: float = 15.0, after_h: float = 1.0):
    """Three calm days, then a trend up of `rate_sd_h` sd an hour, with a fall of `crash_sd` sd
    `crash_h` hours in that stays (the trend goes on from there) for `after_h` hours. "level":
    N(0, 1) noise around 100; "walk": a random walk of log prices (sd 0.002 a minute), its sd
    the step's. The times, the values and the crash's index."""
    rng = np.random.default_rng(seed)
    n = int((START + (crash_h + after_h) * 3600) / step_s)
    times = np.arange(n) * step_s
    into = np.clip(times - START, 0.0, None) / 3600
    crash = int(round((START + crash_h * 3600) / step_s))
    drop = np.where(np.arange(n) >= crash, crash_sd, 0.0)
    if kind == "level":
        return times, 100 + rng.normal(0, 1, n) + rate_sd_h * into - drop, crash
    sd = 0.002 * np.sqrt(step_s / 60)
    walk = np.cumsum(rng.normal(0, sd, n)) + sd * (rate_sd_h * into - drop)
    return times, 10 * np.exp(walk), crash


def alerts_of(times, values) -> list[int]:
    monitor = new_monitor()
    return [i for i, (t, v) in enumerate(zip(times, values))
            if step(monitor, {"time": float(t), "price": float(v)}).alert]


def tally(cases) -> tuple[int, int, int]:
    """(crashes caught, alerts in the calm days, alerts on the trend before the crash)."""
    caught = calm = trend = 0
    for case in cases:
        times, values, crash = uptrend_crash(*case)
        found = alerts_of(times, values)
        caught += any(crash <= i < crash + CATCH for i in found)
        calm += sum(times[i] < START for i in found)
        trend += sum(START <= times[i] and i < crash for i in found)
    return caught, calm, trend


def cases(step_s: float, rates: tuple[float, ...], kind: str = "level") -> list[tuple]:
    """4 seeds, a 15-sd crash 1, 2 and 3 hours into a trend of each rate."""
    return [(seed, step_s, rate, hours, kind) for rate in rates for hours in (1.0, 2.0, 3.0)
            for seed in range(4)]


def test_a_crash_in_an_uptrend_at_one_minute_steps_is_caught():
    """At 1-minute steps (0.17-0.33 sd a step) a 15-sd crash stands out of a trend of 10 or
    20 sd an hour, on a level and on a walk; the three calm days stay quiet."""
    caught, calm, trend = tally(cases(60.0, (10.0, 20.0)) + cases(60.0, (20.0,), "walk"))
    print(f"\n1-minute steps: {caught}/36 caught, {calm} calm alerts, {trend} on the trend")
    assert caught == 36 and calm == 0


@pytest.mark.xfail(strict=True, reason="open (docs/temporal.md, a crash inside a steady "
                   "uptrend): the trend widens the members' scales, 13-14/24 caught")
def test_a_crash_in_a_fast_uptrend_at_five_minute_steps_is_caught():
    """At 5-minute steps a trend of 20 or 40 sd an hour is 1.7-3.3 sd a step: the return-spike
    member's scale learns it (x1.8-3.4), the multi-window member's scales grow x2-5 on the
    trend's first points, and a 15-sd crash is caught 10/12 at 20 sd an hour, 3/12 at 40."""
    caught, calm, trend = tally(cases(300.0, (20.0, 40.0)))
    print(f"\n5-minute steps: {caught}/24 caught, {calm} calm alerts, {trend} on the trend")
    assert caught >= 22 and calm == 0
