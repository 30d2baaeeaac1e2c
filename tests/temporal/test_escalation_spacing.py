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


def crash_then_drain(seed: int, liquidity_at_crash: float) -> tuple[list[str], list[str]]:
    """After a calm stretch (pool at 5,000), a crash (-30 % on 40 times the volume, the pool at
    `liquidity_at_crash`), then, 2 s later, the pool drained (3) and left empty five points:
    the alerts of the crash and the drain, and those of the five points after."""
    rng, monitor = random.Random(seed), new_monitor()
    moment, price = calm(rng, monitor, 1.7e9, 1.0, 5000.0)
    points = [(5, 0.7, 40.0, liquidity_at_crash), (7, 0.69, 1.0, 3.0)]
    points += [(9 + k, 0.69, 1.0, 2.9) for k in range(5)]
    alerts = [step(monitor, {"time": moment + dt, "price": price * fall, "volume": volume,
                             "liquidity": liquidity}).alert
              for dt, fall, volume, liquidity in points]
    print(f"\nseed {seed}: {alerts}")
    return alerts[:2], alerts[2:]


@pytest.mark.parametrize("seed", range(6))
def test_a_pull_seconds_after_a_crash_still_alerts(seed):
    """The crash sold on another pool (this one's liquidity down 3 %), alerted at up to 1.0:
    the drain 2 s later is news. Before, it was not four times the odds of the crash's
    alert, and the crash's episode muted it."""
    (crash, drain), after = crash_then_drain(seed, 4850.0)
    assert crash and drain == "liquidity_drop" and not any(after)


@pytest.mark.parametrize("seed", range(6))
def test_a_pool_drained_after_a_dump_that_pulled_a_sixth_alerts(seed):
    """A dump that took a sixth of the pool scored its pull 1.0 with it: the drain 2 s later
    is news all the same; the pool staying empty is not. Before, the drain went on the dump's
    run of pulls at 1.0, and nothing was."""
    (dump, drain), after = crash_then_drain(seed, 4200.0)
    assert dump and drain == "liquidity_drop" and not any(after)
