"""One alert a minute per series at most, but a pull is always news (kades.temporal.threshold,
ESCALATION_SPACING_S). At 1-second ticks a pump prints its kinds a few seconds apart, each
reading far stronger than the one before: on 1-minute bars they were one bar and one alert."""
from __future__ import annotations

import math
import random

import pytest

from kades.temporal.policy import new_monitor, step


def calm(rng: random.Random, monitor, moment: float, price: float, liquidity: float,
         hours: float = 6.0) -> tuple[float, float]:
    """A thin token traded every 1-20 s for `hours`; (time, price) after it."""
    end = moment + hours * 3600
    while moment < end:
        moment += rng.randint(1, 20)
        price *= math.exp(rng.gauss(0, 0.003))
        step(monitor, {"time": moment, "price": price, "volume": rng.uniform(0.5, 1.5),
                       "liquidity": liquidity * rng.uniform(0.999, 1.001)})
    return moment, price


@pytest.mark.parametrize("seed", range(6))
def test_a_pump_printing_over_seconds_alerts_once(seed):
    """Its readings a second apart climb +0.5 %, +1 %, +3 %, +10 %, +10 % on volume rising
    from 3 to 80 times the usual: one alert (before the spacing two, its first reading's
    and, 2-3 s on, a reading four times the odds of it)."""
    rng, monitor = random.Random(seed), new_monitor()
    moment, price = calm(rng, monitor, 1.7e9, 1.0, 5000.0)
    alerts = []
    for move, volume in ((0.005, 3.0), (0.01, 6.0), (0.03, 12.0), (0.1, 40.0), (0.1, 80.0)):
        moment += 1
        price *= 1.0 + move
        verdict = step(monitor, {"time": moment, "price": price, "volume": volume,
                                 "liquidity": 5000.0})
        alerts += [verdict.alert] if verdict.alert else []
    print(f"\nseed {seed}: {alerts}")
    assert len(alerts) == 1


@pytest.mark.parametrize("seed", range(6))
def test_a_pull_seconds_after_a_crash_still_alerts(seed):
    """A crash (-30 % on 40 times the volume, the pool's liquidity down 3 %: sold on another
    pool) alerted, then, 2 s later, the pool drained: both alerted. Before, the drain
    was not four times the odds of 1.0 and the crash's episode muted it."""
    rng, monitor = random.Random(seed), new_monitor()
    moment, price = calm(rng, monitor, 1.7e9, 1.0, 5000.0)
    crash = step(monitor, {"time": moment + 5, "price": price * 0.7, "volume": 40.0,
                           "liquidity": 4850.0})
    pull = step(monitor, {"time": moment + 7, "price": price * 0.69, "volume": 1.0,
                          "liquidity": 3.0})
    print(f"\nseed {seed}: {crash.alert}, then {pull.alert}")
    assert crash.alert and pull.alert == "liquidity_drop"
