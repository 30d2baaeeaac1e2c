"""ReturnSpikeDetector: the river-style check suite (state, determinism, warm-up, scale, time)."""
from __future__ import annotations

import inspect
import json
import math
import pickle
import random

import pytest

from kades.temporal.detector import ReturnSpikeDetector
from kades.temporal.threshold import ThresholdFilter


def calm_stream(seed: int, *, n: int = 300, step_s: float = 5.0, price: float = 1.0,
                volume: float = 1000.0, jitter: bool = False):
    rng = random.Random(seed)
    moment = 0.0
    for _ in range(n):
        moment += rng.uniform(1.0, 3 * step_s) if jitter else step_s
        price *= math.exp(rng.gauss(0, 0.002))
        yield {"time": moment, "price": price, "volume": volume * math.exp(rng.gauss(0, 0.3))}


def scores(detector, stream) -> list[float]:
    out = []
    for x in stream:
        out.append(detector.score_one(x))
        detector.learn_one(x)
    return out


def test_state_round_trips_through_json_and_pickle():
    detector = ReturnSpikeDetector()
    stream = list(calm_stream(1, n=200))
    scores(detector, stream[:120])
    via_json = ReturnSpikeDetector.from_state(json.loads(json.dumps(detector.to_state())))
    via_pickle = pickle.loads(pickle.dumps(detector))
    rest = stream[120:]
    assert scores(via_json, rest) == scores(via_pickle, rest) == scores(detector, rest)


def test_filter_state_round_trips_through_json():
    monitor = ThresholdFilter(ReturnSpikeDetector())
    stream = list(calm_stream(2, n=200))
    for x in stream[:100]:
        monitor.process_one(x)
    copy = ThresholdFilter.from_state(json.loads(json.dumps(monitor.to_state())))
    spiked = [dict(x, price=x["price"] * (1.3 if i >= 50 else 1)) for i, x in enumerate(stream[100:])]
    assert [copy.process_one(x) for x in spiked] == [monitor.process_one(x) for x in spiked]


def test_same_seed_same_scores():
    assert scores(ReturnSpikeDetector(), calm_stream(3)) == scores(ReturnSpikeDetector(), calm_stream(3))


def test_scores_are_zero_while_warming_up_then_in_range():
    detector = ReturnSpikeDetector(grace_period=40)
    stream = list(calm_stream(4))
    stream[20] = dict(stream[20], price=stream[20]["price"] * 2)  # a huge jump inside the warm-up
    out = scores(detector, stream)
    assert out[:41] == [0.0] * 41  # the first tick gives no return: 40 returns need 41 ticks
    assert all(0.0 <= s <= 1.0 for s in out) and max(out[41:]) > 0


def test_scale_invariance_price_times_1000():
    base = list(calm_stream(5))
    scaled = [dict(x, price=x["price"] * 1000, volume=x["volume"] * 1000) for x in base]
    assert scores(ReturnSpikeDetector(), scaled) == pytest.approx(scores(ReturnSpikeDetector(), base),
                                                                   abs=1e-9)


def test_irregular_timestamps_move_over_a_long_gap_is_less_surprising():
    detector = ReturnSpikeDetector()
    stream = list(calm_stream(6, jitter=True))
    assert max(scores(detector, stream)) < 0.5
    last = stream[-1]
    jump = {"price": last["price"] * 1.03, "volume": last["volume"]}
    soon = detector.score_one({**jump, "time": last["time"] + 5})
    later = detector.score_one({**jump, "time": last["time"] + 600})
    assert soon > 0.5 > later


def test_no_look_ahead_a_tick_not_after_the_last_one_scores_zero_and_teaches_nothing():
    detector = ReturnSpikeDetector()
    stream = list(calm_stream(7))
    scores(detector, stream)
    before = detector.to_state()
    late = dict(stream[-5], price=stream[-5]["price"] * 3)
    assert detector.score_one(late) == 0.0
    detector.learn_one(late)
    assert detector.to_state() == before


def test_spikes_crashes_and_volume_spikes_are_told_apart():
    detector = ReturnSpikeDetector()
    stream = list(calm_stream(8))
    scores(detector, stream)
    last = stream[-1]
    step = {"time": last["time"] + 5, "volume": last["volume"]}
    parts_up = detector.score_parts({**step, "price": last["price"] * 1.25})
    parts_down = detector.score_parts({**step, "price": last["price"] * 0.7})
    parts_volume = detector.score_parts({**step, "price": last["price"], "volume": last["volume"] * 8})
    assert parts_up["price_spike"] > 0.9 and parts_up["flash_crash"] == 0.0
    assert parts_down["flash_crash"] > 0.9 and parts_down["price_spike"] == 0.0
    assert parts_volume["volume_spike"] > 0.5 and max(parts_volume["price_spike"],
                                                     parts_volume["flash_crash"]) < 0.5


def test_a_stale_price_and_volume_do_not_make_the_next_small_move_a_spike():
    detector = ReturnSpikeDetector()
    for i in range(100):
        detector.learn_one({"time": 5.0 * i, "price": 0.5, "volume": 1000.0})
    assert detector.score_one({"time": 500.0, "price": 0.5005, "volume": 1020.0}) < 0.5  # not flagged
    assert detector.score_one({"time": 500.0, "price": 0.6, "volume": 8000.0}) > 0.9


def test_missing_and_extra_features_and_feature_order():
    detector, other = ReturnSpikeDetector(), ReturnSpikeDetector()
    for x in calm_stream(9):
        reordered = {"volume": x["volume"], "extra": "ignored", "price": x["price"], "time": x["time"]}
        assert detector.score_one(x) == other.score_one(reordered)
        detector.learn_one(x)
        other.learn_one(reordered)
    no_volume = {"time": x["time"] + 5, "price": x["price"]}
    assert detector.score_parts(no_volume)["volume_spike"] == 0.0


def test_no_mutable_defaults():
    for target in (ReturnSpikeDetector.__init__, ThresholdFilter.__init__,
                   ReturnSpikeDetector.from_state, ThresholdFilter.from_state):
        for parameter in inspect.signature(target).parameters.values():
            assert not isinstance(parameter.default, (list, dict, set)), parameter


def test_bad_parameters_refused():
    with pytest.raises(ValueError):
        ReturnSpikeDetector(grace_period=0)
    with pytest.raises(ValueError):
        ThresholdFilter(ReturnSpikeDetector(), threshold=0)


def test_evidence_of_a_move_past_what_a_float_holds_is_capped():
    """A tick 1e608 times the last one (the contract takes any positive price) raised
    OverflowError in the evidence of every member that turns log gaps back into ratios."""
    from kades.temporal.policy import new_monitor, step
    monitor = new_monitor()
    for i in range(40):
        step(monitor, {"time": 5.0 * i, "price": 1e-300 * (1 + 0.01 * (i % 3)), "volume": 1e-300,
                       "liquidity": 1e-300})
    verdict = step(monitor, {"time": 200.0, "price": 1e308, "volume": 1e308, "liquidity": 1e308})
    assert verdict.alert == "price_spike"
    details = verdict.flags[0]["details"]
    assert all(math.isfinite(v) for v in details.values() if isinstance(v, float)), details
    assert details["move"] > 1e300  # as far as a float goes
