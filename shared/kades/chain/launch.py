"""Risky launches and snipers/bundlers, per token, from its first records on.

Launch risk (as RugCheck-style tools list it): mint authority still set (more can be minted),
freeze authority still set (holders can be frozen), one holder or ten holders owning much of
the supply, the creator's own share, many launches by the same creator. Each factor carries
a weight; the launch risk is 1 - prod(1 - weight) over the factors present, all listed.

Snipers: buys within a few seconds of the token's first trade (or launch); a bundle is many
wallets buying in the very same slot; insiders are buyers funded with SOL by the creator.
"""
from __future__ import annotations

from dataclasses import dataclass
from heapq import nlargest
from operator import itemgetter
from typing import Mapping

from kades.chain.anomaly import EVIDENCE_ITEMS, make_anomaly, ramp
from kades.chain.detector import ChainDetector, setting
from kades.chain.state import TokenState

LAUNCH_DETECTOR = "chain.launch_risk"
SNIPER_DETECTOR = "chain.snipers"
WEIGHTS = {"mint_authority": 0.5, "freeze_authority": 0.5, "top1_holder": 0.35, "top10_holders": 0.25,
           "creator_holds": 0.3, "serial_creator": 0.35}
MAX_HOLDERS = 5000
ALERT_RISK = 0.5     # a launch risk worth an alert ...
RISK_GROWTH = 0.2    # ... and how much more it must grow to be said again
_AMOUNT = itemgetter(1)


def top_holders(state: TokenState, count: int) -> list[tuple[str, int]]:
    """The `count` largest positive holdings, largest first, ties in the holders' order (as a
    stable sort of them all gives): a known supply's token is weighed at every block for a
    day, and a sort of its 5,000 holders took 1 ms where heapq's partial one takes 0.4."""
    return nlargest(count, ((w, b) for w, b in state.holders.items() if b > 0), key=_AMOUNT)


@dataclass(frozen=True, kw_only=True)
class LaunchRisk(ChainDetector):
    """Within `window_s` of its launch, a token whose launch risk 1 - prod(1 - weight) over its
    red flags reaches 0.5: authorities kept, a holder with `top1_share` of the supply (the
    creator with half that), ten with `top10_share`, a creator with `creator_launches`
    launches in the window. Said again only when the risk grew by 0.2.

    >>> state = TokenState(launch={"creator": "DEV", "time_s": 0.0, "slot": 1, "supply": 1000,
    ...                            "mint_authority": "DEV", "freeze_authority": None},
    ...                    holders={f"H{k}": 50 for k in range(20)})
    >>> (alert,) = LaunchRisk().find(state, "TOKEN", creator_launches=3, time_s=10.0, slot=2)
    >>> sorted(alert["evidence"]["factors"]), alert["severity"]
    (['mint_authority', 'serial_creator', 'top10_holders'], 0.7562)
    """

    kind = "risky_launch"
    name = LAUNCH_DETECTOR
    top1_share: float = setting("top1_share")
    top10_share: float = setting("top10_share")
    creator_launches: int = setting("creator_launches")
    window_s: float = setting("creator_window_s")

    def find(self, state: TokenState, token: str, *, creator_launches: int, time_s: float,
             slot: int) -> list[dict]:
        launch = state.launch
        if not launch or time_s - launch["time_s"] > self.window_s:
            return []
        supply = launch.get("supply")
        factors = {}
        if launch.get("mint_authority"):
            factors["mint_authority"] = launch["mint_authority"]
        if launch.get("freeze_authority"):
            factors["freeze_authority"] = launch["freeze_authority"]
        # Holdings weighed only against a known supply (pump.fun's): the holdings seen are not
        # it (the pool's tokens and what was minted are unseen), and a first buyer of a
        # Raydium launch held "100 %" of them
        top = top_holders(state, 10) if supply else []
        if top and top[0][1] / supply >= self.top1_share:
            factors["top1_holder"] = {"wallet": top[0][0], "share": round(top[0][1] / supply, 6)}
        if top and sum(b for _, b in top) / supply >= self.top10_share:
            factors["top10_holders"] = {"share": round(sum(b for _, b in top) / supply, 6)}
        creator_share = state.holders.get(launch.get("creator"), 0) / supply if supply else 0.0
        if creator_share >= self.top1_share / 2:
            factors["creator_holds"] = {"wallet": launch.get("creator"), "share": round(creator_share, 6)}
        if creator_launches >= self.creator_launches:
            factors["serial_creator"] = {"creator": launch.get("creator"), "launches_in_window": creator_launches}
        risk = 1.0
        for name in factors:
            risk *= 1 - WEIGHTS[name]
        risk = round(1 - risk, 4)
        if risk < ALERT_RISK or risk < state.alerted.get("launch_risk", 0) + RISK_GROWTH:
            return []  # alert once, and again only when the risk has grown markedly
        state.alerted["launch_risk"] = risk
        return [make_anomaly(token=token, kind=self.kind, detector=self.name, time_s=time_s,
                             severity=risk, confidence=0.9, start_s=launch["time_s"], slots=(launch["slot"], slot),
                             evidence={"summary": "risky launch: " + ", ".join(sorted(factors)),
                                       "factors": factors, "weights": {k: WEIGHTS[k] for k in factors},
                                       "launch_signature": launch.get("signature"), "creator": launch.get("creator"),
                                       "supply": supply, "liquidity_locked": "unknown"})]


@dataclass(frozen=True, kw_only=True)
class Snipers(ChainDetector):
    """Once `window_s` after the first trade have passed, who got in early: `bundle_wallets`
    wallets buying in one slot, buyers the creator funded, or 3+ early buyers holding half
    of `supply_share`. Said once per token.

    >>> from kades.chain.rows import EarlyBuy
    >>> state = TokenState(first_trade={"time_s": 0.0, "slot": 1}, launch={"creator": "DEV",
    ...                    "time_s": 0.0, "slot": 1, "supply": 1000},
    ...                    early_buys=[EarlyBuy(0.0, f"B{k}", 40, 10**9, f"s{k}", 1) for k in range(4)])
    >>> (alert,) = Snipers().find(state, "TOKEN", funders={"B0": "DEV"}, time_s=6.0, slot=15)
    >>> alert["evidence"]["bundles"], alert["evidence"]["insiders_funded_by_creator"]
    ({'1': ['B0', 'B1', 'B2', 'B3']}, ['B0'])
    """

    kind = "sniper_bundle"
    name = SNIPER_DETECTOR
    window_s: float = setting("sniper_s")
    bundle_wallets: int = setting("bundle_wallets")
    supply_share: float = setting("sniper_supply_share")

    def find(self, state: TokenState, token: str, *, funders: Mapping[str, str], time_s: float,
             slot: int) -> list[dict]:
        first = state.first_trade
        # only from a launch seen: the first trade of a token met mid-life is no launch (four
        # ordinary buys in one slot of a months-old token were a "bundle")
        if (not first or not state.launch or state.alerted.get("snipers")
                or time_s - first["time_s"] <= self.window_s):
            return []
        reference_s = min(first["time_s"], (state.launch or {}).get("time_s", first["time_s"]))
        early = [b for b in state.early_buys if b.time_s - reference_s <= self.window_s]
        creator = state.creator
        by_slot: dict[int, set] = {}
        for buy in early:
            by_slot.setdefault(buy.slot, set()).add(buy.wallet)
        bundles = {s: sorted(w) for s, w in by_slot.items() if len(w) >= self.bundle_wallets}
        buyers = sorted({b.wallet for b in early} - {creator})
        insiders = sorted(w for w in buyers if creator and funders.get(w) == creator)
        state.alerted["snipers"] = time_s
        supply = state.launch.get("supply")  # unknown: not pump.fun's (146.8 % of it, once)
        sniped = sum(b.base for b in early if b.wallet != creator)
        share = sniped / supply if supply else 0.0
        if not (bundles or insiders or (len(buyers) >= 3 and share >= self.supply_share / 2)):
            return []
        return [make_anomaly(
            token=token, kind=self.kind, detector=self.name, time_s=time_s,
            severity=ramp(share, 0.0, self.supply_share, floor=0.4),
            confidence=0.9 if (bundles or insiders) else 0.6, start_s=reference_s, slots=(first["slot"], slot),
            evidence={"summary": f"{len(buyers)} wallets bought {share:.1%} of the supply within "
                                 f"{self.window_s:g}s of the first trade",
                      "snipers": buyers[:EVIDENCE_ITEMS], "sniper_count": len(buyers),
                      "bundles": {str(s): w[:EVIDENCE_ITEMS] for s, w in list(bundles.items())[:EVIDENCE_ITEMS]},
                      "insiders_funded_by_creator": insiders[:EVIDENCE_ITEMS], "creator": creator,
                      "sniped_supply_share": round(share, 6),
                      "signatures": sorted({b.signature for b in early})[:EVIDENCE_ITEMS]})]
