"""Whale detectors over one token's swaps and transfers (pure; state is a JSON document).

- whale_movement: a swap or transfer large in absolute terms (quote value) and relative to
  the token's supply, its pool liquidity or the wallet's own usual size;
- accumulation: a wallet, or wallets sharing a funder, steadily net-buying a real share of
  the supply (stealth: many small buys; aggressive: few large ones);
- distribution: a holder fanning tokens out to many wallets, or selling down a large position;
- wallet_splitting: one funder's fresh wallets all trading the same token.
"""
from __future__ import annotations

import statistics

from kades.chain.anomaly import make_anomaly, ramp
from kades.chain.rows import Trade, Transfer
from kades.chain.thresholds import ChainThresholds
from kades.solana.programs import STABLECOINS, WSOL

DETECTOR = "whales"
MAX_ROWS = 5000


def new_state() -> dict:
    return {"last_slot": -1, "trades": [], "sends": [], "sizes": {}, "holders": {}, "pool": None,
            "supply": None, "alerted": {}}


def _alert_once(state: dict, key: str, time_s: float, t: ChainThresholds) -> bool:
    if time_s - state["alerted"].get(key, -1e18) < t.alert_cooldown_s:
        return False
    state["alerted"][key] = time_s
    return True


def supply_of(state: dict) -> int:
    """Known supply, else what we can see: the pool's tokens plus every positive holding."""
    if state["supply"]:
        return state["supply"]
    seen = sum(b for b in state["holders"].values() if b > 0) + ((state["pool"] or [0, 0])[0])
    return max(seen, 1)


def usd_value(swap: dict, quote_ui: float, sol_usd: float | None) -> float | None:
    if swap["quote_mint"] in STABLECOINS:
        return quote_ui
    return quote_ui * sol_usd if sol_usd and swap["quote_mint"] == WSOL else None


def whale_swap(state: dict, token: str, swap: dict, time_s: float, slot: int, t: ChainThresholds,
               sol_usd: float | None = None) -> dict | None:
    quote_ui = swap["quote_amount"] / 10 ** (swap["decimals_in"] if swap["side"] == "buy" else swap["decimals_out"])
    usd = usd_value(swap, quote_ui, sol_usd)
    sizes = state["sizes"].setdefault(swap["trader"], [])
    usual = statistics.median(sizes) if sizes else None
    sizes.append(quote_ui)
    del sizes[:-20]
    small = usd < t.whale_min_usd if usd is not None else quote_ui < t.whale_min_quote
    if small:
        return None
    pool_quote = (state["pool"] or [0, 0])[1]
    supply_share = swap["base_amount"] / supply_of(state)
    liquidity_share = swap["quote_amount"] / pool_quote if pool_quote else 0.0
    history = quote_ui / usual if usual else None
    reasons = {k: v for k, v in {
        "supply_share": supply_share if supply_share >= t.whale_supply_share else None,
        "liquidity_share": liquidity_share if liquidity_share >= t.whale_liquidity_share else None,
        "times_usual_size": history if history and history >= t.whale_history_multiple else None}.items() if v}
    if not reasons:
        return None
    return make_anomaly(token=token, kind="whale_movement", detector=DETECTOR, time_s=time_s,
                        severity=ramp(max(liquidity_share, supply_share * 5), 0.1, 0.5), confidence=0.9,
                        slots=(slot, slot),
                        evidence={"summary": f"{swap['trader']} {swap['side']}s {quote_ui:.2f} in quote",
                                  "wallet": swap["trader"], "side": swap["side"], "quote_value": quote_ui,
                                  "usd_value": round(usd, 2) if usd is not None else None,
                                  "base_amount": swap["base_amount"], "reasons": {k: round(v, 6) for k, v in reasons.items()},
                                  "pool_quote_reserve": pool_quote, "signature": swap["signature"]})


def accumulation(state: dict, token: str, funders: dict, time_s: float, slot: int, t: ChainThresholds) -> list[dict]:
    clusters: dict[str, list[Trade]] = {}
    for trade in state["trades"]:
        clusters.setdefault(funders.get(trade.wallet, trade.wallet), []).append(trade)
    supply, found = supply_of(state), []
    flows = _transfer_flows(state)
    for cluster, trades in clusters.items():
        buys = [tr for tr in trades if tr.side > 0]
        bought, sold = sum(tr.base for tr in buys), sum(tr.base for tr in trades if tr.side < 0)
        passed_on = sum(flows.get(w, 0) for w in {tr.wallet for tr in trades})  # sent minus received
        net_share = (bought - sold - max(0, passed_on)) / supply
        if len(buys) < t.accumulation_buys or net_share < t.accumulation_supply_share or sold > 0.1 * bought:
            continue
        if not _alert_once(state, f"acc:{cluster}", time_s, t):
            continue
        wallets = sorted({tr.wallet for tr in trades})
        mean_quote = sum(tr.quote for tr in buys) / len(buys) / 1e9
        style = "stealth" if mean_quote < t.whale_min_quote / 2 else "aggressive"
        found.append(make_anomaly(
            token=token, kind="accumulation", detector=DETECTOR, time_s=time_s,
            severity=ramp(net_share, t.accumulation_supply_share, 0.1), confidence=0.8 if len(wallets) > 1 else 0.7,
            start_s=min(tr.time_s for tr in trades), slots=(min(tr.slot for tr in trades), slot),
            evidence={"summary": f"{len(wallets)} wallet(s) net-bought {net_share:.1%} of the supply in {len(buys)} buys ({style})",
                      "style": style, "cluster": cluster, "wallets": wallets, "buys": len(buys),
                      "net_supply_share": round(net_share, 6), "signatures": sorted({tr.signature for tr in buys})[:50]}))
    return found


def _transfer_flows(state: dict) -> dict[str, int]:
    """Per wallet: tokens sent minus tokens received by transfer in the window."""
    flows: dict[str, int] = {}
    for send in state["sends"]:
        flows[send.source] = flows.get(send.source, 0) + send.amount
        flows[send.destination] = flows.get(send.destination, 0) - send.amount
    return flows


def distribution(state: dict, token: str, time_s: float, slot: int, t: ChainThresholds) -> list[dict]:
    supply, found = supply_of(state), []
    fan_out: dict[str, list[Transfer]] = {}
    for send in state["sends"]:
        fan_out.setdefault(send.source, []).append(send)
    sells: dict[str, list[Trade]] = {}
    bought: dict[str, int] = {}
    for trade in state["trades"]:
        if trade.side < 0:
            sells.setdefault(trade.wallet, []).append(trade)
        else:
            bought[trade.wallet] = bought.get(trade.wallet, 0) + trade.base
    received: dict[str, int] = {}
    for send in state["sends"]:
        received[send.destination] = received.get(send.destination, 0) + send.amount
    for wallet in sorted(set(fan_out) | set(sells)):
        sends, sold = fan_out.get(wallet, []), sells.get(wallet, [])
        recipients = {s.destination for s in sends}
        # Selling down a position held before: what came in during the window does not count
        # (a wash wallet selling what a partner just handed it is not distributing).
        inflow = bought.get(wallet, 0) + received.get(wallet, 0)
        sold_share = (sum(s.base for s in sold) - inflow) / supply
        if len(recipients) < t.distribution_recipients and not (len(sold) >= 3 and sold_share >= t.distribution_supply_share):
            continue
        if not _alert_once(state, f"dist:{wallet}", time_s, t):
            continue
        moved = sum(s.amount for s in sends) + sum(s.base for s in sold)
        rows = sends + sold
        found.append(make_anomaly(
            token=token, kind="distribution", detector=DETECTOR, time_s=time_s,
            severity=ramp(moved / supply, t.distribution_supply_share, 0.2), confidence=0.8,
            start_s=min(r.time_s for r in rows), slots=(min(r.slot for r in rows), slot),
            evidence={"summary": f"{wallet} sent tokens to {len(recipients)} wallets and sold {sold_share:.1%} of the supply",
                      "wallet": wallet, "recipients": sorted(recipients), "sold_supply_share": round(sold_share, 6),
                      "moved_supply_share": round(moved / supply, 6),
                      "signatures": sorted({r.signature for r in rows})[:50]}))
    return found


def wallet_splitting(state: dict, token: str, funders: dict, time_s: float, slot: int, t: ChainThresholds) -> list[dict]:
    seeded: dict[str, set] = {}
    for trade in state["trades"]:
        if trade.wallet in funders:
            seeded.setdefault(funders[trade.wallet], set()).add(trade.wallet)
    found = []
    for funder, wallets in sorted(seeded.items()):
        if len(wallets) < t.split_wallets or not _alert_once(state, f"split:{funder}", time_s, t):
            continue
        trades = [tr for tr in state["trades"] if tr.wallet in wallets]
        found.append(make_anomaly(
            token=token, kind="wallet_splitting", detector=DETECTOR, time_s=time_s,
            severity=ramp(len(wallets), t.split_wallets, 3 * t.split_wallets), confidence=0.85,
            start_s=min(tr.time_s for tr in trades), slots=(min(tr.slot for tr in trades), slot),
            evidence={"summary": f"{funder} funded {len(wallets)} wallets that all trade this token",
                      "funder": funder, "wallets": sorted(wallets), "signatures": sorted({tr.signature for tr in trades})[:50]}))
    return found
