"""The benchmark-style score on the real pump tapes and the simulator series, with floors
(the full report with every profile and baseline is `make eval`)."""
from __future__ import annotations

from benchmark import (DETECTORS, PUMP_DIR, detection_times, load_pump_tapes, score_corpus,
                       simulator_corpus)
from shared_material import require

from kades.temporal.scoring import normalised


def judged(corpus: list[dict], name: str) -> tuple[float, int, int, int]:
    times = detection_times(DETECTORS[name], corpus)
    scores = score_corpus(times, corpus, "standard")
    return (normalised(scores), sum(s.detected for s in scores), sum(s.windows for s in scores),
            sum(s.false_positives for s in scores))


def test_pump_tapes():
    require(PUMP_DIR / "events.csv")
    tapes = load_pump_tapes()
    ours, detected, windows, false_positives = judged(tapes, "ensemble")
    baseline = judged(tapes, "rolling z-score (baseline)")[0]
    print(f"\npump tapes: standard score {ours:.1f} (rolling z-score {baseline:.1f}), "
          f"recall {detected}/{windows}, {false_positives} detections outside the windows")
    assert detected >= 14 and ours > baseline + 20


def test_simulator_series():
    corpus = simulator_corpus(range(3), jitter=True)
    ours, detected, windows, false_positives = judged(corpus, "ensemble")
    baseline = judged(corpus, "rolling z-score (baseline)")[0]
    print(f"\nsimulator series: standard score {ours:.1f} (rolling z-score {baseline:.1f}), "
          f"recall {detected}/{windows}, {false_positives} false positives")
    assert ours > 90 and ours > baseline and detected / windows >= 0.95
