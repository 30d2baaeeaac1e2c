"""Scores that mean surprise (kades.temporal.likelihood) and the alert policy around them."""
from __future__ import annotations

import json
import math
import random

import pytest

from kades.temporal.likelihood import AnomalyLikelihood
from kades.temporal.policy import new_monitor, step


def calm(seed: int, n: int, *, scale: float = 1.0, sd: float = 0.003):
    rng, price = random.Random(seed), 1.0
    for minute in range(n):
        price *= math.exp(rng.gauss(0, sd))
        yield {"time": 60.0 * minute, "price": scale * price,
               "volume": 10 * math.exp(rng.gauss(0, 0.5))}


def scores(points) -> list[float]:
    monitor = new_monitor()
    return [step(monitor, x).score for x in points]


def test_calm_series_of_any_scale_score_near_zero():
    small, large = scores(calm(1, 2000, scale=1e-7)), scores(calm(1, 2000, scale=1e6))
    print(f"\ncalm: 99th percentile {sorted(small)[int(0.99 * len(small))]:.3f}, "
          f"max {max(small):.3f}")
    assert small == pytest.approx(large, abs=1e-9)  # log prices: the scale changes nothing
    assert sorted(small)[int(0.99 * len(small))] < 0.05 and max(small) < 0.5


def test_highest_at_the_start_of_an_event_then_falls_as_it_becomes_normal():
    points = list(calm(2, 1500))
    for x in points[1000:]:  # from minute 1000 the token moves 5x as much, for good
        x["price"] = points[999]["price"] * (x["price"] / points[999]["price"]) ** 5
    found = scores(points)
    start = max(found[1000:1010])
    print(f"\nvolatility x5: start {start:.2f}, an hour on {max(found[1060:1120]):.2f}, "
          f"later {max(found[1300:]):.2f}")
    assert start >= 0.5 and start == max(found)
    assert max(found[1300:]) < 0.5 * start


def test_state_is_json_and_carries_on_exactly():
    points = list(calm(3, 800))
    whole = new_monitor()
    expected = [step(whole, x).score for x in points]
    part = new_monitor()
    got = [step(part, x).score for x in points[:400]]
    part = new_monitor(json.loads(json.dumps(part.to_state())))
    got += [step(part, x).score for x in points[400:]]
    assert got == expected


def test_a_state_from_before_the_likelihood_keeps_its_detector():
    monitor = new_monitor()
    for x in calm(4, 300):
        step(monitor, x)
    old = monitor.to_state()
    del old["likelihood"]
    carried = new_monitor(old)
    assert carried.detector.to_state() == monitor.detector.to_state()
    assert carried.likelihood.seen == 0  # warms up afresh


def test_a_usual_score_is_no_surprise_on_a_noisy_series():
    likelihood = AnomalyLikelihood()
    rng = random.Random(5)
    for _ in range(1000):
        likelihood.score_learn({"pump": min(1.0, abs(rng.gauss(0, 0.35)))})
    assert likelihood.score({"pump": 0.6})["pump"] < 0.2     # common on this series
    quiet = AnomalyLikelihood()
    for _ in range(1000):
        quiet.score_learn({"pump": min(1.0, abs(rng.gauss(0, 0.02)))})
    assert quiet.score({"pump": 0.6})["pump"] >= 0.5         # rare on this one


def test_one_event_is_one_alert_across_kinds():
    """Within its first 10 minutes (a run still going on then is flagged again)."""
    points = list(calm(6, 510))
    for minute in range(500, 506):  # a pump: price and volume surge over six minutes
        points[minute]["price"] *= 1.08 ** (minute - 499)
        points[minute]["volume"] *= 40
    for x in points[506:]:
        x["price"] *= 1.08 ** 6
    monitor, episodes_off = new_monitor(), new_monitor()
    episodes_off.episode_s = 0.0
    alerts = [v.alert for v in (step(monitor, x) for x in points) if v.alert]
    separate = [v.alert for v in (step(episodes_off, x) for x in points) if v.alert]
    print(f"\npump: {alerts} with episodes, {separate} without")
    assert len(alerts) == 1 < len(separate)
