"""The labelled corpora the temporal detectors are judged on, and the runs over them.

Shared by the tests (tests/temporal) and `make eval` (tests/eval/eval_temporal.py):
- the real pump-and-dump tapes in ../shared/data/market/pump_dump/ (Binance trades
  aggregated to one tick per minute that saw trades; the label is the announced start);
- seeded simulator series of every kind (kades.simulate.series).
"""
from __future__ import annotations

import csv
import gzip
import math
from collections import deque
from datetime import datetime
from pathlib import Path

import shared_material

from kades.simulate.series import SERIES_KINDS, simulate_series
from kades.temporal.ensemble import TemporalEnsemble
from kades.temporal.policy import new_monitor
from kades.temporal.detector import ReturnSpikeDetector
from kades.temporal.scoring import Score, probation_end, raw_score
from kades.temporal.threshold import ThresholdFilter

PUMP_DIR = shared_material.DATA / "market/pump_dump"
PUMP_WINDOW_BEFORE_S, PUMP_WINDOW_AFTER_S = 600.0, 1200.0
TICK_S = 60.0


def load_pump_tapes(tick_s: float = TICK_S) -> list[dict]:
    """[{name, points: [{time, price, volume}], windows: [(start, end)]}] per tape, its
    trades as one tick per `tick_s` (1-minute bars by default; 1 s is what temporal-analysis
    gets from chain blocks, whose times are whole seconds)."""
    tapes = []
    with open(PUMP_DIR / "events.csv", newline="") as listing:
        for row in csv.DictReader(listing):
            start = datetime.fromisoformat(row["pump_start_utc"].replace("Z", "+00:00")).timestamp()
            tapes.append({"name": Path(row["file"]).name.split(".csv")[0],
                          "points": trades_to_ticks(PUMP_DIR / row["file"], tick_s),
                          "windows": [(start - PUMP_WINDOW_BEFORE_S, start + PUMP_WINDOW_AFTER_S)]})
    return tapes


def trades_to_ticks(path: Path, tick_s: float = TICK_S) -> list[dict]:
    """One tick per `tick_s` that saw trades, at the bucket's end: the last price (it stays
    on the market's price grid, which the detectors learn) and the summed BTC volume."""
    buckets: dict[int, list[float]] = {}
    with gzip.open(path, "rt", newline="") as tape:
        for trade in csv.DictReader(tape):
            bucket = int(int(trade["timestamp"]) / 1000 // tick_s)
            totals = buckets.setdefault(bucket, [0.0, 0.0])
            totals[0] = float(trade["price"])
            totals[1] += float(trade["btc_volume"])
    return [{"time": (bucket + 1) * tick_s, "price": price, "volume": volume}
            for bucket, (price, volume) in sorted(buckets.items()) if price > 0]


def simulator_corpus(seeds: range = range(5), *, jitter: bool = False) -> list[dict]:
    corpus = []
    for kind in SERIES_KINDS:
        for seed in seeds:
            series = simulate_series(kind, seed=seed, jitter=jitter)
            corpus.append({"name": f"{kind}/{seed}", "kind": kind,
                           "points": [{"time": t, "price": v} for t, v in zip(series.times, series.values)],
                           "windows": [(label["start"], label["end"] + _grace(series.times))
                                       for label in series.labels],
                           "labels": series.labels})
    return corpus


def _grace(times: list[float]) -> float:
    """Windows reach 10 steps past the labelled end: the reaction time a detector is given."""
    return 10 * (times[-1] - times[0]) / (len(times) - 1)


class RollingZScore:
    """The plain baseline: |value - rolling mean| / rolling std over the last `window` points."""

    name = "rolling_zscore"

    def __init__(self, *, window: int = 100, threshold_z: float = 4.0, cooldown_s: float = 60.0):
        self.values: deque[float] = deque(maxlen=window)
        self.threshold_z = threshold_z
        self.cooldown_s = cooldown_s
        self.last_flag: float | None = None
        self.total = self.total_sq = 0.0

    def score_one(self, x: dict) -> float:
        n = len(self.values)
        if n < self.values.maxlen:
            return 0.0
        mean = self.total / n
        std = math.sqrt(max(self.total_sq / n - mean * mean, 1e-18))
        return abs(x["price"] - mean) / std

    def process_one(self, x: dict) -> list[dict]:
        z = self.score_one(x)
        if len(self.values) == self.values.maxlen:
            old = self.values[0]
            self.total -= old
            self.total_sq -= old * old
        self.values.append(x["price"])
        self.total += x["price"]
        self.total_sq += x["price"] ** 2
        if z >= self.threshold_z and (self.last_flag is None or x["time"] - self.last_flag >= self.cooldown_s):
            self.last_flag = x["time"]
            return [{"time": x["time"], "anomaly_type": "zscore", "score": z}]
        return []


DETECTORS = {
    "ensemble (alert policy)": new_monitor,
    "ensemble, raw scores": lambda: ThresholdFilter(TemporalEnsemble()),
    "return_spike (first detector)": lambda: ThresholdFilter(ReturnSpikeDetector()),
    "rolling z-score (baseline)": RollingZScore,
}


def detect(make_monitor, points: list[dict]) -> list[dict]:
    monitor = make_monitor()
    flags = []
    for x in points:
        flags += monitor.process_one(x)
    return flags


def detection_times(make_monitor, corpus: list[dict]) -> list[list[float]]:
    return [[flag["time"] for flag in detect(make_monitor, series["points"])] for series in corpus]


def score_corpus(times: list[list[float]], corpus: list[dict], profile: str) -> list[Score]:
    """Scores of each series' detection `times` under one weighting profile."""
    return [raw_score(found, series["windows"], profile,
                      probation_end=probation_end([p["time"] for p in series["points"]]))
            for found, series in zip(times, corpus)]
