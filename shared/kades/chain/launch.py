"""Risky launches and snipers/bundlers, per token, from its first records on.

Launch risk (as RugCheck-style tools list it): mint authority still set (more can be minted),
freeze authority still set (holders can be frozen), one holder or ten holders owning much of
the supply, the creator's own share, many launches by the same creator. Each factor carries
a weight; the launch risk is 1 - prod(1 - weight) over the factors present, all listed.

Snipers: buys within a few seconds of the token's first trade (or launch); a bundle is many
wallets buying in the very same slot; insiders are buyers funded with SOL by the creator.
"""
from __future__ import annotations

from kades.chain.anomaly import make_anomaly, ramp
from kades.chain.thresholds import ChainThresholds

LAUNCH_DETECTOR = "chain.launch_risk"
SNIPER_DETECTOR = "chain.snipers"
PUMP_FUN_SUPPLY = 10 ** 15  # 1 billion tokens, 6 decimals: every pump.fun mint
WEIGHTS = {"mint_authority": 0.5, "freeze_authority": 0.5, "top1_holder": 0.35, "top10_holders": 0.25,
           "creator_holds": 0.3, "serial_creator": 0.35}
MAX_HOLDERS = 5000


def top_holders(state: dict, count: int) -> list[tuple[str, int]]:
    return sorted(((w, b) for w, b in state["holders"].items() if b > 0), key=lambda x: -x[1])[:count]


def launch_risk(state: dict, token: str, creator_launches: int, time_s: float, slot: int,
                t: ChainThresholds) -> list[dict]:
    launch = state.get("launch")
    if not launch or time_s - launch["time_s"] > t.creator_window_s:
        return []
    supply = launch.get("supply") or max(1, sum(b for b in state["holders"].values() if b > 0))
    factors = {}
    if launch.get("mint_authority"):
        factors["mint_authority"] = launch["mint_authority"]
    if launch.get("freeze_authority"):
        factors["freeze_authority"] = launch["freeze_authority"]
    top = top_holders(state, 10)
    if top and top[0][1] / supply >= t.top1_share:
        factors["top1_holder"] = {"wallet": top[0][0], "share": round(top[0][1] / supply, 6)}
    if top and sum(b for _, b in top) / supply >= t.top10_share:
        factors["top10_holders"] = {"share": round(sum(b for _, b in top) / supply, 6)}
    creator_share = state["holders"].get(launch.get("creator"), 0) / supply
    if creator_share >= t.top1_share / 2:
        factors["creator_holds"] = {"wallet": launch.get("creator"), "share": round(creator_share, 6)}
    if creator_launches >= t.creator_launches:
        factors["serial_creator"] = {"creator": launch.get("creator"), "launches_in_window": creator_launches}
    risk = 1.0
    for name in factors:
        risk *= 1 - WEIGHTS[name]
    risk = round(1 - risk, 4)
    if risk < 0.5 or risk < state["alerted"].get("launch_risk", 0) + 0.2:
        return []  # alert once, and again only when the risk has grown markedly
    state["alerted"]["launch_risk"] = risk
    return [make_anomaly(token=token, kind="risky_launch", detector=LAUNCH_DETECTOR, time_s=time_s,
                         severity=risk, confidence=0.9, start_s=launch["time_s"], slots=(launch["slot"], slot),
                         evidence={"summary": "risky launch: " + ", ".join(sorted(factors)),
                                   "factors": factors, "weights": {k: WEIGHTS[k] for k in factors},
                                   "launch_signature": launch.get("signature"), "creator": launch.get("creator"),
                                   "supply": supply, "liquidity_locked": "unknown"})]


def find_snipers(state: dict, token: str, funders: dict[str, str], time_s: float, slot: int,
                 t: ChainThresholds) -> list[dict]:
    """Once the sniping window after the first trade has closed, report who got in early."""
    first = state.get("first_trade")
    if not first or state["alerted"].get("snipers") or time_s - first["time_s"] <= t.sniper_s:
        return []
    reference_s = min(first["time_s"], (state.get("launch") or {}).get("time_s", first["time_s"]))
    early = [b for b in state["early_buys"] if b.time_s - reference_s <= t.sniper_s]
    creator = (state.get("launch") or {}).get("creator")
    by_slot: dict[int, set] = {}
    for buy in early:
        by_slot.setdefault(buy.slot, set()).add(buy.wallet)
    bundles = {s: sorted(w) for s, w in by_slot.items() if len(w) >= t.bundle_wallets}
    buyers = sorted({b.wallet for b in early} - {creator})
    insiders = sorted(w for w in buyers if creator and funders.get(w) == creator)
    state["alerted"]["snipers"] = time_s
    supply = (state.get("launch") or {}).get("supply") or PUMP_FUN_SUPPLY
    sniped = sum(b.base for b in early if b.wallet != creator)
    share = sniped / supply
    if not (bundles or insiders or (len(buyers) >= 3 and share >= t.sniper_supply_share / 2)):
        return []
    return [make_anomaly(
        token=token, kind="sniper_bundle", detector=SNIPER_DETECTOR, time_s=time_s,
        severity=ramp(share, 0.0, t.sniper_supply_share, floor=0.4),
        confidence=0.9 if (bundles or insiders) else 0.6, start_s=reference_s, slots=(first["slot"], slot),
        evidence={"summary": f"{len(buyers)} wallets bought {share:.1%} of the supply within "
                             f"{t.sniper_s:g}s of the first trade",
                  "snipers": buyers, "bundles": {str(s): w for s, w in bundles.items()},
                  "insiders_funded_by_creator": insiders, "creator": creator, "sniped_supply_share": round(share, 6),
                  "signatures": sorted({b.signature for b in early})[:50]})]
