"""One check suite over every streaming detector and the ensemble (as river runs its own):
state through JSON and pickle, determinism, no mutable defaults, warm-up, no look-ahead,
feature order and missing or extra features, scale invariance, better than chance on a
labelled stream of the anomaly the detector is for (ROC AUC printed)."""
from __future__ import annotations

import inspect
import json
import math
import pickle
import random

import pytest

from kades.temporal.detector import ReturnSpikeDetector
from kades.temporal.ensemble import TemporalEnsemble
from kades.temporal.liquidity import LiquidityDropDetector
from kades.temporal.momentum import MomentumFeatures
from kades.temporal.multiwindow import MultiWindowReturnDetector
from kades.temporal.pump import PumpDetector
from kades.temporal.volatility import VolatilityRegimeDetector

DETECTORS = [ReturnSpikeDetector, MultiWindowReturnDetector, PumpDetector, LiquidityDropDetector,
             VolatilityRegimeDetector, MomentumFeatures, TemporalEnsemble]
SCORING = [d for d in DETECTORS if d.kinds]


def labelled_stream(anomaly: str, seed: int, n: int = 1500) -> tuple[list[dict], list[bool]]:
    """A calm market every 5 s with one anomaly of `anomaly` from point 1000 (labels: its
    first 24 points, two minutes)."""
    rng = random.Random(seed)
    points, labels = [], []
    price, liquidity = 1.0, 1e5
    for i in range(n):
        inside = 1000 <= i < 1024
        sigma = 0.012 if anomaly == "volatility" and i >= 1000 else 0.002
        step = rng.gauss(0, sigma)
        if anomaly == "crash" and inside:
            step -= 0.012
        if anomaly == "pump" and inside:
            step += 0.012
        price *= math.exp(step)
        volume = 100 * math.exp(rng.gauss(0, 0.3)) * (20 if anomaly == "pump" and inside else 1)
        liquidity *= math.exp(rng.gauss(0, 0.001) - (0.03 if anomaly == "liquidity" and inside else 0))
        points.append({"time": 5.0 * i, "price": price, "volume": volume, "liquidity": liquidity})
        labels.append(inside)
    return points, labels


STREAM_OF = {ReturnSpikeDetector: "crash", MultiWindowReturnDetector: "crash", PumpDetector: "pump",
             LiquidityDropDetector: "liquidity", VolatilityRegimeDetector: "volatility",
             TemporalEnsemble: "crash"}


def run(detector, points: list[dict]) -> list[float]:
    out = []
    for x in points:
        out.append(detector.score_one(x))
        detector.learn_one(x)
    return out


def auc(scores: list[float], labels: list[bool]) -> float:
    """The probability that an anomalous point outscores a normal one (ties count half)."""
    positives = [s for s, l in zip(scores, labels) if l]
    negatives = [s for s, l in zip(scores, labels) if not l]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


@pytest.mark.parametrize("make", DETECTORS, ids=lambda d: d.__name__)
def test_state_round_trips_through_json_and_pickle(make):
    points, _ = labelled_stream("pump", seed=1)
    detector = make()
    run(detector, points[:900])
    via_json = make.from_state(json.loads(json.dumps(detector.to_state())))
    via_pickle = pickle.loads(pickle.dumps(detector))
    rest = points[900:]
    assert run(via_json, rest) == run(via_pickle, rest) == run(detector, rest)


@pytest.mark.parametrize("make", DETECTORS, ids=lambda d: d.__name__)
def test_same_input_same_scores_and_fresh_instances_share_nothing(make):
    points, _ = labelled_stream("crash", seed=2)
    first, second = make(), make()
    run(first, points[:500])  # must not leak into `second` through a shared default
    assert run(make(), points) == run(second, points)


@pytest.mark.parametrize("make", DETECTORS, ids=lambda d: d.__name__)
def test_no_mutable_defaults(make):
    for target in (make.__init__, make.from_state):
        for parameter in inspect.signature(target).parameters.values():
            assert not isinstance(parameter.default, (list, dict, set)), parameter


@pytest.mark.parametrize("make", SCORING, ids=lambda d: d.__name__)
def test_zero_while_warming_up_then_in_range(make):
    points, _ = labelled_stream("crash", seed=3)
    scores = run(make(), points)
    assert scores[:10] == [0.0] * 10
    assert all(0.0 <= s <= 1.0 for s in scores) and max(scores) > 0


@pytest.mark.parametrize("make", DETECTORS, ids=lambda d: d.__name__)
def test_no_look_ahead_a_point_not_after_the_last_scores_zero_and_teaches_nothing(make):
    points, _ = labelled_stream("pump", seed=4)
    detector = make()
    run(detector, points[:1010])
    before = json.dumps(detector.to_state())
    late = dict(points[1005], price=points[1005]["price"] * 3, volume=1e6, liquidity=1.0)
    assert max(detector.score_parts(late).values(), default=0.0) == 0.0
    detector.learn_one(late)
    assert json.dumps(detector.to_state()) == before


@pytest.mark.parametrize("make", DETECTORS, ids=lambda d: d.__name__)
def test_feature_order_extra_and_missing_features(make):
    points, _ = labelled_stream("pump", seed=5)
    ordered, shuffled = make(), make()
    for x in points:
        reordered = {"extra": "ignored", **dict(reversed(list(x.items())))}
        assert ordered.score_parts(x) == shuffled.score_parts(reordered)
        ordered.learn_one(x)
        shuffled.learn_one(reordered)
    bare = {"time": points[-1]["time"] + 5, "price": points[-1]["price"]}  # no volume, liquidity
    assert all(0.0 <= s <= 1.0 for s in ordered.score_parts(bare).values())


@pytest.mark.parametrize("make", DETECTORS, ids=lambda d: d.__name__)
def test_price_and_volume_scale_do_not_matter(make):
    points, _ = labelled_stream("pump", seed=6)
    scaled = [dict(x, price=x["price"] * 1000, volume=x["volume"] * 1000,
                   liquidity=x["liquidity"] * 1000) for x in points]
    assert run(make(), scaled) == pytest.approx(run(make(), points), abs=1e-6)


@pytest.mark.parametrize("make", SCORING, ids=lambda d: d.__name__)
def test_better_than_chance_on_a_labelled_stream(make):
    aucs = []
    for seed in range(3):
        points, labels = labelled_stream(STREAM_OF[make], seed=10 + seed)
        aucs.append(auc(run(make(), points), labels))
    print(f"\n{make.__name__} on {STREAM_OF[make]} streams: ROC AUC {', '.join(f'{a:.3f}' for a in aucs)}")
    assert min(aucs) > 0.8


def test_momentum_is_evidence_never_an_alert():
    points, _ = labelled_stream("pump", seed=7)
    features = MomentumFeatures()
    assert set(run(features, points)) == {0.0}
    assert {"rsi", "macd", "macd_signal", "macd_above_signal"} <= set(features.evidence(points[-1]))


@pytest.mark.parametrize("make", [d for d in SCORING if d is not TemporalEnsemble],
                         ids=lambda d: d.__name__)
def test_bad_parameters_refused(make):
    with pytest.raises(ValueError):
        make(grace_period=0)
