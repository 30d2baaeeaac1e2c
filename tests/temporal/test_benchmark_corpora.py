"""The benchmark-style score on the real pump tapes and the simulator series, with floors
(the full report with every profile and baseline is `make eval`)."""
from __future__ import annotations

from benchmark import (DETECTORS, PUMP_DIR, detection_times, load_pump_tapes, score_corpus,
                       simulator_corpus)
from shared_material import require

POLICY = "ensemble (alert policy)"

from kades.temporal.scoring import normalised


def judged(corpus: list[dict], name: str) -> tuple[float, int, int, int]:
    times = detection_times(DETECTORS[name], corpus)
    scores = score_corpus(times, corpus, "standard")
    return (normalised(scores), sum(s.detected for s in scores), sum(s.windows for s in scores),
            sum(s.false_positives for s in scores))


def test_pump_tapes():
    require(PUMP_DIR / "events.csv")
    tapes = load_pump_tapes()
    ours, detected, windows, false_positives = judged(tapes, POLICY)
    baseline = judged(tapes, "rolling z-score (baseline)")[0]
    print(f"\npump tapes: standard score {ours:.1f} (rolling z-score {baseline:.1f}), "
          f"recall {detected}/{windows}, {false_positives} detections outside the windows")
    assert detected >= 14 and ours > baseline + 20


def test_simulator_series():
    """The raw ensemble still finds nearly every labelled change; the alert policy gives some
    up (one alert per 10-minute episode, a series' second event less surprising than its
    first) for its budget on real markets."""
    corpus = simulator_corpus(range(3), jitter=True)
    ours, detected, windows, false_positives = judged(corpus, POLICY)
    raw, raw_detected = judged(corpus, "ensemble, raw scores")[:2]
    baseline = judged(corpus, "rolling z-score (baseline)")[0]
    print(f"\nsimulator series: standard score {ours:.1f}, raw scores {raw:.1f} "
          f"(rolling z-score {baseline:.1f}), recall {detected}/{windows} "
          f"(raw {raw_detected}/{windows}), {false_positives} false positives")
    assert raw > 90 and raw > baseline and raw_detected / windows >= 0.95
    assert ours > 75 and detected / windows >= 0.8
