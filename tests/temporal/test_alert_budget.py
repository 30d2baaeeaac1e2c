"""The alert budget of issue 14 on the real shared corpora, in-sample and held out apart
(tests/temporal/budget.py: the corpora, the held-out rule, what counts as caught and false).
Figures are printed (pytest -s); `make eval` prints the same."""
from __future__ import annotations

import pytest
from benchmark import load_pump_tapes
from budget import (BUDGET_PER_DAY, DONUT_DIR, POOLS_DIR, PUMP_DIR, RECALL_GOAL, SKAB_DIR,
                    labelled_tally, load_donut, load_pools, load_skab, pool_tally, pump_tally,
                    split, split_pools)
from shared_material import needs, require


@pytest.fixture(scope="module")
def pumps():
    require(PUMP_DIR / "events.csv")
    in_sample, held = split(load_pump_tapes())
    return {"in-sample": pump_tally(in_sample), "held out": pump_tally(held)}


@pytest.mark.parametrize("part", ["in-sample", "held out"])
def test_pumps_budget_and_recall(pumps, part):
    tally = pumps[part]
    print(f"\npump tapes, {part}: {tally.line()}")
    assert tally.false_per_day <= BUDGET_PER_DAY  # measured 0.84 / 0.46
    assert tally.visible_recall >= 0.8            # measured 10/10 / 6/6


@pytest.fixture(scope="module")
def pumps_per_second():
    require(PUMP_DIR / "events.csv")
    in_sample, held = split(load_pump_tapes(1.0))
    return {"in-sample": pump_tally(in_sample), "held out": pump_tally(held)}


@pytest.mark.parametrize("part", ["in-sample", "held out"])
def test_pumps_meet_the_budget_at_the_deployed_granularity(pumps_per_second, part):
    """The budget was set on 1-minute bars, which nothing builds when deployed: chain blocks
    give a tick per token and slot, timed to the second. In-sample it is met since a kind
    alerted again minutes after its alert is the same event (threshold.REPEAT): 52 -> 46
    false alerts in 47.7 token-days, the same 10/12 caught; held out 15 before and after."""
    tally = pumps_per_second[part]
    print(f"\npump tapes at 1-second ticks, {part}: {tally.line()}")
    assert tally.false_per_day <= BUDGET_PER_DAY  # measured 0.99 / 0.63
    assert tally.visible_recall >= 0.8            # measured 8/8 / 5/5 (6/6 caught)


def test_in_sample_pumps_meet_the_recall_goal(pumps):
    assert pumps["in-sample"].visible_recall >= RECALL_GOAL


def test_held_out_pumps_meet_the_recall_goal(pumps):
    """6/6 since the dump kind (PumpDetector's falling side, designed on generated burst
    dumps): MTH's pump (+5 % on a 2 % price grid) stays under the threshold, its dump under
    the start price on heavy volume is alerted 7 minutes in; before it, 5/6."""
    assert pumps["held out"].visible_recall >= RECALL_GOAL


@needs(DONUT_DIR)
@pytest.mark.parametrize("held", [False, True], ids=["in-sample", "held out"])
def test_web_kpis_stay_quiet(held):
    tally = labelled_tally(split(load_donut())[held])
    print(f"\ndonut KPI, {'held out' if held else 'in-sample'}: {tally.line()}")
    assert tally.false_per_day <= 0.1 and tally.precision >= 0.8  # measured 0.04 / 0.00
    assert tally.caught >= 5                                       # measured 17/24 / 7/58


@needs(SKAB_DIR)
@pytest.mark.parametrize("held", [False, True], ids=["in-sample", "held out"])
def test_pump_testbed_faults(held):
    tally = labelled_tally(split(load_skab())[held])
    print(f"\nSKAB, {'held out' if held else 'in-sample'}: {tally.line()}")
    assert tally.recall >= 0.45  # measured 14/23 / 6/11


@needs(POOLS_DIR)
@pytest.mark.parametrize("held", [False, True], ids=["in-sample", "held out"])
def test_new_pools_pulls_and_dumps(held):
    """New tokens' pools from their creation: their pulls and dumps come in the first points,
    while the detectors warm up (kades.temporal.young). Measured 23/24 with 1 false alert /
    10/10 with 23 (a thin pool traded every few hours for 40 days: 19 of the 25 before the
    count took its drain-by-dump and its half withdrawal as events); before the young
    series' rule 5/23 and 3/8 (no drained pool's pull in-sample)."""
    tally = pool_tally(split_pools(load_pools())[held])
    print(f"\nUniswap pools, {'held out' if held else 'in-sample'}: {tally.line()}")
    assert tally.recall >= 0.8
    assert tally.false_per_day <= BUDGET_PER_DAY

