"""A kind alerted again minutes after its alert is the same event, unless far stronger
(kades.temporal.threshold, REPEAT). At 1-second ticks a thin token's move comes in bursts
minutes apart; each burst started a run of its own and alerted again."""
from __future__ import annotations

import math
import random

import pytest
from test_escalation_spacing import calm

from kades.temporal.policy import new_monitor, step


def bursts(seed: int, plan: list[tuple[float, float]]) -> list[list[str]]:
    """After a calm stretch, for each (seconds after the last burst, volume): calm trades
    until then, and three readings a second apart at that volume (the usual is ~1), the price
    unchanged; the alerts of each burst's readings."""
    rng, monitor = random.Random(seed), new_monitor()
    moment, price = calm(rng, monitor, 1.7e9, 1.0, 5000.0)
    alerts = []
    for after_s, volume in plan:
        end = moment + after_s
        while moment < end - 20:
            moment += rng.randint(5, 20)
            price *= math.exp(rng.gauss(0, 0.003))
            step(monitor, {"time": moment, "price": price, "volume": rng.uniform(0.5, 1.5),
                           "liquidity": 5000.0})
        readings = []
        for _ in range(3):
            moment += 1
            verdict = step(monitor, {"time": moment, "price": price, "volume": volume,
                                     "liquidity": 5000.0})
            readings += [verdict.alert] if verdict.alert else []
        alerts.append(readings)
    print(f"\nseed {seed}: {alerts}")
    return alerts


@pytest.mark.parametrize("seed", range(6))
def test_a_burst_minutes_after_an_alerted_one_is_not_alerted_again(seed):
    """Volume 30 times the usual, three bursts: 4 minutes after the first (the run had ended:
    calm readings for over quiet_s between) it is the same event; 15 minutes after, news
    again. Before the rule, all three alerted."""
    first, repeat, later = bursts(seed, [(60, 30.0), (240, 30.0), (900, 30.0)])
    assert first == ["volume_spike"] and repeat == [] and later == ["volume_spike"]


@pytest.mark.parametrize("seed", range(6))
def test_a_third_burst_within_the_cooldown_is_not_alerted_either(seed):
    """Bursts about 0, 3 and 6 minutes apart: one alert. The alert is kept after its
    episode ended (the second burst ended it); when it was not, the third alerted again."""
    assert bursts(seed, [(60, 30.0), (190, 30.0), (190, 30.0)]) == [["volume_spike"], [], []]


@pytest.mark.parametrize("seed", range(6))
def test_a_pull_minutes_after_a_dump_that_pulled_a_sixth_is_news(seed):
    """A crash on 40 times the volume with the pool down a sixth (its pull scored with
    it), four minutes of calm, then half the pool pulled: a second act, alerted (a pull never
    repeats an alert). As a repeat it could not escalate: the dump's pull scored 1.0."""
    rng, monitor = random.Random(seed), new_monitor()
    moment, price = calm(rng, monitor, 1.7e9, 1.0, 5000.0)
    price *= 0.7
    moment += 5
    dump = step(monitor, {"time": moment, "price": price, "volume": 40.0, "liquidity": 4200.0})
    end = moment + 240
    while moment < end:
        moment += rng.randint(5, 20)
        price *= math.exp(rng.gauss(0, 0.003))
        step(monitor, {"time": moment, "price": price, "volume": rng.uniform(0.5, 1.5),
                       "liquidity": 4200.0 * rng.uniform(0.999, 1.001)})
    pull = step(monitor, {"time": moment + 5, "price": price, "volume": 1.0, "liquidity": 2000.0})
    print(f"\nseed {seed}: {dump.alert}, then {pull.alert}")
    assert dump.alert and pull.alert == "liquidity_drop"


@pytest.mark.parametrize("seed", range(6))
def test_a_far_stronger_burst_minutes_after_is_news(seed):
    """A first burst alerted near the threshold (volume 4 times the usual), then one at 200
    times, 4 minutes on: four times the odds of the first alert (ESCALATION_ODDS), alerted."""
    first, stronger = bursts(seed, [(60, 4.0), (240, 200.0)])
    assert first == ["volume_spike"] and stronger == ["volume_spike"]


def test_a_state_from_before_the_rule_carries_its_last_alert_on():
    """A stored state without `alerted` (written before the rule) takes its last alert's
    times: a repeat 4 minutes after a burst alerted before the upgrade is still muted."""
    rng, monitor = random.Random(0), new_monitor()
    moment, price = calm(rng, monitor, 1.7e9, 1.0, 5000.0)
    first = [step(monitor, {"time": moment + k, "price": price, "volume": 30.0,
                            "liquidity": 5000.0}).alert for k in (1, 2, 3)]
    state = monitor.to_state()
    del state["alerted"]
    monitor = new_monitor(state)
    moment += 3
    while moment < 1.7e9 + 6 * 3600 + 240:
        moment += rng.randint(5, 20)
        step(monitor, {"time": moment, "price": price, "volume": rng.uniform(0.5, 1.5),
                       "liquidity": 5000.0})
    repeat = [step(monitor, {"time": moment + k, "price": price, "volume": 30.0,
                             "liquidity": 5000.0}).alert for k in (1, 2, 3)]
    assert [a for a in first if a] == ["volume_spike"] and not any(repeat)
