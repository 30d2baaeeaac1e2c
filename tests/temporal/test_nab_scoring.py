"""The streaming-benchmark scoring and the seeded series it is run on."""
from __future__ import annotations

import pytest

from kades.simulate.series import ANOMALY_KINDS, SERIES_KINDS, simulate_series
from kades.temporal.scoring import normalised, raw_score, sigma

WINDOW = [(1000.0, 2000.0)]


def test_earlier_detection_scores_more_and_later_ones_in_the_window_count_nothing():
    early, late = raw_score([1000.0], WINDOW, "standard"), raw_score([1900.0], WINDOW, "standard")
    assert early.total == pytest.approx(sigma(-1.0)) and 0 < late.total < early.total
    assert raw_score([1000.0, 1100.0, 1500.0], WINDOW, "standard").total == early.total


def test_misses_and_false_positives_cost_by_profile():
    assert raw_score([], WINDOW, "standard").total == -1.0
    assert raw_score([], WINDOW, "reward_low_fn").total == -2.0
    before = raw_score([1000.0, 10.0], WINDOW, "standard").total - raw_score([1000.0], WINDOW, "standard").total
    low_fp = raw_score([1000.0, 10.0], WINDOW, "reward_low_fp").total - raw_score([1000.0], WINDOW, "reward_low_fp").total
    assert before == pytest.approx(-0.11) and low_fp == pytest.approx(-0.22)
    just_after = raw_score([1000.0, 2050.0], WINDOW, "standard").total - early_total()
    assert -0.11 < just_after < 0  # a detection just after a window costs less


def early_total() -> float:
    return raw_score([1000.0], WINDOW, "standard").total


def test_probation_and_normalisation():
    assert raw_score([10.0], WINDOW, "standard", probation_end=500.0).false_positives == 0
    perfect = [raw_score([1000.0], WINDOW, p) for p in ("standard",)]
    assert normalised(perfect) == pytest.approx(100.0)
    assert normalised([raw_score([], WINDOW, "standard")]) == 0.0


@pytest.mark.parametrize("kind", SERIES_KINDS)
def test_series_are_seeded_positive_and_labelled(kind):
    series = simulate_series(kind, seed=4, jitter=True)
    assert series == simulate_series(kind, seed=4, jitter=True)
    assert series.values != simulate_series(kind, seed=5, jitter=True).values
    assert min(series.values) > 0 and all(b > a for a, b in zip(series.times, series.times[1:]))
    assert series.labels and all(l["kind"] in ANOMALY_KINDS and l["start"] <= l["end"] for l in series.labels)
    assert series.labels[0]["start"] >= series.times[int(0.2 * len(series.times))]
