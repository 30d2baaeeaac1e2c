"""ThresholdFilter: flags, cooldown of a run, and no learning from flagged ticks."""
from __future__ import annotations

import math
import random

from kades.temporal.detector import ReturnSpikeDetector
from kades.temporal.threshold import ThresholdFilter


def calm(seed: int, n: int, *, start: float = 0.0, price: float = 1.0):
    rng = random.Random(seed)
    for i in range(n):
        price *= math.exp(rng.gauss(0, 0.002))
        yield {"time": start + 5.0 * i, "price": price, "volume": 1000 * math.exp(rng.gauss(0, 0.3))}


def warmed_filter(**params) -> tuple[ThresholdFilter, dict]:
    monitor = ThresholdFilter(ReturnSpikeDetector(), **params)
    for x in calm(1, 200):
        assert monitor.process_one(x) == []
    return monitor, x


def test_flagged_ticks_are_not_learned_but_become_the_reference():
    monitor, last = warmed_filter()
    scale = monitor.detector.return_scale
    spike = {"time": last["time"] + 5, "price": last["price"] * 1.3, "volume": last["volume"]}
    [flag] = monitor.process_one(spike)
    assert flag["anomaly_type"] == "price_spike" and flag["score"] > 0.9
    assert flag["details"]["move"] == 0.3 and flag["details"]["detector"] == "return_spike"
    assert monitor.detector.return_scale == scale          # the jump taught nothing
    assert monitor.detector.last_log_price == math.log(spike["price"])  # returns start after it
    after = {"time": spike["time"] + 5, "price": spike["price"] * 1.001, "volume": last["volume"]}
    assert monitor.process_one(after) == []


def test_one_volume_spike_run_is_one_flag_and_stays_unlearned():
    monitor, last = warmed_filter(cooldown_s=60.0)
    level = monitor.detector.volume_level
    flags = []
    for i in range(1, 10):  # 45 s of 10x volume
        flags += monitor.process_one({"time": last["time"] + 5 * i, "price": last["price"],
                                      "volume": 10_000.0})
    assert [f["anomaly_type"] for f in flags] == ["volume_spike"]
    assert monitor.detector.volume_level == level


def test_a_long_run_is_flagged_again_every_cooldown_then_relearned():
    monitor, last = warmed_filter(cooldown_s=60.0, relearn_after_s=300.0)
    flags = []
    for i in range(1, 200):
        flags += monitor.process_one({"time": last["time"] + 5 * i, "price": last["price"],
                                      "volume": 10_000.0})
    times = [f["time"] - last["time"] for f in flags]
    assert times[:3] == [5.0, 65.0, 125.0]
    assert len(flags) <= 7  # relearned after 300 s: the new volume is the new normal


def test_a_new_run_right_after_a_false_alarm_is_still_flagged():
    monitor, last = warmed_filter()
    drop = {"time": last["time"] + 5, "price": last["price"] * 0.95, "volume": last["volume"]}
    calm_again = {"time": last["time"] + 10, "price": drop["price"], "volume": last["volume"]}
    crash = {"time": last["time"] + 15, "price": drop["price"] * 0.7, "volume": last["volume"]}
    kinds = [[f["anomaly_type"] for f in monitor.process_one(x)] for x in (drop, calm_again, crash)]
    assert kinds == [["flash_crash"], [], ["flash_crash"]]
