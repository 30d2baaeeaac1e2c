"""The member a verdict and a flag name is the one whose score the threshold met. The level-
range member's scores meet the threshold as they are, beside the likelihood's surprise
(kades.temporal.threshold); the ensemble alone names it against the raw scores. A flag raised
by its score was named after a member whose raw score was higher but whose surprise was under
it, with that member's evidence and the level-range member's raw score."""
from __future__ import annotations

import pickle

from test_level_drift import START, ramp

from kades.temporal.policy import new_monitor, step


def first_alert_of_a_ramp():
    """A monitor just before the first alert of a 15 sd/h ramp (the level-range member's, at
    z 8), and that point."""
    times, values = ramp(0, 60.0, 15.0, 1.0)
    monitor = new_monitor()
    for moment, value in zip(times, values):
        x = {"time": float(moment), "price": float(value)}
        before = pickle.dumps(monitor)
        if step(monitor, x).alert:
            assert moment > START
            return pickle.loads(before), x
    raise AssertionError("no alert")


def test_a_flag_the_level_range_member_raised_is_named_after_it():
    """A bump on the point a ramp first alerts at, of the size (searched, 4-16 units) where
    the multi-window member's raw score is over the level-range member's but its surprise is
    under it, so the flag's score is the level-range member's. Before: named multi_window,
    with its 5-minute window and move, and the level-range member's raw score."""
    start, x = first_alert_of_a_ramp()
    for bump in [4.0 + i / 4 for i in range(49)]:
        monitor, lik = pickle.loads(pickle.dumps(start)), {}
        score_learn = monitor.likelihood.score_learn
        monitor.likelihood.score_learn = lambda raw, **kw: lik.setdefault("parts", dict(
            found := score_learn(raw, **kw))) and found
        verdict = step(monitor, {**x, "price": x["price"] + bump})
        direct = monitor.detector.last_direct.get("price_spike", 0.0)
        if monitor.last_raw["price_spike"] > direct > lik["parts"]["price_spike"] >= 0.5:
            break
    else:
        raise AssertionError("no bump puts the raw score over the member's, its surprise under")
    print(f"\nbump {bump}: raw {monitor.last_raw['price_spike']:.3f}, level range "
          f"{direct:.3f}, surprise {lik['parts']['price_spike']:.3f}")
    assert verdict.alert == "price_spike" and verdict.score == direct
    details = verdict.flags[0]["details"]
    assert verdict.top_detector == details["detector"] == "level_range"
    assert details["window_s"] == 86400.0 and details["raw_score"] == round(direct, 4)
    assert details["contributors"][0] == "level_range"


def test_a_score_the_likelihood_raised_is_not_named_after_the_level_range_member():
    """Every point of a ramp with bumps: the member named for the strongest kind is the
    level-range member exactly when its score is the one the verdict holds."""
    times, values = ramp(1, 60.0, 15.0, 2.0)
    monitor, lik = new_monitor(), {}
    score_learn = monitor.likelihood.score_learn
    monitor.likelihood.score_learn = lambda raw, **kw: lik.__setitem__("parts", dict(
        found := score_learn(raw, **kw))) or found
    named = 0
    for i, (moment, value) in enumerate(zip(times, values)):
        bump = (4.0 + i % 7) if moment > START and i % 9 == 0 else 0.0
        verdict = step(monitor, {"time": float(moment), "price": float(value) + bump})
        if verdict.score <= 0:
            continue
        kind = max(monitor.last_parts, key=monitor.last_parts.get)
        held = monitor.detector.last_direct.get(kind, 0.0) > lik["parts"][kind]
        assert (verdict.top_detector == "level_range") == held, (i, verdict)
        named += held and verdict.score >= 0.5
    assert named
