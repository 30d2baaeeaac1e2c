"""Wash trading: wallets (alone or linked by token transfers) trading a token back and forth.

After Victor & Weintraud (WWW '21): a group whose net position stays ~0 (within 1%) while
its volume is a large share of the token's volume is trading with itself. On an AMM the
group never trades with each other directly, so groups are wallets linked by transfers of
the token inside the window (one buys, hands the tokens on, another sells). A single signer
buying and selling within seconds is the simplest case (self-trade).
"""
from __future__ import annotations

from kades.chain.anomaly import make_anomaly, ramp
from kades.chain.rows import Trade, Transfer
from kades.chain.thresholds import ChainThresholds

DETECTOR = "chain.wash_trading"
MAX_TRADES = 5000


def _groups(wallets: set[str], edges: list[Transfer]) -> dict[str, str]:
    """wallet -> group root, wallets joined by any transfer between two of them."""
    parent = {w: w for w in wallets}

    def root(w: str) -> str:
        while parent[w] != w:
            parent[w] = parent[parent[w]]
            w = parent[w]
        return w

    for edge in edges:
        if edge.source in parent and edge.destination in parent:
            parent[root(edge.source)] = root(edge.destination)
    return {w: root(w) for w in wallets}


def find_wash(state: dict, token: str, time_s: float, slot: int, t: ChainThresholds) -> list[dict]:
    trades: list[Trade] = [tr for tr in state["trades"] if time_s - tr.time_s <= t.wash_window_s]
    state["trades"] = trades[-MAX_TRADES:]
    total_quote = sum(tr.quote for tr in trades)
    if not trades or total_quote <= 0:
        return []
    group_of = _groups({tr.wallet for tr in trades}, state["edges"])
    members: dict[str, list[Trade]] = {}
    for tr in trades:
        members.setdefault(group_of[tr.wallet], []).append(tr)
    anomalies = []
    for group_trades in members.values():
        buys = [tr for tr in group_trades if tr.side > 0]
        sells = [tr for tr in group_trades if tr.side < 0]
        if len(group_trades) < t.wash_min_trades or not buys or not sells:
            continue
        volume_base = sum(tr.base for tr in group_trades)
        net = sum(tr.side * tr.base for tr in group_trades)
        share = sum(tr.quote for tr in group_trades) / total_quote
        if abs(net) > t.wash_net_tolerance * volume_base or share < t.wash_min_volume_share:
            continue
        position = peak = 0
        for trade in sorted(group_trades, key=lambda tr: tr.time_s):
            position += trade.side * trade.base
            peak = max(peak, abs(position))
        if volume_base < t.wash_min_turnover * peak:
            continue  # one buy-then-sell-out is a round trip, not trading with oneself
        wallets = sorted({tr.wallet for tr in group_trades})
        key = "wash:" + ",".join(wallets)[:200]
        if time_s - state["alerted"].get(key, -1e18) < t.alert_cooldown_s:
            continue
        state["alerted"][key] = time_s
        quick = any(b.wallet == s.wallet and abs(b.time_s - s.time_s) <= t.self_trade_s for b in buys for s in sells)
        pattern = "self_trade" if len(wallets) == 1 and quick else ("ring" if len(wallets) > 1 else "round_trips")
        anomalies.append(make_anomaly(
            token=token, kind="wash_trading", detector=DETECTOR, time_s=time_s,
            severity=ramp(share, t.wash_min_volume_share, 0.8), confidence=0.9 if len(wallets) > 1 or quick else 0.7,
            start_s=min(tr.time_s for tr in group_trades), slots=(min(tr.slot for tr in group_trades), slot),
            evidence={"summary": f"{len(wallets)} wallet(s) carried {share:.0%} of the volume with a net "
                                 f"position of {abs(net) / volume_base:.2%} of their volume",
                      "pattern": pattern, "wallets": wallets, "volume_share": round(share, 6),
                      "net_position": net, "base_volume": volume_base, "trades": len(group_trades),
                      "turnover": round(volume_base / max(peak, 1), 2),
                      "thresholds": {"net_tolerance": t.wash_net_tolerance, "min_volume_share": t.wash_min_volume_share},
                      "signatures": sorted({tr.signature for tr in group_trades})[:50]}))
    return anomalies
