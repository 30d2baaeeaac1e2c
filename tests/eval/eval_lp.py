"""Warn before the rug: risk from LP holders on the 34 real Uniswap V2 pools (tests/chain/lp_warning.py).

Per drained pool (rug_type1): how long before the pull its risk first reached "high", with
the LP-holder evidence and without it (the pull and dump detectors alone); per never-drained
pool: whether it reached "high", earlier than without the LP holders, and whether half its
WETH was withdrawn afterwards anyway (a pull the labelling rule does not call a type-1 rug).
Held-out pools apart.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chain"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: shared_material

from lp_warning import DRAINED, figures, replay_all  # noqa: E402

from shared_material import DATA, absent  # noqa: E402

POOLS = DATA / "liquidity/uniswap_v2_pools"


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else ("at the pull" if seconds <= 0 else f"{seconds / 60:.0f} min before")


def _row(r: dict) -> str:
    blocks = lambda slot: "-" if slot is None else f"+{slot - r['first_block']}"  # noqa: E731
    return (f"  {r['label'][:22]:<22} {r['pool'][:12]} {'held-out' if r['held_out'] else 'tuning  '} "
            f"pull {blocks(r['pull']):>8}  high {blocks(r['high']['with']):>8} "
            f"({_minutes(r['lead_s']['with'])}; without LP holders: {_minutes(r['lead_s']['without'])}) "
            f"eve {r['eve_level']}")


def summary(title: str, results: list[dict]) -> str:
    f = figures(results)
    lead = (f"median lead {f['median_lead_s'] / 60:.0f} min, shortest {f['min_lead_s'] / 60:.1f} min"
            if f["warned"] else "no lead")
    return (f"{title}: drained pools warned (high before the pull) {f['warned']}/{f['drained']} "
            f"({f['warned_10min']} by 10 min or more; {lead}; without LP holders "
            f"{f['warned_baseline']}/{f['drained']}); high on the pull's eve {f['high_on_eve']}/{f['drained']}; "
            f"never-drained pools reaching high {f['others_high']}/{f['others']} (without LP holders "
            f"{f['others_high_baseline']}: dumps and pulls the labels do not call type 1); earlier or only "
            f"through LP holders {f['others_high_by_lp']}, of which {f['others_high_by_lp_then_pulled']} "
            f"had half their WETH withdrawn afterwards)")


def main() -> int:
    reason = absent(POOLS, plain_clone="leaves this corpus out")
    if reason:
        print(f"Uniswap V2 pools (real, labelled): skipped, {reason}")
        return 0
    results = replay_all(POOLS)
    print("Uniswap V2 pools (real, labelled): risk level through kades.risk.scoring, blocks from the pool's "
          "first Sync (13 s each)")
    for label in sorted({r["label"] for r in results}, key=lambda name: (name != DRAINED, name)):
        for r in (r for r in results if r["label"] == label):
            print(_row(r))
    print(summary("tuning pools", [r for r in results if not r["held_out"]]))
    print(summary("held-out pools", [r for r in results if r["held_out"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
