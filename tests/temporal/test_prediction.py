"""predict(): a forecast with an interval, judged honestly against persistence."""
from __future__ import annotations

import math
import random

import pytest

from kades.errors import BadRequestError
from kades.temporal.prediction import predict


def random_walk(seed: int, n: int = 3000) -> list[dict]:
    rng, price, history = random.Random(seed), 1.0, []
    for i in range(n):
        price *= math.exp(rng.gauss(0, 0.01))
        history.append({"time": 1_704_067_200 + 60.0 * i, "price": price, "volume": rng.random()})
    return history


def test_a_predictable_series_beats_persistence_with_an_interval_around_the_forecast():
    history = [{"time": 60.0 * i, "price": math.exp(0.001 * i + 0.02 * math.sin(i / 3))}
               for i in range(600)]
    result = predict(list(reversed(history)), window_minutes=5)  # any order
    model = result["model"]
    print(f"\nsine + trend, 5 min ahead: MAE ratio {model['mae_ratio_vs_persistence']}, "
          f"direction {model['directional_accuracy']}")
    assert model["beats_persistence"] and model["mae_ratio_vs_persistence"] < 0.5
    assert result["interval"]["low"] <= result["forecast"]["price"] <= result["interval"]["high"]
    assert result["last_price"] == history[-1]["price"] and result["horizon_minutes"] == 5


def test_a_random_walk_does_not_beat_persistence_and_says_so():
    verdicts = [predict(random_walk(seed), window_minutes=5)["model"] for seed in range(5)]
    print("\nrandom walks: MAE ratios", [m["mae_ratio_vs_persistence"] for m in verdicts])
    assert not any(m["beats_persistence"] for m in verdicts)
    assert all("does not beat persistence" in m["note"] and m["kind"] == "persistence" for m in verdicts)
    result = predict(random_walk(0), window_minutes=5)
    assert result["forecast"]["price"] == result["last_price"]


def test_too_short_a_history_falls_back_to_persistence():
    result = predict(random_walk(1, n=30), window_minutes=5)
    assert result["model"]["kind"] == "persistence" and result["interval"] is None
    assert "too short" in result["model"]["note"]


def test_every_bad_tick_is_named():
    with pytest.raises(BadRequestError) as caught:
        predict([{"time": "2024-01-01T00:00:00Z", "price": 0},
                 {"time": "2024-01-01T00:00:00", "price": 1.0},
                 {"price": 2.0}], window_minutes=0)
    paths = [p.field for p in caught.value.problems]
    assert paths == ["window_minutes", "history[0]", "history[1]", "history[2]"]
