"""A pump's aftermath on a thin token (a review): a pump of 120 trades 1-2 s apart on a token
traded at random times (test_burst_pumps.py) was caught, then alerted again in the trades
after the burst, mostly as a volatility regime on its first readings: the burst's moves fill
the volatility member's short average, which spans 10 readings (20 minutes at 2-minute gaps,
an hour and more at 10-minute ones), so its run outlasted the episode. It ended the run at
the first step longer than quiet_s (no reading under the threshold in between), and again
once the cooldown was over while it faded out. A run now goes on across a long step and is
not flagged again as it fades (kades.temporal.threshold, AFTERMATH); the episode still ends,
so a dump after the pump is news. Generated series, where the answer is known."""
from __future__ import annotations

import math
import random

import pytest

from kades.temporal.policy import new_monitor, step
from test_burst_pumps import thin_token

BURST, AFTER = 120, 180  # a pump's trades (thin_token); the trades after it looked at


def alerts_of(points):
    monitor = new_monitor()
    return [i for i, x in enumerate(points) if step(monitor, x).alert]


@pytest.mark.parametrize("mean_s", [120.0, 600.0], ids=["2-minute", "10-minute"])
def test_a_pump_is_one_episode_not_a_trail(mean_s):
    """12 seeds, 3 pumps each: alerts in the 180 trades after each pump's burst (another
    pump's trades left out) / pumps caught within their first 60 trades. Measured at mean
    gaps of 2 minutes 0 / 35/36 (before: 14, 13 of them volatility_regime on the 1st-5th
    reading after the burst), of 10 minutes 1 / 36/36 (before: 5, all volatility_regime)."""
    after = caught = 0
    for seed in range(12):
        points, starts = thin_token(seed, mean_s)
        alerts = alerts_of(points)
        caught += sum(any(s <= a < s + 60 for a in alerts) for s in starts)
        after += sum(any(s + BURST <= a < s + BURST + AFTER for s in starts)
                     and not any(s <= a < s + BURST for s in starts) for a in alerts)
    print(f"\n{mean_s:.0f} s mean gaps: {caught}/36 pumps caught, {after} alerts after them")
    assert after <= 2 and caught >= 35


def with_dumps(points, starts, seed, after_s=1800.0, trades=50):
    """The pumped token dumped `after_s` after each pump's last trade: `trades` trades 1-2 s
    apart, -1 % each (-40 % in about 75 s), the later trades moved by as much. (points, the
    index of each pump's first trade, the index of each dump's first trade)."""
    rng = random.Random(seed)
    out, pumps, dumps = [], [], []
    due = [points[s + BURST - 1]["time"] + after_s for s in starts]
    shift, factor = 0.0, 1.0
    for i, x in enumerate(points):
        if due and x["time"] >= due[0]:
            due.pop(0)
            dumps.append(len(out))
            moment, price = out[-1]["time"], out[-1]["price"]
            for _ in range(trades):
                moment += rng.choice([1, 1, 2])
                price *= math.exp(-0.01 + rng.gauss(0, 0.002))
                out.append({"time": moment, "price": price,
                            "volume": 5000 * rng.uniform(0.5, 1.5)})
            shift += moment - out[dumps[-1] - 1]["time"]
            factor *= price / out[dumps[-1] - 1]["price"]
        if i in starts:
            pumps.append(len(out))
        out.append({**x, "time": x["time"] + shift, "price": x["price"] * factor})
    return out, pumps, dumps


@pytest.mark.parametrize("mean_s", [120.0, 600.0], ids=["2-minute", "10-minute"])
def test_a_dump_after_the_pump_still_alerts(mean_s):
    """The same tokens, each pump dumped 30 minutes after it (3 readings on at 10-minute
    gaps, the volatility run still going): dumps alerted among their own trades / pumps
    caught. Measured 36/36 / 35/36 and 32/36 / 36/36; 18/36 at 10-minute gaps before the
    dump kind (a burst's -1 % trades are small moves over the resolution; a fall on heavy
    volume is a dump), as before the aftermath rule (the episode ends as before, and a kind
    starting a run after it alerts)."""
    dumped = caught = 0
    for seed in range(12):
        points, starts, dumps = with_dumps(*thin_token(seed, mean_s), seed)
        alerts = alerts_of(points)
        dumped += sum(any(d <= a < d + 50 for a in alerts) for d in dumps)
        caught += sum(any(s <= a < s + 60 for a in alerts) for s in starts)
    print(f"\n{mean_s:.0f} s mean gaps: {dumped}/36 dumps alerted, {caught}/36 pumps caught")
    assert dumped >= (34 if mean_s < 300 else 30) and caught >= 35


def crash_pairs(seed, mean_s=600.0, days=4.0, pairs=6, drops=(-0.15, -0.10)):
    """A thin token traded at random times (mean gaps `mean_s`) that crashes on one trade and
    again on the next, 20-40 minutes on, no trade between (under the gap threshold: 20
    typical steps). (points, the index of each second crash)."""
    rng = random.Random(seed)
    moment, price, points, seconds = 1.7e9, 1.0, [], []
    end = moment + days * 86400
    due = sorted(rng.uniform(moment + 86400, end - 6 * 3600) for _ in range(pairs))
    due = [at for k, at in enumerate(due) if k == 0 or at - due[k - 1] > 5 * 3600]
    while moment < end:
        if due and moment >= due[0]:
            due.pop(0)
            for k, drop in enumerate(drops):
                moment += (max(1, round(rng.expovariate(1 / mean_s))) if k == 0
                           else round(rng.uniform(1200, 2400)))
                price *= 1 + drop
                points.append({"time": moment, "price": price,
                               "volume": 3000 * rng.uniform(0.5, 1.5)})
            seconds.append(len(points) - 1)
        moment += max(1, round(rng.expovariate(1 / mean_s)))
        price *= math.exp(rng.gauss(0, 0.004))
        points.append({"time": moment, "price": price, "volume": 1000 * rng.uniform(0.5, 1.5)})
    return points, seconds


@pytest.mark.parametrize("drops", [(-0.15, -0.10), (-0.10, -0.15)], ids=["smaller", "larger"])
def test_a_crash_on_the_next_trade_after_a_long_step_is_news(drops):
    """A review: a run carried on across the long step to the next trade (AFTERMATH) made
    a second crash there part of the first one's run, in its cooldown (600 s on a clock
    slowed ~5 times: 50 minutes), and it went unalerted unless four times the odds: second
    crashes alerted 10/21 (smaller) and 13/21 (larger) with every kind carried on, 21/21
    before the rule and now that only a stretch's score is (CARRIED_KINDS)."""
    alerted = total = 0
    for seed in range(5):
        points, seconds = crash_pairs(seed, drops=drops)
        alerts = set(alerts_of(points))
        alerted += sum(i in alerts for i in seconds)
        total += len(seconds)
    print(f"\nsecond crashes {drops}: {alerted}/{total} alerted")
    assert alerted >= total - 1
