"""Quality on labelled simulator streams: precision and recall must beat a floor.

A label counts as detected when a flag of its token lands in [start, end + 60 s]; a flag
outside every label window is a false positive. The numbers are printed (pytest -s).
"""
from __future__ import annotations

import random
from datetime import datetime, timezone

from labelled_streams import precision_recall, run_filters

from kades.simulate.market import simulate_market
from kades.simulate.story import repeated_moves

SEEDS = range(10)
# The alert policy gives up some recall on these dense 30-minute streams (several anomalies
# per token, minutes apart: a token's second event is less surprising than its first) for
# its budget on real markets (tests/temporal/budget.py). Measured 0.91 and 0.87 (0.93 and
# 0.88 before a kind alerted again within 10 minutes was taken as the same event, REPEAT;
# 0.88 and 0.83 before the dump kind: a second crash on heavy volume).
RECALL_FLOOR, PRECISION_FLOOR = 0.8, 0.8


def summarise(name: str, totals: dict[str, int]) -> tuple[float, float]:
    recall = totals["detected"] / totals["labels"]
    precision = totals["true_flags"] / totals["flags"]
    print(f"\n{name}: recall {recall:.3f} ({totals['detected']}/{totals['labels']}), "
          f"precision {precision:.3f} ({totals['true_flags']}/{totals['flags']})")
    return recall, precision


def add(totals: dict[str, int], result: dict[str, int]) -> None:
    for key, value in result.items():
        totals[key] = totals.get(key, 0) + value


def test_regular_streams():
    totals: dict[str, int] = {}
    for seed in SEEDS:
        sim = simulate_market(seed=seed, tokens=5, minutes=30)
        add(totals, precision_recall(run_filters(sim.ticks), sim.labels))
    recall, precision = summarise("regular 5 s ticks", totals)
    assert recall >= RECALL_FLOOR and precision >= PRECISION_FLOOR


def test_irregular_streams_with_a_third_of_the_ticks_missing():
    totals: dict[str, int] = {}
    for seed in SEEDS:
        sim = simulate_market(seed=seed, tokens=5, minutes=30)
        rng = random.Random(seed)
        kept = [tick for tick in sim.ticks if rng.random() > 0.33]
        add(totals, precision_recall(run_filters(kept), sim.labels))
    recall, precision = summarise("irregular ticks (33% dropped)", totals)
    assert recall >= RECALL_FLOOR and precision >= PRECISION_FLOOR


def test_flag_types_match_the_injected_kind():
    """A token's move of the kind of its move minutes before is left out: the policy takes it
    as the same event (REPEAT; the demo story shows it but does not count it)."""
    matched = total = repeats = 0
    for seed in SEEDS:
        sim = simulate_market(seed=seed, tokens=5, minutes=30)
        flags = run_filters(sim.ticks)
        for label, repeated in zip(sim.labels, repeated_moves(sim.labels)):
            if repeated:
                repeats += 1
                continue
            total += 1
            matched += any(token == label["token"] and flag["anomaly_type"] == label["kind"]
                           for token, flag in flags
                           if label["start"] <= _text(flag["time"]) <= label["end"])
    print(f"\nlabels whose own kind was flagged inside [start, end]: {matched}/{total} "
          f"({repeats} repeats left out)")
    assert matched / total >= 0.8  # measured 0.83 (0.84 of all 100 before REPEAT)


def _text(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat().replace("+00:00", "Z")
