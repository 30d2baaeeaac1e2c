""""critical" means rug-grade evidence (issue 14, item 5): on the demo story's tokens (the
detectors' own code, offline: tests/risk/story_risk.py) organic tokens stay out of
"critical", so do manipulated tokens short of a rug, and every rug reaches it.

Stated budget: at most 5 % of organic tokens and 5 % of the other non-rug tokens critical.
Before the calibration 21 of 30 market tokens (one price spike scored 1.0 was enough) and 13
of 42 manipulated ones reached critical on seeds 1-6.
"""
from __future__ import annotations

from story_risk import level_table

ORGANIC_CRITICAL_SHARE = 0.05
NON_RUG_CRITICAL_SHARE = 0.05


def test_critical_is_for_rugs_and_organic_tokens_stay_out_of_it():
    table = level_table(range(7, 9))  # seeds of the eval's held-out part
    for group, row in sorted(table.items()):
        print(f"{group:<12} tokens {row['tokens']:>3}  " + "  ".join(
            f"{level} {row[level]}" for level in ("low", "medium", "high", "critical"))
            + f"  alerts {row['alerts']}")
    organic, rug = table["organic"], table["rug"]
    others = [table[group] for group in ("market", "manipulated")]
    assert organic["tokens"] >= 6 and rug["tokens"] >= 4
    assert organic["critical"] <= ORGANIC_CRITICAL_SHARE * organic["tokens"]
    assert sum(r["critical"] for r in others) <= NON_RUG_CRITICAL_SHARE * sum(
        r["tokens"] for r in others)
    assert rug["critical"] == rug["tokens"]
    # the levels still say something below critical: most manipulated tokens reach high
    assert table["manipulated"]["high"] >= table["manipulated"]["tokens"] / 3
