"""How long before a pull the risk reached "high", on the 34 real Uniswap V2 pools.

Shared by the tests (tests/chain/test_lp_holders.py) and `make eval` (tests/eval/eval_lp.py).
Each pool is replayed (kades.chain.uniswap_replay, LP transfers followed) through the
deployed pool detector (kades.chain.liquidity.watch_pool); its anomalies go to the risk
scorer (kades.risk.scoring.update_risk) as of every observation, twice: with every anomaly,
and without the LP-holder evidence (`liquidity_unlocked`): the baseline, which can only react
to a pull or a dump. The pull is the first step in which both reserves fell and the WETH
reserve by half or more (the removal threshold); lead = pull time − first "high" (13 s a block).

Held out (the LP-holder defaults were set on the other pools only): per label, the pools in
order of the SHA-256 of their lower-case address, every third from the second on.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from kades.chain.anomaly import rfc3339
from kades.chain.liquidity import watch_pool
from kades.chain.lp_holders import KIND
from kades.chain.thresholds import ChainThresholds
from kades.chain.uniswap_replay import BLOCK_S, held_out, load_labels, pool_observations
from kades.risk.scoring import update_risk

DRAINED = "rug_type1_liquidity_removed"
HIGH = ("high", "critical")


def pull_slot(observations: list[dict], share: float) -> int | None:
    """The block of the first withdrawal of `share` or more of the WETH reserve: both
    reserves falling in one step (a dump into the pool raises the token reserve instead)."""
    states = [(o["slot"], o["record"]["base_reserve"], o["record"]["quote_reserve"])
              for o in observations if o["kind"] == "state"]
    for (_, b0, q0), (slot, b1, q1) in zip(states, states[1:]):
        if q0 and b0 and (q0 - q1) / q0 >= share and b1 < b0:
            return slot
    return None


def replay(folder: Path, row: dict, t: ChainThresholds) -> dict:
    """One pool: its pull, when each risk first reached high, the level on the pull's eve."""
    observations = pool_observations(folder, row)
    first = observations[0]["slot"]
    pull = pull_slot(observations, t.removal_share)
    state = risks = None
    base_risk = None
    high = {"with": None, "without": None}
    eve_level, lp_anomalies = "low", 0
    for obs in observations:
        state, found = watch_pool(state, row["pool"], [obs], t, lp_followed=True)
        lp_anomalies += sum(1 for a in found if a["anomaly_type"] == KIND)
        now = rfc3339(obs["time_s"])
        risks, risk = update_risk(risks, row["token"], found, now=now)
        base_risk, base = update_risk(base_risk, row["token"],
                                      [a for a in found if a["anomaly_type"] != KIND], now=now)
        for name, doc in (("with", risk), ("without", base)):
            if high[name] is None and doc["level"] in HIGH:
                high[name] = obs["slot"]
        if pull is not None and obs["slot"] < pull:
            eve_level = risk["level"]
    lead = {name: None if slot is None or pull is None else (pull - slot) * BLOCK_S
            for name, slot in high.items()}
    return {"pool": row["pool"], "label": row["label"], "first_block": first, "pull": pull,
            "high": high, "lead_s": lead, "eve_level": eve_level, "lp_anomalies": lp_anomalies}


def replay_all(folder: Path, t: ChainThresholds | None = None) -> list[dict]:
    t = t or ChainThresholds()
    rows = load_labels(folder)
    out = held_out(rows)
    return [{**replay(folder, row, t), "held_out": row["pool"] in out} for row in rows]


def figures(results: list[dict]) -> dict:
    """Drained pools warned before the pull (lead > 0) and by how much; never-drained pools
    that reached high, earlier than the baseline did (through the LP holders), and of those
    how many had half their WETH withdrawn afterwards anyway (a pull the labels do not call
    a type-1 rug: the labelling rule also looks at recoveries and activity)."""
    drained = [r for r in results if r["label"] == DRAINED]
    others = [r for r in results if r["label"] != DRAINED]
    leads = [r["lead_s"]["with"] for r in drained if (r["lead_s"]["with"] or 0) > 0]
    by_lp = [r for r in others if r["high"]["with"] is not None
             and (r["high"]["without"] is None or r["high"]["with"] < r["high"]["without"])]
    return {"drained": len(drained), "warned": len(leads),
            "warned_baseline": sum(1 for r in drained if (r["lead_s"]["without"] or 0) > 0),
            "median_lead_s": statistics.median(leads) if leads else None,
            "min_lead_s": min(leads) if leads else None,
            "warned_10min": sum(1 for lead in leads if lead >= 600),
            "high_on_eve": sum(1 for r in drained if r["eve_level"] in HIGH),
            "others": len(others), "others_high": sum(1 for r in others if r["high"]["with"] is not None),
            "others_high_baseline": sum(1 for r in others if r["high"]["without"] is not None),
            "others_high_by_lp": len(by_lp),
            "others_high_by_lp_then_pulled": sum(1 for r in by_lp if r["pull"] is not None
                                                 and r["pull"] >= r["high"]["with"])}
