"""What `make reliability` concludes from its numbers, and the page it writes."""
from __future__ import annotations

import copy

from report import render
from run import passed

RESULT = {
    "when": "2026-11-26 10:00 UTC", "machine": "2 CPUs, Python 3.11",
    "books": {"posted": 10, "accepted": 30, "deliveries": 50, "handled": 50, "dead_lettered": 0,
              "dead_letter_reasons": {}, "unfinished": 0, "lost_inputs": 0, "backlog": 0,
              "duplicate_rows": 0, "balanced": True},
    "fault_rate": 60.0,
    "outputs": {"inputs": 10, "lateness_s": 300.0, "fault_rate": 0.05,
                "chaos": {"KADES_BROKER_CHAOS_SEED": "3"}, "reference_problems": [],
                "kill_victims": ("temporal-analysis",), "kill_step": "process killed mid-event",
                "caught_up": 10,
                "expected": {"temporal_scores rows": 2}, "exact": True,
                "steps": [{"step": "after_db", "injected": {"risk-scoring": 3}, "late_inputs": 0,
                           "conflicting": 0, "balanced": True, "exact": True,
                           "tallies": {"temporal_scores rows": {
                               "expected": 2, "once": 2, "missing": 0, "duplicated": 0,
                               "extra": 0}}},
                          {"step": "process killed mid-event",
                           "injected": {"temporal-analysis": "killed, 1 in hand"},
                           "late_inputs": 0, "late_by_cause": {"risk-scoring": 2},
                           "conflicting": 0, "balanced": True, "exact": True,
                           "tallies": {"temporal_scores rows": {
                               "expected": 2, "once": 2, "missing": 0, "duplicated": 0,
                               "extra": 0}}}]},
    "faults": [{"name": "Redis stopped", "away_s": 10.0, "recovery_s": 1.5,
                "ready_while_away": {"api": 503, "market-aggregator": None},
                "refusals": {"503": 3}, "books": "balanced"}],
    "failover": {"name": "Redis primary killed (SIGKILL), Sentinel promotes a replica",
                 "away_s": 2.25, "recovery_s": 0.5, "back_s": 2.75, "rate": 20.0,
                 "ready_while_away": {"api": 200}, "refusals": {}, "killed": 7001,
                 "promoted": 7002,
                 "books": {"posted": 300, "accepted": 900, "deliveries": 1200, "handled": 1200,
                           "dead_lettered": 0, "dead_letter_reasons": {}, "unfinished": 0,
                           "lost_inputs": 0, "backlog": 0, "duplicate_rows": 0,
                           "balanced": True}},
    "probes": "10/s → 10/s posted, lag 0", "sustained_rate": 10.0,
    "soak": {"minutes": 10.0, "rate": 8.0, "warmup_s": 60.0, "inputs": 4800, "p50": 0.1,
             "p99": 0.2, "max_lag": 3, "end_lag": 0,
             "rss": {"broker": (70.0, 74.0, 75.0), "api": (100.0, 100.0, 100.0)},
             "max_growth": 5 / 70 * 100},
    "fuzz": "fuzzing: fine", "fuzz_passed": True,
}


def test_a_run_passes_only_when_books_faults_memory_and_fuzzing_all_do():
    assert passed(RESULT)
    assert not passed({**RESULT, "fuzz_passed": False})
    assert not passed({**RESULT, "outputs": {**RESULT["outputs"], "exact": False}})
    for path, bad in ((("books", "balanced"), False), (("soak", "max_growth"), 10.5)):
        broken = copy.deepcopy(RESULT)
        broken[path[0]][path[1]] = bad
        assert not passed(broken), path
    unrecovered = copy.deepcopy(RESULT)
    unrecovered["faults"][0]["recovery_s"] = None
    assert not passed(unrecovered)
    for key, bad in (("recovery_s", None), ("books", {**RESULT["failover"]["books"],
                                                      "unfinished": 1, "balanced": False})):
        broken = copy.deepcopy(RESULT)
        broken["failover"][key] = bad
        assert not passed(broken), key


def test_the_failover_row_shows_promotion_recovery_and_its_own_books():
    page = render(RESULT)
    assert ("| Redis primary killed (SIGKILL), Sentinel promotes a replica | 2.2 s | 0.5 s | "
            "503: none | none | balanced |") in page
    assert "The service answered again **2.8 s** after the kill" in page
    assert "**1200** handled once" in page
    lost = copy.deepcopy(RESULT)
    lost["failover"]["books"] |= {"lost_inputs": 2, "balanced": False}
    assert "NOT balanced: 0 unfinished, 2 inputs lost" in render(lost)


def test_the_page_shows_each_process_growth_and_its_second_half():
    page = render(RESULT)
    assert "| broker | 70 | 74 | 75 | +7.1 % | +1.4 % |" in page
    assert "| Redis stopped | 10.0 s | 1.5 s | 503: api; down: market-aggregator |" in page
    assert "Largest growth: +7.1 % (goal ≤ 10 %)" in page
    assert "| after_db | risk-scoring 3 | 0 | 0 | temporal_scores rows | 2 | 2 | 0 | 0 | 0 |" in page
    assert ("| process killed mid-event | temporal-analysis killed, 1 in hand | "
            "0 (risk-scoring 2, by cause) | 0 | temporal_scores rows | 2 | 2 | 0 | 0 | 0 |") in page
    assert "each of temporal-analysis is killed once (SIGKILL) while it handles an event" in page
