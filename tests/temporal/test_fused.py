"""The ensemble's one pass (kades.temporal.fused) against its members stepped one by one: the
same scores, the same member behind each, the same alerts with the same details and the same
state to the last bit, on real pump-and-dump tapes and on simulator series. Every test runs
twice: on the module Cython compiled from fused.py (shared/setup.py) and on fused.py run as
Python, which is what a machine without a C compiler runs."""
from __future__ import annotations

import csv
import doctest
import json
import math
import pickle
import random

import pytest
from benchmark import PUMP_DIR, trades_to_ticks
from compiled_source import compiled, source_module
from shared_material import needs

from kades.simulate.market import simulate_market
from kades.simulate.series import SERIES_KINDS, simulate_series
from kades.temporal import ensemble as ensemble_module
from kades.temporal import fused
from kades.temporal.ensemble import TemporalEnsemble
from kades.temporal.policy import FILTER_PARAMS, new_monitor, step
from kades.temporal.threshold import ThresholdFilter


@pytest.fixture(autouse=True, params=["compiled", "source"])
def one_pass(request, monkeypatch):
    """The one pass every ensemble of the test steps: compiled, or from its source."""
    if request.param == "source":
        monkeypatch.setattr(ensemble_module, "fused", source_module(fused))
    elif not compiled(fused):
        pytest.skip("kades.temporal.fused is not compiled here (no C compiler at `make setup`)")
    return ensemble_module.fused



def test_the_module_examples(one_pass):
    """fused.py's docstring examples, on the compiled module and on the source (pytest.ini
    keeps the file out of --doctest-modules)."""
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(one_pass, one_pass.__name__):
        runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    assert attempted >= 3 and not failed


def reference_monitor(*, log_scale: bool = True) -> ThresholdFilter:
    """The alert policy's monitor (kades.temporal.policy) with the members stepped one by one."""
    return ThresholdFilter.from_state(None, detector_class=TemporalEnsemble,
                                      detector_params={"log_scale": log_scale, "one_pass": False},
                                      likelihood_params={}, **FILTER_PARAMS)


def assert_same_policy(points: list[dict], *, log_scale: bool = True) -> int:
    """Both ways over `points`, every verdict and every 100th state compared (states as the
    JSON that goes to Redis, so -0.0 and 0.0 differ); the number of alerts."""
    fused, reference = new_monitor(log_scale=log_scale), reference_monitor(log_scale=log_scale)
    assert fused.detector._stepper() and not reference.detector._stepper()
    alerts = 0
    for i, x in enumerate(points):
        ours, theirs = step(fused, x), step(reference, x)
        assert ours == theirs, (i, x)
        assert list(fused.detector.last_by.items()) == list(reference.detector.last_by.items())
        assert fused.last_raw == reference.last_raw
        assert fused.detector.last_direct == reference.detector.last_direct
        alerts += bool(ours.alert)
        if i % 100 == 99 or i == len(points) - 1:
            assert json.dumps(fused.to_state()) == json.dumps(reference.to_state()), i
    return alerts


def market_points(seed: int, minutes: float = 600) -> list[dict]:
    """One simulated token's ticks, with volume and liquidity, at irregular times."""
    sim = simulate_market(seed=seed, tokens=2, minutes=minutes, anomalies_per_token=4)
    token = sim.ticks[0]["token"]
    rng, moment, points = random.Random(seed), 0.0, []
    for tick in sim.ticks:
        if tick["token"] == token:
            moment += rng.choice((0.4, 1.0, 5.0, 5.0, 5.0, 12.0, 60.0, 600.0))
            points.append({"time": moment, "price": tick["price"], "volume": tick["volume"],
                           "liquidity": tick["liquidity"]})
    return points


@needs(PUMP_DIR / "events.csv")
def test_the_same_alerts_and_states_on_real_pump_tapes():
    with open(PUMP_DIR / "events.csv", newline="") as listing:
        files = [row["file"] for row in csv.DictReader(listing)]
    alerts = sum(assert_same_policy(trades_to_ticks(PUMP_DIR / name)) for name in files[:4])
    assert alerts > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_the_same_alerts_and_states_on_simulated_markets(seed):
    assert assert_same_policy(market_points(seed)) > 0


@pytest.mark.parametrize("kind", SERIES_KINDS)
def test_the_same_on_every_simulated_series_kind_with_and_without_logs(kind):
    series = simulate_series(kind, seed=3, jitter=True)
    points = [{"time": t, "price": v} for t, v in zip(series.times, series.values)]
    assert_same_policy(points, log_scale=False)
    if min(series.values) > 0:
        assert_same_policy(points)


def test_advance_learn_and_odd_points_the_same_way():
    """Points the one pass hands to the members (a NaN volume, a price of 0 on logs), points
    not after the last, missing fields: the same scores, states and errors."""
    points = market_points(3, minutes=120)
    odd = {40: {"volume": math.nan}, 41: {"liquidity": math.nan}, 42: {"volume": None},
           43: {"volume": 0.0, "liquidity": 0.0}, 44: {"liquidity": None}}
    ours, theirs = TemporalEnsemble(), TemporalEnsemble(one_pass=False)
    for i, x in enumerate(points):
        x = {**x, **odd.get(i, {})}
        late = dict(points[i - 3], price=x["price"] * 2) if i > 3 else x
        for point in (x, late):
            assert ours.score_parts(point) == theirs.score_parts(point)
            assert ours.last_by == theirs.last_by
        if i % 5 == 0:
            ours.advance_one(x), theirs.advance_one(x)
        else:
            ours.learn_one(x), theirs.learn_one(x)
        ours.learn_one(late), theirs.learn_one(late)
        assert json.dumps(ours.to_state()) == json.dumps(theirs.to_state()), i
    zero = dict(points[-1], time=points[-1]["time"] + 5, price=0.0)
    for ensemble in (ours, theirs):
        with pytest.raises(ValueError):
            ensemble.learn_one(zero)
    assert json.dumps(ours.to_state()) == json.dumps(theirs.to_state())


def drift_points(seed: int, *, offset: float = 100.0) -> list[dict]:
    """Two calm days of a level (1-minute points, a few seconds' jitter), then a ramp of 15 sd
    an hour for 4 hours: the level-range member warms up, scores, alerts and accepts."""
    rng, points = random.Random(seed), []
    for i in range(2 * 1440 + 240):
        into = max(0, i - 2 * 1440) / 60.0
        points.append({"time": 60.0 * i + rng.choice((0.0, 0.0, 3.0, 7.5)),
                       "price": offset + rng.gauss(0, 1) + 15.0 * into})
    return points


@pytest.mark.parametrize("log_scale", [True, False])
def test_the_same_on_a_slow_drift_the_level_range_member_alerts_on(log_scale):
    points = drift_points(6, offset=100.0 if log_scale else -3.0)
    alerts = assert_same_policy(points, log_scale=log_scale)
    monitor = new_monitor(log_scale=log_scale)
    kinds = [verdict.top_detector for x in points if (verdict := step(monitor, x)).alert]
    assert alerts == len(kinds) and "level_range" in kinds
    assert monitor.detector.members[-1].accepted != 0.0


def test_the_same_on_a_series_constant_before_it_moves():
    """The level-range member starts at a series' first move: both ways restart it alike."""
    rng = random.Random(3)
    points = [{"time": 60.0 * i, "price": 5.0 if i < 1500 else 5.0 + rng.gauss(0, 0.05)}
              for i in range(1500 + 1440)]
    assert_same_policy(points, log_scale=True)


def test_the_level_range_member_learns_advances_and_scores_the_same_way():
    """Points learned without being scored first, scored then advanced (a flag), scored then
    learned, and late points, through a drift: the same scores and states."""
    ours, theirs = TemporalEnsemble(), TemporalEnsemble(one_pass=False)
    for i, x in enumerate(drift_points(8)):
        if i % 7 == 0:
            ours.learn_one(x), theirs.learn_one(x)
        else:
            assert ours.score_parts(x) == theirs.score_parts(x), i
            assert (ours.last_by, ours.last_direct) == (theirs.last_by, theirs.last_direct), i
            if i % 5 == 0 or ours.last_direct.get("price_spike", 0.0) >= 0.5:
                ours.advance_one(x), theirs.advance_one(x)
            else:
                ours.learn_one(x), theirs.learn_one(x)
        if i % 50 == 0:
            assert json.dumps(ours.to_state()) == json.dumps(theirs.to_state()), i
    assert json.dumps(ours.to_state()) == json.dumps(theirs.to_state())
    assert ours.members[-1].accepted != 0.0 and ours.members[-1].warmed_up


def test_the_one_pass_state_is_the_members_whenever_it_is_read():
    ensemble, points = TemporalEnsemble(), market_points(4, minutes=60)
    for x in points[:300]:
        ensemble.learn_one(x)
    copy = pickle.loads(pickle.dumps(ensemble))
    carried = TemporalEnsemble.from_state(json.loads(json.dumps(ensemble.to_state())))
    assert ensemble.members[0].returns_seen == 299  # members hand over when read
    for x in points[300:]:
        assert ensemble.score_parts(x) == copy.score_parts(x) == carried.score_parts(x)
        for each in (ensemble, copy, carried):
            each.learn_one(x)
    assert json.dumps(ensemble.to_state()) == json.dumps(copy.to_state()) == json.dumps(
        carried.to_state())


def test_only_the_default_three_windows_take_the_one_pass(one_pass):
    from kades.temporal.ensemble import MEMBERS
    from kades.temporal.multiwindow import MultiWindowReturnDetector
    members = [member() for member in MEMBERS]
    assert one_pass.fits(members)
    members[1] = MultiWindowReturnDetector(windows_s=(60.0, 300.0))
    assert not one_pass.fits(members)
    from kades.temporal.levelrange import LevelRangeDetector
    members = [member() for member in MEMBERS]
    members[-1] = LevelRangeDetector(log_scale=False)
    assert not one_pass.fits(members)


def pool_pulled_empty(seed: int) -> list[dict]:
    """A pool seen empty before any liquidity, filled, drained to 0 (a rug), left empty,
    filled again, then halved: ticks every 5 s."""
    rng, points = random.Random(seed), []
    for i in range(900):
        liquidity = (0.0 if i < 3 or 400 <= i < 500
                     else 5e4 * math.exp(rng.gauss(0, 0.003)) * (0.5 if i >= 800 else 1.0))
        points.append({"time": 5.0 * i, "price": 1.0 * math.exp(rng.gauss(0, 0.002)),
                       "volume": 100.0, "liquidity": liquidity})
    return points


def test_a_pool_pulled_empty_is_one_drop_and_a_refill_starts_afresh():
    """Liquidity 0 (the contract allows it) was taken as no liquidity at all: a pool drained
    to 0 raised nothing, where one drained to 1.0 raised liquidity_drop at once."""
    points = pool_pulled_empty(5)
    monitor = new_monitor()
    alerts = {i: verdict.alert for i, x in enumerate(points) if (verdict := step(monitor, x)).alert}
    print(f"\npool drained to 0 at tick 400, refilled at 500, halved at 800: alerts {alerts}")
    assert alerts.get(400) == "liquidity_drop"          # the pull, at once
    assert not [i for i in alerts if i < 400 or 401 <= i < 800]  # empty before, empty after, refilled
    assert "liquidity_drop" in [alerts.get(i) for i in (800, 801)]  # a drop after the refill
    assert assert_same_policy(points) == len(alerts)   # the one pass agrees, bit for bit


def test_a_nan_price_grid_the_same_way():
    """A NaN price after a gap makes the return-spike member's grid NaN (it learns the grid
    on advanced points too); the one pass capped it at MAX_GRID_STEP where min() keeps the
    NaN, and 350 raw scores after it differed. (Flags' details hold NaNs, so only the raw
    scores and the states are compared.)"""
    rng, price = random.Random(1), 1.0
    points = [{"time": 60.0 * i, "price": 1.0} for i in range(100)]
    points += [{"time": 6000.0 + 86400, "price": math.nan},
               {"time": 6000.0 + 2 * 86400, "price": 1.0}]
    for i in range(1, 400):
        price *= math.exp(rng.gauss(0, 0.002))
        points.append({"time": 6000.0 + 2 * 86400 + 60 * i, "price": price})
    fused, reference = new_monitor(), reference_monitor()
    for i, x in enumerate(points):
        step(fused, x), step(reference, x)
        assert fused.last_raw == reference.last_raw, i
    assert json.dumps(fused.to_state()) == json.dumps(reference.to_state())


@pytest.mark.parametrize("log_scale", [True, False])
def test_two_infinite_prices_in_a_row_the_same_way(log_scale):
    """The pump member learns its grid step from level - last level: inf - inf is NaN, a
    move, where the one pass once tested level != last level (inf == inf) and kept the step."""
    rng = random.Random(1)
    points = [{"time": 60.0 * i, "price": 5 + rng.gauss(0, 0.1), "volume": 100.0}
              for i in range(100)]
    points += [{"time": 6000.0, "price": math.inf, "volume": 100.0},
               {"time": 6060.0, "price": math.inf, "volume": 100.0}]
    ours = TemporalEnsemble(log_scale=log_scale)
    theirs = TemporalEnsemble(log_scale=log_scale, one_pass=False)
    for x in points:
        ours.learn_one(x), theirs.learn_one(x)
    assert json.dumps(ours.to_state()) == json.dumps(theirs.to_state())


@pytest.mark.parametrize("member, field, value", [
    ("liquidity_drop", "scale", 0), ("level_range", "accepted", 0),  # ints where floats are
    ("return_spike", "returns_seen", 150.5), ("momentum", "seen", 2 ** 63),
    ("momentum", "last_level", 1), ("pump", "price_average", 2)])  # held as C doubles too
def test_a_state_written_elsewhere_the_same_way(member, field, value):
    """A state's JSON not written by the members (by hand, by another writer) may hold an int
    where they learn a float, a count that is not an int or that no C long holds: compiled,
    the pass held them as C doubles and longs, and wrote "scale": 0 back as 0.0, counted on
    from 150 and failed on 2 ** 63, where the members and the source keep what they read."""
    points = [{k: v for k, v in x.items() if k != "liquidity"}  # the liquidity scale kept
              for x in market_points(3, minutes=120)[:260]]
    learned = TemporalEnsemble(one_pass=False)
    for x in points[:200]:
        learned.learn_one(x)
    state = json.loads(json.dumps(learned.to_state()))
    state["members"][member][field] = value
    ours = TemporalEnsemble.from_state(state)
    theirs = TemporalEnsemble.from_state(state, one_pass=False)
    for x in points[200:]:
        assert ours.score_parts(x) == theirs.score_parts(x)
        assert json.dumps(ours.to_state()) == json.dumps(theirs.to_state())
        ours.learn_one(x), theirs.learn_one(x)
    assert json.dumps(ours.to_state()) == json.dumps(theirs.to_state())


@pytest.mark.parametrize("member, field, empty", [("return_spike", "last_log_price", None),
                                                  ("pump", "price_average", None),
                                                  ("multi_window", "averages", [])])
def test_a_none_the_members_would_sum_raises_as_they_do(member, field, empty):
    """The pass holds a member's None (MW's averages: none yet) as a flag beside 0.0; where a
    warm member would take it in a sum (a state written elsewhere), the members raise, and
    so must the pass, not score on 0.0."""
    points = market_points(3, minutes=120)[:220]
    learned = TemporalEnsemble(one_pass=False)
    for x in points[:200]:
        learned.learn_one(x)
    state = json.loads(json.dumps(learned.to_state()))
    state["members"][member][field] = empty
    errors = []
    for ensemble in (TemporalEnsemble.from_state(state),
                     TemporalEnsemble.from_state(state, one_pass=False)):
        with pytest.raises((TypeError, IndexError)) as raised:
            ensemble.score_parts(points[200])
        errors.append((type(raised.value), str(raised.value)))
    assert errors[0] == errors[1]


def test_a_square_past_the_largest_float_raises_as_in_python():
    """On a linear scale, a price grid step of 1e154 squared is past the largest float:
    Python's ** raises OverflowError (the one pass hands it to the caller, as the members
    raise it), where C's pow gives inf: compiled, the pass scored and learned on."""
    learned = TemporalEnsemble(log_scale=False, one_pass=False)
    for i in range(100):
        learned.learn_one({"time": 5.0 * i, "price": 3.0 + i % 2, "volume": 10.0})
    state = json.loads(json.dumps(learned.to_state()))
    state["members"]["volatility_regime"]["resolution"] = 1e154
    x = {"time": 500.0, "price": 4.0, "volume": 10.0}  # unmoved: the step stays
    for command in ("score_parts", "learn_one"):
        assert_overflows_alike(state, x, command)


def assert_overflows_alike(state: dict, x: dict, command: str) -> None:
    """`command`(x) on a linear-scale ensemble carried on from `state` raises OverflowError,
    the same one through the one pass as through the members."""
    raised = []
    for one_pass in (True, False):
        ensemble = TemporalEnsemble.from_state(state, log_scale=False, one_pass=one_pass)
        assert bool(ensemble._stepper()) == one_pass
        with pytest.raises(OverflowError) as error:
            getattr(ensemble, command)(x)
        raised.append(error.value.args)
    assert raised[0] == raised[1], command


@pytest.mark.parametrize("command", ["score_parts", "learn_one", "advance_one"])
def test_a_move_whose_square_is_past_the_largest_float_raises_as_in_python(command):
    """A linear-scale jump of 2e154 after a warm-up: the volatility member squares the move.
    The last level held as an object, that square was Python's and raised OverflowError;
    held as a C double it was C's pow, inf, and the pass scored and learned on."""
    learned = TemporalEnsemble(log_scale=False, one_pass=False)
    for i in range(400):
        learned.learn_one({"time": 5.0 * i, "price": 3.0 + i % 2, "volume": 10.0})
    state = json.loads(json.dumps(learned.to_state()))
    assert_overflows_alike(state, {"time": 2000.0, "price": 2e154, "volume": 10.0}, command)


def test_a_division_by_zero_says_what_python_says():
    """With the members' floors at 0 (theirs to change, TemporalEnsemble.members) a flat
    series divides 0 by 0: compiled, a C division's ZeroDivisionError said "float division",
    Python's and the members' "float division by zero"."""
    ours, theirs = TemporalEnsemble(), TemporalEnsemble(one_pass=False)
    said = []
    for ensemble in (ours, theirs):
        for member in ensemble.members:
            for floor in ("min_return_scale", "min_scale", "min_price_scale", "min_variance"):
                if hasattr(member, floor):
                    setattr(member, floor, 0.0)
        ensemble.learn_one({"time": 0.0, "price": 1.0})
        assert bool(ensemble._stepper()) == (ensemble is ours)
        with pytest.raises(ZeroDivisionError) as error:
            ensemble.learn_one({"time": 5.0, "price": 1.0})
        said.append(str(error.value))
    assert said == ["float division by zero"] * 2
