"""Randomly timed readings (a KPI read at exponential gaps, trades of a thinly traded token):
their shortest step is a fluke of the arrivals, so their resolution is their median step
and no step is shorter than it to the detectors (kades.temporal.threshold, RANDOM_SHARE);
a tick series' steps are whole multiples of its resolution and keep the shortest one.
Generated series, where the answer is known."""
from __future__ import annotations

import json
import math
import random

import pytest

from kades.temporal.policy import new_monitor, step
from kades.temporal.clock import CLOCK_REF_S, on_grid

MINUTE, DAY = 60.0, 86400.0


def random_times(rng: random.Random, mean_s: float, points: int) -> list[float]:
    """Exponential gaps of mean `mean_s` (at least a second)."""
    moment, times = 1.7e9, []
    for _ in range(points):
        moment += max(1.0, rng.expovariate(1.0 / mean_s))
        times.append(moment)
    return times


def level_series(seed: int, mean_s: float, points: int = 4032, spikes: int = 10):
    """A level KPI, 100 + N(0, 1), read at random times, with `spikes` single readings of
    +17 sd at known points (none in the first fifth: the warm-up)."""
    rng = random.Random(seed)
    times = random_times(rng, mean_s, points)
    values = [100.0 + rng.gauss(0, 1) for _ in times]
    at = sorted(rng.sample(range(points // 5, points - 5), spikes)) if spikes else []
    for i in at:
        values[i] += 17.0
    return times, values, at


def run(times, values):
    monitor = new_monitor()
    verdicts = [step(monitor, {"time": t, "price": v}) for t, v in zip(times, values)]
    return monitor, [i for i, verdict in enumerate(verdicts) if verdict.alert]


@pytest.mark.parametrize("mean_s", [5 * MINUTE, 15 * MINUTE], ids=["5-minute", "15-minute"])
def test_spikes_in_randomly_timed_readings_are_caught(mean_s):
    """Measured 30/30 caught (5- and 15-minute mean gaps). Before, on the real clock with
    the shortest step as resolution: 6/30 and 5/30 (the moves over steps of seconds looked
    large, the raw scores were high all the time and a spike was no surprise)."""
    caught = 0
    for seed in range(3):
        times, values, at = level_series(seed, mean_s)
        found = run(times, values)[1]
        caught += sum(any(i <= a <= i + 2 for a in found) for i in at)
    print(f"\n{mean_s:.0f} s mean gaps: {caught}/30 spikes caught")
    assert caught >= 25


def test_calm_randomly_timed_readings_stay_quiet():
    """14 calm days at 5-minute mean gaps, 3 series: measured 1 alert (6 before)."""
    days = total = 0.0
    for seed in range(3):
        times, values, _ = level_series(50 + seed, 5 * MINUTE, spikes=0)
        total += len(run(times, values)[1])
        days += (times[-1] - times[0]) / DAY
    assert total / days <= 0.2


def test_randomly_timed_readings_run_on_their_median_step():
    """The resolution is about the median gap (ln 2 of the mean), not the shortest; the
    state keeps how far off the grid the steps are, and a series scored in two calls
    alerts as one scored in one go."""
    times, values, _ = level_series(7, 15 * MINUTE, points=3000)
    monitor, whole = run(times, values)
    assert 0.5 * math.log(2) * 15 * MINUTE < monitor.clock.resolution < 1.5 * math.log(2) * 15 * MINUTE
    assert monitor.clock.scale == monitor.clock.resolution / CLOCK_REF_S
    first = new_monitor()
    found = [i for i, (t, v) in enumerate(zip(times[:1500], values[:1500]))
             if step(first, {"time": t, "price": v}).alert]
    state = json.loads(json.dumps(first.to_state()))
    assert state["off_grid"] > 0.5
    second = new_monitor(state)
    assert second.last_time == times[1499]
    found += [1500 + i for i, (t, v) in enumerate(zip(times[1500:], values[1500:]))
              if step(second, {"time": t, "price": v}).alert]
    assert found == whole


def test_a_state_from_before_takes_random_timing_up():
    """A state without `off_grid` (from before it) carries on as a tick series, then finds
    the steps off its grid and moves to their median."""
    times, values, _ = level_series(8, 5 * MINUTE, points=2000, spikes=0)
    monitor = new_monitor()
    for t, v in zip(times[:1000], values[:1000]):
        step(monitor, {"time": t, "price": v})
    state = json.loads(json.dumps(monitor.to_state()))
    state.pop("off_grid")
    state["clock"] = [30.0, 0.0]  # a shortest step, as the resolution was taken before
    monitor = new_monitor(state)
    for t, v in zip(times[1000:], values[1000:]):
        step(monitor, {"time": t, "price": v})
    assert monitor.clock.resolution > 100.0


def test_minute_ticks_with_quiet_stretches_stay_on_their_grid():
    """A trade most minutes and none for up to ten: every step is a whole number of
    minutes, so the resolution stays the minute and the clock the real one."""
    rng, moment = random.Random(4), 0.0
    monitor = new_monitor()
    for _ in range(3000):
        moment += MINUTE * (1 if rng.random() < 0.4 else rng.randint(2, 10))
        step(monitor, {"time": moment, "price": 100.0 + rng.gauss(0, 1)})
    assert monitor.clock.resolution == MINUTE and monitor.clock.off_grid == 0.0
    assert monitor.clock.scale == 1.0 and monitor.clock.offset == 0.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_burst_of_trades_is_one_event(seed):
    """A thin token traded every ~2 minutes, then pumped by 120 trades a second or two apart.
    Each short step lasts the resolution to the detectors, but not to the durations
    (`stretched`): before, the burst ran the episode out in a few trades and the pump alerted
    3-4 times in 20 s; and a pump building up escalates once (0.57, 0.87, 0.99, 1.0)."""
    rng, monitor, moment, price = random.Random(seed), new_monitor(), 1.7e9, 1.0
    for _ in range(720):
        moment += max(1, round(rng.expovariate(1 / 120)))
        price *= math.exp(rng.gauss(0, 0.004))
        step(monitor, {"time": moment, "price": price, "volume": 1000 * rng.uniform(0.5, 1.5)})
    alerts = []
    for _ in range(120):
        moment += rng.choice([1, 1, 2])
        price *= math.exp(0.005 + rng.gauss(0, 0.002))
        verdict = step(monitor, {"time": moment, "price": price,
                                 "volume": 5000 * rng.uniform(0.5, 1.5)})
        alerts += [verdict.alert] if verdict.alert else []
    print(f"\nseed {seed}: {alerts}")
    assert 1 <= len(alerts) <= 2


def test_a_step_that_is_not_finite_is_off_the_grid():
    """The grid check of a NaN or infinite step says no, where round() would raise."""
    assert not on_grid(math.nan, 60.0) and not on_grid(math.inf, 60.0)
    assert on_grid(180.0, 60.0) and not on_grid(90.0, 60.0) and not on_grid(20.0, 60.0)
