"""Wash trading: wallets (alone or linked by token transfers) trading a token back and forth.

After Victor & Weintraud (WWW '21): a group whose net position stays ~0 (within 1%) while
its volume is a large share of the token's volume is trading with itself. On an AMM the
group never trades with each other directly, so groups are wallets linked by transfers of
the token inside the window (one buys, hands the tokens on, another sells). A single signer
buying and selling within seconds is the simplest case (self-trade).
"""
from __future__ import annotations

from kades.chain.anomaly import make_anomaly, ramp
from kades.chain.thresholds import ChainThresholds

DETECTOR = "chain.wash_trading"
MAX_TRADES = 5000


def _groups(wallets: set[str], edges: list[list]) -> dict[str, str]:
    """wallet -> group root, wallets joined by any transfer between two of them."""
    parent = {w: w for w in wallets}

    def root(w: str) -> str:
        while parent[w] != w:
            parent[w] = parent[parent[w]]
            w = parent[w]
        return w

    for _, source, destination, *_ in edges:
        if source in parent and destination in parent:
            parent[root(source)] = root(destination)
    return {w: root(w) for w in wallets}


def find_wash(state: dict, token: str, time_s: float, slot: int, t: ChainThresholds) -> list[dict]:
    trades = [tr for tr in state["trades"] if time_s - tr[0] <= t.wash_window_s]
    state["trades"] = trades[-MAX_TRADES:]
    total_quote = sum(tr[4] for tr in trades)
    if not trades or total_quote <= 0:
        return []
    group_of = _groups({tr[1] for tr in trades}, state["edges"])
    members: dict[str, list[list]] = {}
    for tr in trades:
        members.setdefault(group_of[tr[1]], []).append(tr)
    anomalies = []
    for group_trades in members.values():
        buys = [tr for tr in group_trades if tr[2] > 0]
        sells = [tr for tr in group_trades if tr[2] < 0]
        if len(group_trades) < t.wash_min_trades or not buys or not sells:
            continue
        volume_base = sum(tr[3] for tr in group_trades)
        net = sum(tr[2] * tr[3] for tr in group_trades)
        share = sum(tr[4] for tr in group_trades) / total_quote
        if abs(net) > t.wash_net_tolerance * volume_base or share < t.wash_min_volume_share:
            continue
        position = peak = 0
        for trade in sorted(group_trades, key=lambda tr: tr[0]):
            position += trade[2] * trade[3]
            peak = max(peak, abs(position))
        if volume_base < t.wash_min_turnover * peak:
            continue  # one buy-then-sell-out is a round trip, not trading with oneself
        wallets = sorted({tr[1] for tr in group_trades})
        key = "wash:" + ",".join(wallets)[:200]
        if time_s - state["alerted"].get(key, -1e18) < t.alert_cooldown_s:
            continue
        state["alerted"][key] = time_s
        quick = any(b[1] == s[1] and abs(b[0] - s[0]) <= t.self_trade_s for b in buys for s in sells)
        pattern = "self_trade" if len(wallets) == 1 and quick else ("ring" if len(wallets) > 1 else "round_trips")
        anomalies.append(make_anomaly(
            token=token, kind="wash_trading", detector=DETECTOR, time_s=time_s,
            severity=ramp(share, t.wash_min_volume_share, 0.8), confidence=0.9 if len(wallets) > 1 or quick else 0.7,
            start_s=min(tr[0] for tr in group_trades), slots=(min(tr[6] for tr in group_trades), slot),
            evidence={"summary": f"{len(wallets)} wallet(s) carried {share:.0%} of the volume with a net "
                                 f"position of {abs(net) / volume_base:.2%} of their volume",
                      "pattern": pattern, "wallets": wallets, "volume_share": round(share, 6),
                      "net_position": net, "base_volume": volume_base, "trades": len(group_trades),
                      "turnover": round(volume_base / max(peak, 1), 2),
                      "thresholds": {"net_tolerance": t.wash_net_tolerance, "min_volume_share": t.wash_min_volume_share},
                      "signatures": sorted({tr[5] for tr in group_trades})[:50]}))
    return anomalies
