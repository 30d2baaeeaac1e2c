"""A pump that is a burst of trades on a thin, randomly traded token (a review): trades at
random whole seconds, bots' flat bursts of 20-60 trades a second apart, and pumps of 120
trades 1-2 s apart, +0.5 % each (+60 % in about 3 minutes) on 5 times the usual volume per
trade. Randomly timed, each short step lasted the series' median step to the detectors, so
a pump was hours of slow rise that the scales learned as it went, and its 120 points set the
likelihood's normal for the next one (kades.temporal.clock, BURST_STEPS). Generated series,
where the answer is known."""
from __future__ import annotations

import math
import random

import pytest

from kades.temporal.policy import new_monitor, step

DAY = 86400.0


def thin_token(seed: int, mean_s: float, days: float = 6.0, bursts: int = 8, pumps: int = 3):
    """(points, the index of each pump's first trade)."""
    rng = random.Random(seed)
    moment, price, points, starts = 1.7e9, 1.0, [], []
    end = moment + days * DAY
    burst_at = sorted(rng.uniform(moment + DAY / 2, end) for _ in range(bursts))
    pump_at = sorted(rng.uniform(moment + DAY, end - 3600) for _ in range(pumps))
    while moment < end:
        if burst_at and moment >= burst_at[0]:  # a bot: flat, a second apart
            burst_at.pop(0)
            for _ in range(rng.randint(20, 60)):
                moment += 1
                price *= math.exp(rng.gauss(0, 0.0015))
                points.append({"time": moment, "price": price,
                               "volume": 1000 * rng.uniform(0.5, 1.5)})
        if pump_at and moment >= pump_at[0]:
            pump_at.pop(0)
            starts.append(len(points))
            for _ in range(120):
                moment += rng.choice([1, 1, 2])
                price *= math.exp(0.005 + rng.gauss(0, 0.002))
                points.append({"time": moment, "price": price,
                               "volume": 5000 * rng.uniform(0.5, 1.5)})
        moment += max(1, round(rng.expovariate(1 / mean_s)))
        price *= math.exp(rng.gauss(0, 0.004))
        points.append({"time": moment, "price": price, "volume": 1000 * rng.uniform(0.5, 1.5)})
    return points, starts


@pytest.mark.parametrize("mean_s", [120.0, 600.0], ids=["2-minute", "10-minute"])
def test_a_pump_that_is_a_burst_of_trades_is_caught(mean_s):
    """4 seeds, 3 pumps each, caught within their first 60 trades / other alerts. Measured
    11/12 / 1 and 12/12 / 0 (the miss follows another pump at once: one episode); before,
    the burst's steps taught the clock and counted in full in the likelihood: 7/12 / 3 and
    4/12 / 0."""
    caught = other = 0
    for seed in range(4):
        points, starts = thin_token(seed, mean_s)
        monitor = new_monitor()
        alerts = [i for i, x in enumerate(points) if step(monitor, x).alert]
        caught += sum(any(s <= a < s + 60 for a in alerts) for s in starts)
        other += sum(not any(s <= a < s + 300 for s in starts) for a in alerts)
    print(f"\n{mean_s:.0f} s mean gaps: {caught}/12 pumps caught, {other} other alerts")
    assert caught >= 11 and other <= 1


def test_bots_bursts_and_calm_trading_stay_quiet():
    """The same tokens without pumps, 3 seeds, 2-minute mean gaps, 20 bot bursts in 14 days
    each: measured 1 alert (4 before)."""
    alerts = 0
    for seed in range(3):
        points, _ = thin_token(10 + seed, 120.0, days=14.0, bursts=20, pumps=0)
        monitor = new_monitor()
        alerts += sum(bool(step(monitor, x).alert) for x in points)
    print(f"\nbots' bursts, 42 token-days: {alerts} alerts")
    assert alerts <= 2
