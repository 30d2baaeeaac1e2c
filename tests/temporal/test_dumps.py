"""A dump: the price falling on heavy volume (PumpDetector's falling side, kind `dump`).
A fall on a thin token's burst of trades is small per trade and stretched over the series'
resolution, so the return members scored it low (kades.temporal.clock); a flat price under
its average while a large trade prints, and a fall of a step or two of a price grid, are
not dumps. Generated points, where the answer is known."""
from __future__ import annotations

import json
import math
import random

from kades.temporal.ensemble import TemporalEnsemble
from kades.temporal.pump import PumpDetector


def calm(seed: int, n: int = 400, step_s: float = 60.0, tick: float = 0.0):
    """1-minute points of a 0.2 % walk (on a grid of `tick` when given), volume about 100."""
    rng, price, points = random.Random(seed), 1.0, []
    for i in range(n):
        price *= math.exp(rng.gauss(0, 0.002))
        quoted = round(price / tick) * tick if tick else price
        points.append({"time": i * step_s, "price": quoted, "volume": 100 * rng.uniform(0.8, 1.2)})
    return points


def learned(points) -> PumpDetector:
    detector = PumpDetector()
    for x in points:
        detector.learn_one(x)
    return detector


def test_a_fall_on_heavy_volume_is_a_dump_and_nothing_else_is():
    points = calm(1)
    detector, last = learned(points), points[-1]
    at = last["time"] + 60.0
    fall_heavy = {"time": at, "price": last["price"] * 0.9, "volume": 3000.0}
    fall_thin = {**fall_heavy, "volume": 70.0}  # under its usual volume
    rise_heavy = {**fall_heavy, "price": last["price"] * 1.1}
    scored = {name: detector.score_parts(x) for name, x in
              [("fall, heavy", fall_heavy), ("fall, thin", fall_thin), ("rise, heavy", rise_heavy)]}
    print(scored)
    assert scored["fall, heavy"]["dump"] > 0.5 and scored["fall, heavy"]["pump"] == 0.0
    assert scored["fall, thin"]["dump"] == 0.0
    assert scored["rise, heavy"]["pump"] > 0.5 and scored["rise, heavy"]["dump"] == 0.0


def test_a_flat_price_under_its_average_is_no_dump_on_any_volume():
    points = calm(2)
    detector = learned(points)
    dropped = {"time": points[-1]["time"] + 60, "price": points[-1]["price"] * 0.9,
               "volume": 100.0}
    detector.learn_one(dropped)  # the fall itself, on ordinary volume
    still = {**dropped, "time": dropped["time"] + 60, "volume": 3000.0}
    assert detector.score_parts(still)["dump"] == 0.0  # under the average, but not falling


def test_a_fall_of_one_grid_step_is_no_dump():
    points = calm(3, tick=0.01)  # a price near 1 on a 1 % grid
    detector = learned(points)
    last = points[-1]
    one_step = {"time": last["time"] + 60, "price": last["price"] - 0.01, "volume": 3000.0}
    three = {**one_step, "price": last["price"] - 0.03}
    assert detector.score_parts(one_step)["dump"] == 0.0
    assert detector.score_parts(three)["dump"] > 0.5


def saved_before_dumps(points) -> tuple[TemporalEnsemble, TemporalEnsemble]:
    """(an ensemble that learned `points`, one loaded from its state with the pump member's
    fields of before the dump side taken out: no last level, no grid step)."""
    live = TemporalEnsemble()
    for x in points:
        live.learn_one(x)
    state = json.loads(json.dumps(live.to_state()))
    del state["members"]["pump"]["last_level"], state["members"]["pump"]["resolution"]
    return live, TemporalEnsemble.from_state(state)


def test_a_state_saved_before_dumps_carries_on():
    """A pump member's state from before the dump side loads and scores dumps."""
    points = calm(4)
    _, carried = saved_before_dumps(points)
    last = points[-1]
    carried.learn_one({**last, "time": last["time"] + 60})
    fall = {"time": last["time"] + 120, "price": last["price"] * 0.9, "volume": 3000.0}
    assert carried.score_parts(fall)["dump"] > 0.5


def test_a_state_saved_before_dumps_keeps_the_grid_bar():
    """A pump state from before the dump side takes its last level and grid step from the
    multi-window member's (learned alike on every point): a one-step fall of a 1 % grid on
    heavy volume right after loading is no dump, as for the token never saved. (Loaded with
    a step of 0, the first fall after it met no grid bar and scored ~0.98.)"""
    points = calm(3, tick=0.01)
    live, carried = saved_before_dumps(points)
    assert json.dumps(carried.to_state()) == json.dumps(live.to_state())
    last = points[-1]
    for ensemble in (live, carried):
        ensemble.learn_one({**last, "time": last["time"] + 60})
    one_step = {"time": last["time"] + 120, "price": last["price"] - 0.01, "volume": 3000.0}
    assert carried.score_parts(one_step)["dump"] == live.score_parts(one_step)["dump"] == 0.0
