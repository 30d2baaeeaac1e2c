"""Chain detectors: the real labelled Uniswap V2 pools, then the seeded chain scenarios.

Uniswap (Mazorra et al. labels): recall on drained and dumped pools, alerts on active and
abandoned ones, and the alert's block relative to the drain (the largest one-step fall of
the WETH reserve): 0 means in the very transaction, negative means before it.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from kades.chain import function as chain_function
from kades.chain.blockview import block_time_s
from kades.chain.liquidity import watch_pool
from kades.chain.memory import MemoryStates
from kades.chain.quality import format_report, score
from kades.chain.thresholds import ChainThresholds
from kades.chain.uniswap_replay import load_labels, pool_observations
from kades.simulate.chain import SCENARIOS, simulate_chain
from kades.whales import function as whale_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: shared_material
from shared_material import DATA, absent  # noqa: E402

POOLS = DATA / "liquidity/uniswap_v2_pools"
SEEDS = range(100, 110)
CHAIN_KINDS = ["liquidity_removal", "rug_price_dump", "wash_trading", "cyclic_transfer", "risky_launch", "sniper_bundle"]
WHALE_KINDS = ["whale_movement", "accumulation", "distribution", "wallet_splitting"]
EXPECTED_KIND = {"rug_type1_liquidity_removed": "liquidity_removal", "rug_type2_price_dump": "rug_price_dump"}


def drain_block(observations: list[dict]) -> int:
    states = [o for o in observations if o["kind"] == "state"]
    worst, block = -1.0, states[0]["slot"]
    for before, after in zip(states, states[1:]):
        q0 = before["record"]["quote_reserve"]
        fall = (q0 - after["record"]["quote_reserve"]) / q0 if q0 else 0.0
        if fall > worst:
            worst, block = fall, after["slot"]
    return block


def alerts_of(observations: list[dict]) -> list[dict]:
    """The pull and dump alerts (who holds the LP, before the pull, is eval_lp's section)."""
    _, anomalies = watch_pool(None, observations[0]["record"]["pool"], observations, ChainThresholds())
    return [a for a in anomalies if a["anomaly_type"] != "liquidity_unlocked"]


def uniswap_report() -> int:
    reason = absent(POOLS, plain_clone="leaves this corpus out")
    if reason:
        print(f"Uniswap V2 pools (real, labelled): skipped, {reason}")
        return 0
    by_label: dict[str, list[tuple[dict, list[dict], int]]] = {}
    for row in load_labels(POOLS):
        observations = pool_observations(POOLS, row)
        by_label.setdefault(row["label"], []).append((row, alerts_of(observations), drain_block(observations)))
    print("Uniswap V2 pools (real, labelled): liquidity-removal detector on pool states + LP mints/burns")
    print(f"{'label':<30} {'pools':>5} {'flagged':>8} {'right kind':>10}  delay blocks (alert - drain)")
    for label, pools in sorted(by_label.items()):
        flagged = [p for p in pools if p[1]]
        kind = EXPECTED_KIND.get(label)
        right = [p for p in pools if kind and any(a["anomaly_type"] == kind for a in p[1])]
        delays = [min(_block(a) for a in p[1] if a["anomaly_type"] == kind) - p[2] for p in right]
        delay_text = (f"median {statistics.median(delays):+.0f}, min {min(delays):+d}, max {max(delays):+d}"
                      if delays else "-")
        print(f"{label:<30} {len(pools):>5} {len(flagged):>8} {len(right) if kind else '-':>10}  {delay_text}")
    active = by_label.get("unlabeled_active", [])
    pulled = [p for p in active if float(p[0]["liq_MDD"]) <= -0.5 or float(p[0]["price_MDD"]) <= -0.9]
    print(f"active pools flagged: {sum(1 for p in active if p[1])}/{len(active)}; of the active pools, "
          f"{len(pulled)} have a liquidity drawdown >= 50% or a price drawdown >= 90% in the label's own "
          f"inputs (liq_MDD/price_MDD), flagged {sum(1 for p in pulled if p[1])}; the others flagged "
          f"{sum(1 for p in active if p[1] and p not in pulled)}/{len(active) - len(pulled)}")
    for row, alerts, _ in active + by_label.get("unlabeled_inactive", []):
        kinds = sorted({a["anomaly_type"] for a in alerts})
        print(f"  {row['label']:<20} {row['pool']} liq_MDD {float(row['liq_MDD']):+.2f} "
              f"price_MDD {float(row['price_MDD']):+.2f} -> {', '.join(kinds) or 'no alert'}")
    return 0


def _block(anomaly: dict) -> int:
    return anomaly["window"]["last_slot"]


def scenario_report() -> int:
    """Both functions' detectors on fresh seeded runs (state in memory: same code as deployed)."""
    alerts, labels, organic_alerts, organic_tokens = [], [], 0, 0
    for seed in SEEDS:
        sim = simulate_chain(seed=seed)
        chain_store, whale_store = MemoryStates(), MemoryStates()
        for event in sim.events:
            time_s = block_time_s(event.data, None)
            alerts += chain_function.analyse_block(None, event.data, time_s, ChainThresholds(), chain_store)
            alerts += whale_function.analyse_block(None, event.data, time_s, ChainThresholds(), whale_store)
        labels += sim.labels
        organic = {t for t, name in sim.tokens.items() if name == "organic"}
        organic_tokens += len(organic)
        organic_alerts += sum(1 for a in alerts if a["token"] in organic)
    print(f"\nSimulated chain scenarios: {len(SEEDS)} seeds x {len(SCENARIOS)} tokens, 30 min each "
          f"(delay: from the scenario's start to the first true alert; block times are whole seconds)")
    print(format_report(score(alerts, labels, CHAIN_KINDS + WHALE_KINDS)))
    print(f"alerts on organic tokens: {organic_alerts} over {organic_tokens} organic token-runs")
    return 0


def main() -> int:
    return uniswap_report() + scenario_report()


if __name__ == "__main__":
    sys.exit(main())
