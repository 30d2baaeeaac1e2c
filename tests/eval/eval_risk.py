"""Risk levels: do they separate organic tokens from manipulated ones (issue 14, item 5)?

The demo story's market and chain streams (tests/risk/story_risk.py: the detectors'
own code, then kades.risk's pure functions) over several seeds; for each group of tokens the
distribution of the highest level each token reached, and the alerts (decided in event time,
threshold 0.7, on changes of level). "critical" should mean rug-grade evidence: the rug
scenarios (liquidity pulled, creator dump) reach it, the rest do not. The risk constants
(kades.risk.scoring: RUG_KINDS, OTHER_CAP) were set looking at the tuning seeds only; the
held-out seeds (a third) are reported apart.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "risk"))

from story_risk import LEVELS, level_table  # noqa: E402

TUNING_SEEDS = range(1, 7)
HELD_OUT_SEEDS = range(7, 10)
GROUPS = ("organic", "market", "manipulated", "rug")


def report(title: str, seeds) -> dict[str, dict]:
    table = level_table(seeds)
    print(f"\n{title} (seeds {seeds.start}-{seeds.stop - 1}): tokens by the highest risk level "
          "they reached, alerts per token")
    print(f"{'group':<13}{'tokens':>7}" + "".join(f"{level:>10}" for level in LEVELS)
          + f"{'alerts/token':>14}")
    for group in GROUPS:
        row = table.get(group)
        if not row:
            continue
        print(f"{group:<13}{row['tokens']:>7}"
              + "".join(f"{row[level]:>5} {100 * row[level] / row['tokens']:>3.0f}%"
                        for level in LEVELS)
              + f"{row['alerts'] / row['tokens']:>14.2f}")
    return table


def main() -> int:
    print("groups: organic = the chain simulator's organic trading; market = market tokens with "
          "injected price/volume spikes and crashes;\nmanipulated = wash ring, cycle, snipers, "
          "risky launch, whale scenarios; rug = soft rug (liquidity pulled) and dump")
    report("tuning seeds", TUNING_SEEDS)
    held = report("held-out seeds", HELD_OUT_SEEDS)
    critical = {group: held[group]["critical"] / held[group]["tokens"] for group in held}
    print(f"\nheld out: critical among organic {100 * critical.get('organic', 0):.0f}%, market "
          f"{100 * critical.get('market', 0):.0f}%, manipulated "
          f"{100 * critical.get('manipulated', 0):.0f}%, rug {100 * critical.get('rug', 0):.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
