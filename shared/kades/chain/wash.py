"""Wash trading: wallets (alone or linked by token transfers) trading a token back and forth.

After Victor & Weintraud (WWW '21): a group whose net position stays ~0 (within 1%) while
its volume is a large share of the token's volume is trading with itself. On an AMM the
group never trades with each other directly, so groups are wallets linked by transfers of
the token inside the window (one buys, hands the tokens on, another sells). A single signer
buying and selling within seconds is the simplest case (self-trade).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter, mul

from kades.chain.anomaly import EVIDENCE_ITEMS, make_anomaly, ramp
from kades.chain.detector import ChainDetector, alert_once, setting
from kades.chain.rows import Trade, Transfer
from kades.chain.state import TokenState

DETECTOR = "chain.wash_trading"
MAX_TRADES = 5000
# a Trade's fields by place (rows are NamedTuples: kades.chain.rows), at C speed over a window
_WALLET, _SIDE, _BASE, _QUOTE = (itemgetter(Trade._fields.index(name))
                                 for name in ("wallet", "side", "base", "quote"))
assert Trade._fields[0] == "time_s"  # WashTrading.find's window cut reads it as tr[0]


def linked_groups(wallets: set[str], edges: list[Transfer]) -> dict[str, str]:
    """wallet -> group root of the wallets joined by a transfer between two of them; any
    other wallet is a group of its own (and not listed)."""
    parent: dict[str, str] = {}

    def root(w: str) -> str:
        while parent.get(w, w) != w:
            parent[w] = parent.get(parent[w], parent[w])
            w = parent[w]
        return w

    for edge in edges:
        if edge.source in wallets and edge.destination in wallets:
            parent[root(edge.source)] = root(edge.destination)
    return {w: root(w) for w in parent}


@dataclass(frozen=True, kw_only=True)
class WashTrading(ChainDetector):
    """A group (a wallet, or wallets linked by transfers) with `min_trades` trades or more in
    the last `window_s`, a net position within `net_tolerance` of its volume, a volume of
    `min_turnover` times its largest position, and `min_volume_share` of the token's volume.
    A single signer buying and selling within `self_trade_s` is a self-trade.

    >>> state = TokenState(trades=[Trade(10.0 * k, "BOT", 1 - 2 * (k % 2), 500, 10**9, f"s{k}", 1)
    ...                            for k in range(6)])
    >>> [a["evidence"]["pattern"] for a in WashTrading().find(state, "TOKEN", time_s=100.0, slot=9)]
    ['self_trade']
    """

    kind = "wash_trading"
    name = DETECTOR
    window_s: float = setting("wash_window_s")
    net_tolerance: float = setting("wash_net_tolerance")
    min_volume_share: float = setting("wash_min_volume_share")
    min_trades: int = setting("wash_min_trades")
    min_turnover: float = setting("wash_min_turnover")
    self_trade_s: float = setting("self_trade_s")
    alert_cooldown_s: float = setting("alert_cooldown_s")

    def find(self, state: TokenState, token: str, *, time_s: float, slot: int) -> list[dict]:
        """The window's wash groups (the state's trades are cut to the window)."""
        window_s = self.window_s
        trades = [tr for tr in state.trades if time_s - tr[0] <= window_s]  # tr.time_s
        state.trades = trades[-MAX_TRADES:]
        if len(trades) < self.min_trades:
            return []  # no group can have min_trades trades
        wallets = list(map(_WALLET, trades))
        distinct = set(wallets)
        group_of = linked_groups(distinct, state.edges)
        groups = list(map(group_of.get, wallets, wallets)) if group_of else wallets
        if len(distinct) * self.min_trades <= len(trades):  # few wallets: most groups judged
            members: dict[str, list[Trade]] = {}  # in the order of each group's first trade
            for group, tr in zip(groups, trades):
                members.setdefault(group, []).append(tr)
        else:
            # Many wallets, most with a trade or two: only groups with min_trades trades are
            # judged, found by counting at C speed, so that the others get no list of their own.
            judged = {group for group, count in Counter(groups).items() if count >= self.min_trades}
            members = {}
            for group, tr in compress(zip(groups, trades), map(judged.__contains__, groups)):
                members.setdefault(group, []).append(tr)
            if not members:
                return []  # most blocks of such a token
        total_quote = sum(map(_QUOTE, trades))
        if total_quote <= 0:
            return []
        anomalies = []
        for group_trades in members.values():
            if len(group_trades) < self.min_trades:
                continue  # most groups, one wallet's few trades: judged no further
            found = self._judge(state, token, group_trades, total_quote, time_s, slot)
            anomalies += [found] if found else []
        return anomalies

    def _judge(self, state: TokenState, token: str, group_trades: list[Trade], total_quote: int,
               time_s: float, slot: int) -> dict | None:
        share = sum(map(_QUOTE, group_trades)) / total_quote
        if share < self.min_volume_share:
            return None  # checked first: it rules out nearly every group, and cheaply
        sides, bases = list(map(_SIDE, group_trades)), list(map(_BASE, group_trades))
        if max(sides) <= 0 or min(sides) >= 0:
            return None  # no buy, or no sell
        volume_base = sum(bases)
        net = sum(map(mul, sides, bases))
        if not volume_base or abs(net) > self.net_tolerance * volume_base:
            return None  # no tokens changed hands (swaps recorded with a base amount of 0)
        position = peak = 0
        for trade in sorted(group_trades, key=lambda tr: tr.time_s):
            position += trade.side * trade.base
            peak = max(peak, abs(position))
        if volume_base < self.min_turnover * peak:
            return None  # one buy-then-sell-out is a round trip, not trading with oneself
        wallets = sorted({tr.wallet for tr in group_trades})
        key = "wash:" + ",".join(wallets)[:200]
        if not alert_once(state.alerted, key, time_s, cooldown_s=self.alert_cooldown_s):
            return None
        buys = [tr for tr in group_trades if tr.side > 0]
        sells = [tr for tr in group_trades if tr.side < 0]
        quick = any(b.wallet == s.wallet and abs(b.time_s - s.time_s) <= self.self_trade_s
                    for b in buys for s in sells)
        pattern = "self_trade" if len(wallets) == 1 and quick else ("ring" if len(wallets) > 1 else "round_trips")
        return make_anomaly(
            token=token, kind=self.kind, detector=self.name, time_s=time_s,
            severity=ramp(share, self.min_volume_share, 0.8), confidence=0.9 if len(wallets) > 1 or quick else 0.7,
            start_s=min(tr.time_s for tr in group_trades), slots=(min(tr.slot for tr in group_trades), slot),
            evidence={"summary": f"{len(wallets)} wallet(s) carried {share:.0%} of the volume with a net "
                                 f"position of {abs(net) / volume_base:.2%} of their volume",
                      "pattern": pattern, "wallets": wallets[:EVIDENCE_ITEMS], "wallet_count": len(wallets),
                      "volume_share": round(share, 6),
                      "net_position": net, "base_volume": volume_base, "trades": len(group_trades),
                      "turnover": round(volume_base / max(peak, 1), 2),
                      "thresholds": {"net_tolerance": self.net_tolerance, "min_volume_share": self.min_volume_share},
                      "signatures": sorted({tr.signature for tr in group_trades})[:EVIDENCE_ITEMS]})
