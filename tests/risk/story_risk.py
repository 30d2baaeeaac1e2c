"""Risk levels over the demo story's tokens, offline (the eval and the calibration test).

One seed of the story's market and chain streams (kades.simulate.story: 5 market tokens with
injected spikes and crashes, 12 chain tokens each playing a scenario, 3 of them organic) runs through
the same detector code the functions run (chain-analysis, whale-detection, temporal-analysis
on the feed's ticks and on the ticks market-aggregator derives from blocks; states in
memory), and each token's anomalies through kades.risk's pure functions: the risk at every
time the token was scored, its highest level, and the alerts decided in event time.
Social posts are left out (sentiment needs the tracked-token directory of a live stack).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from kades.chain import function as chain_function
from kades.chain.blockview import block_time_s
from kades.chain.memory import MemoryStates
from kades.chain.thresholds import ChainThresholds
from kades.market.chain import chain_ticks, sol_usd_of
from kades.risk.alerting import LEVEL_ORDER, decide
from kades.risk.scoring import absorb, epoch_s, risk_at
from kades.simulate.chain import SCENARIO_KINDS, simulate_chain
from kades.simulate.market import simulate_market
from kades.temporal.function import analyse_token
from kades.whales import function as whale_function

RUG_SCENARIOS = ("soft_rug", "dump")   # the liquidity pulled, the creator dumping
LEVELS = tuple(sorted(LEVEL_ORDER, key=LEVEL_ORDER.get))


def story_anomalies(seed: int, *, minutes: float = 30) -> tuple[dict[str, str], list[dict]]:
    """(token -> group, anomalies) of one seed. Groups: `organic` (chain organic trading),
    `rug` (soft rug, dump), `manipulated` (the other chain scenarios), `market` (the market
    tokens: spikes and crashes of price and volume, no manipulation behind them)."""
    market = simulate_market(seed=seed, minutes=minutes)
    start = market.ticks[0]["time"]
    chain = simulate_chain(seed=seed, minutes=minutes,
                           start=datetime.fromisoformat(start.replace("Z", "+00:00")))
    groups = {tick["token"]: "market" for tick in market.ticks}
    for token, scenario in chain.tokens.items():
        groups[token] = ("organic" if scenario not in SCENARIO_KINDS else
                         "rug" if scenario in RUG_SCENARIOS else "manipulated")
    anomalies: list[dict] = []
    chain_store, whale_store, thresholds = MemoryStates(), MemoryStates(), ChainThresholds()
    ticks = [dict(tick) for tick in market.ticks]
    sol_usd = None
    for event in chain.events:
        time_s = block_time_s(event.data, None)
        anomalies += chain_function.analyse_block(None, event.data, time_s, thresholds, chain_store)
        anomalies += whale_function.analyse_block(None, event.data, time_s, thresholds, whale_store)
        sol_usd = sol_usd_of(event.data) or sol_usd
        ticks += chain_ticks(event.data, sol_usd=sol_usd)
    series = defaultdict(list)
    for tick in sorted(ticks, key=lambda t: epoch_s(t["time"])):
        series[tick["token"]].append((epoch_s(tick["time"]), tick))
    for token, points in series.items():
        _, found = analyse_token(token, None, points)
        anomalies += found
    return groups, [a for a in anomalies if a["token"] in groups]


def token_risks(anomalies: list[dict], *, threshold: float = 0.7, hysteresis: float = 0.1
                ) -> dict[str, dict]:
    """Per token: highest level reached, highest score, alerts (decided in event time, as
    risk-scoring decides them) and the kinds behind its highest score."""
    by_token = defaultdict(list)
    for anomaly in anomalies:
        by_token[anomaly["token"]].append(anomaly)
    result = {}
    for token, found in by_token.items():
        state = absorb(None, found)
        risks = [risk_at(state, token, moment)
                 for moment in sorted({epoch_s(a["time"]) for a in found})]
        _, alerts = decide(None, risks, threshold=threshold, hysteresis=hysteresis)
        top = max(risks, key=lambda r: r["score"])
        result[token] = {"level": top["level"], "score": top["score"], "alerts": len(alerts),
                         "causes": sorted({e["anomaly_type"] for e in top["explanation"][:3]})}
    return result


def level_table(seeds, *, threshold: float = 0.7) -> dict[str, dict]:
    """group -> {level: tokens at that highest level, "alerts": n, "tokens": n}."""
    table: dict[str, dict] = {}
    for seed in seeds:
        groups, anomalies = story_anomalies(seed)
        risks = token_risks(anomalies, threshold=threshold)
        for token, group in groups.items():
            row = table.setdefault(group, {**dict.fromkeys(LEVELS, 0), "alerts": 0, "tokens": 0})
            found = risks.get(token, {"level": "low", "alerts": 0})
            row[found["level"]] += 1
            row["alerts"] += found["alerts"]
            row["tokens"] += 1
    return table
