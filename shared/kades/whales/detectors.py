"""Whale detectors over one token's swaps and transfers (pure; state: kades.whales.state).

- WhaleMovement: a swap large in absolute terms (quote or dollar value) and relative to the
  token's supply, its pool liquidity or the wallet's own usual size;
- Accumulation: a wallet, or wallets sharing a funder, steadily net-buying a real share of
  the supply (stealth: many small buys; aggressive: few large ones);
- Distribution: a holder fanning tokens out to many wallets, or selling down a large position;
- WalletSplitting: one funder's fresh wallets all trading the same token.

Each is a frozen dataclass of keyword-only parameters (kades.chain.detector); the defaults are
ChainThresholds', and `from_thresholds` takes the settings' values.

>>> from kades.chain.rows import Trade
>>> state = WhaleState(supply=10**6, trades=[Trade(float(k), "W", 1, 10**4, 10**9, f"s{k}", k)
...                                          for k in range(8)])
>>> [(a["anomaly_type"], a["evidence"]["style"]) for a in Accumulation().find(
...     state, "TOKEN", funders={}, time_s=8.0, slot=8)]
[('accumulation', 'stealth')]
"""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from itertools import compress, repeat
from operator import attrgetter, gt
from typing import Mapping

from kades.chain.anomaly import EVIDENCE_ITEMS, make_anomaly, ramp
from kades.chain.detector import ChainDetector, alert_once, setting
from kades.chain.rows import Trade, Transfer
from kades.solana.programs import LAMPORTS, STABLECOINS, WSOL
from kades.whales.state import WhaleState

DETECTOR = "whales"
_WALLET, _SIDE = attrgetter("wallet"), attrgetter("side")
SIZES_KEPT = 20  # a wallet's last swap sizes, for its median
# A wallet's usual size is its median once it has made this many swaps: a test buy of 0.5 SOL
# and then a buy of 12 ($2,400, 0.24 % of a 5,000-SOL pool) was a whale movement, 24 times
# "its usual size" of one swap, on any calm token.
USUAL_AFTER = 5


def usd_value(swap: dict, quote_ui: float, sol_usd: float | None) -> float | None:
    if swap["quote_mint"] in STABLECOINS:
        return quote_ui
    return quote_ui * sol_usd if sol_usd and swap["quote_mint"] == WSOL else None


@dataclass(frozen=True, kw_only=True)
class WhaleMovement(ChainDetector):
    """A swap of at least `min_quote` quote units (`min_usd` dollars when priced) that is also
    `supply_share` of a known supply, `liquidity_share` of its pool's quote reserve, or
    `history_multiple` times the wallet's median size. Judged against its pool before it;
    every swap teaches the wallet's usual size.

    >>> state = WhaleState(pools={"P": [8 * 10**14, 60 * 10**9]}, supply=10**15)
    >>> swap = {"signature": "s", "trader": "W", "side": "buy", "quote_amount": 12 * 10**9,
    ...         "quote_mint": WSOL, "base_amount": 10**13, "decimals_in": 9, "decimals_out": 6,
    ...         "pool": "P"}
    >>> sorted(WhaleMovement().find(state, "TOKEN", swap, time_s=0.0, slot=1)[0]["evidence"]["reasons"])
    ['liquidity_share', 'supply_share']
    """

    kind = "whale_movement"
    name = DETECTOR
    min_quote: float = setting("whale_min_quote")
    min_usd: float = setting("whale_min_usd")
    supply_share: float = setting("whale_supply_share")
    liquidity_share: float = setting("whale_liquidity_share")
    history_multiple: float = setting("whale_history_multiple")

    def find(self, state: WhaleState, token: str, swap: dict, *, time_s: float, slot: int,
             sol_usd: float | None = None) -> list[dict]:
        decimals = swap["decimals_in"] if swap["side"] == "buy" else swap["decimals_out"]
        quote_ui = swap["quote_amount"] / 10 ** decimals
        usd = usd_value(swap, quote_ui, sol_usd)
        # usual sizes per quote mint: 15 SOL and 2,400 USDC are the same trade, not 160 times it
        sizes = state.sizes.setdefault(f"{swap['trader']} {swap['quote_mint']}", [])
        usual = statistics.median(sizes) if len(sizes) >= USUAL_AFTER else None
        sizes.append(quote_ui)
        del sizes[:-SIZES_KEPT]
        if usd is None and swap["quote_mint"] != WSOL:
            return []  # a quote it cannot value (JUP, an LST, BONK): 10 of it is no size
        if (usd < self.min_usd) if usd is not None else (quote_ui < self.min_quote):
            return []
        pool_quote = state.pool_quote(swap.get("pool"), swap["quote_mint"])
        # against the supply only where it is known: a pool's tokens are not the supply (a
        # $2,100 JUP buy was 2.8 % of a Whirlpool's JUP and 0.00004 % of JUP)
        supply_share = swap["base_amount"] / state.supply if state.supply else 0.0
        liquidity_share = swap["quote_amount"] / pool_quote if pool_quote else 0.0
        history = quote_ui / usual if usual else None
        reasons = {k: v for k, v in {
            "supply_share": supply_share if supply_share >= self.supply_share else None,
            "liquidity_share": liquidity_share if liquidity_share >= self.liquidity_share else None,
            "times_usual_size": history if history and history >= self.history_multiple else None}.items() if v}
        if not reasons:
            return []
        return [make_anomaly(
            token=token, kind=self.kind, detector=self.name, time_s=time_s,
            severity=ramp(max(liquidity_share, supply_share * 5), 0.1, 0.5), confidence=0.9,
            slots=(slot, slot),
            evidence={"summary": f"{swap['trader']} {swap['side']}s {quote_ui:.2f} in quote",
                      "wallet": swap["trader"], "side": swap["side"], "quote_value": quote_ui,
                      "usd_value": round(usd, 2) if usd is not None else None,
                      "base_amount": swap["base_amount"], "reasons": {k: round(v, 6) for k, v in reasons.items()},
                      "pool_quote_reserve": pool_quote, "signature": swap["signature"]})]


@dataclass(frozen=True, kw_only=True)
class Accumulation(ChainDetector):
    """A wallet, or a funder's wallets, with `buys` buys or more in the window, sells at most a
    tenth of its buys, and a net gain (less what it passed on by transfer) of `supply_share`
    of the supply. `stealth` when its buys average under `stealth_quote` SOL (a trade's quote
    is in lamports: kades.market.chain.quote_lamports)."""

    kind = "accumulation"
    name = DETECTOR
    buys: int = setting("accumulation_buys")
    supply_share: float = setting("accumulation_supply_share")
    stealth_quote: float = setting("whale_min_quote", scale=0.5)
    alert_cooldown_s: float = setting("alert_cooldown_s")

    def find(self, state: WhaleState, token: str, *, funders: Mapping[str, str], time_s: float,
             slot: int) -> list[dict]:
        supply = state.supply_of()
        if supply is None:  # nothing to weigh a net gain against
            return []
        # A wallet's cluster is its funder as of its first trade of the window (a funding
        # mid-window split its buys over two clusters), or itself. Only the clusters with
        # `buys` buys get a list of their trades; the window's trades and wallets are gone
        # over at C speed, and a funder is looked up only for a wallet that was funded (a
        # token's window holds up to 5,000 trades, most of them by wallets nobody funded).
        trades = state.trades
        wallets = list(map(_WALLET, trades))
        firsts = dict(zip(reversed(wallets), reversed(trades)))  # wallet -> its first trade
        funded = _maybe_funded(funders)
        cluster_of = {wallet: _funder(funders, firsts[wallet]) or wallet
                      for wallet in filter(funded.__contains__, firsts)}
        cluster_seq = list(map(cluster_of.get, wallets, wallets)) if cluster_of else wallets
        buys_of = Counter(compress(cluster_seq, map(gt, map(_SIDE, trades), repeat(0))))
        judged = {cluster for cluster, buys in buys_of.items() if buys >= self.buys}
        clusters: dict[str, list[Trade]] = {  # in the order of their first trade
            cluster: [] for cluster in filter(judged.__contains__, dict.fromkeys(cluster_seq))}
        for cluster, trade in compress(zip(cluster_seq, trades), map(judged.__contains__, cluster_seq)):
            clusters[cluster].append(trade)
        found = []
        flows = _transfer_flows(state.sends)
        for cluster, trades in clusters.items():
            buys = [tr for tr in trades if tr.side > 0]
            if len(buys) < self.buys:  # most clusters, judged before their sums (the same outcome)
                continue
            bought, sold = sum(tr.base for tr in buys), sum(tr.base for tr in trades if tr.side < 0)
            passed_on = sum(flows.get(w, 0) for w in {tr.wallet for tr in trades})  # sent minus received
            net_share = (bought - sold - max(0, passed_on)) / supply
            if len(buys) < self.buys or net_share < self.supply_share or sold > 0.1 * bought:
                continue
            wallets = sorted({tr.wallet for tr in trades})
            # Once per wallet, not per cluster name: the funding that named a cluster leaves
            # the funding log after its TTL (or past its cap) while the buys stay in the
            # window, and the same buys, renamed after a wallet, were alerted again.
            keys = [f"acc:{wallet}" for wallet in wallets]
            if any(time_s - state.alerted.get(key, -1e18) < self.alert_cooldown_s for key in keys):
                continue
            for key in keys:
                alert_once(state.alerted, key, time_s, cooldown_s=self.alert_cooldown_s)
            mean_quote = sum(tr.quote for tr in buys) / len(buys) / LAMPORTS  # in SOL
            style = "stealth" if mean_quote < self.stealth_quote else "aggressive"
            found.append(make_anomaly(
                token=token, kind=self.kind, detector=self.name, time_s=time_s,
                severity=ramp(net_share, self.supply_share, 0.1), confidence=0.8 if len(wallets) > 1 else 0.7,
                start_s=min(tr.time_s for tr in trades), slots=(min(tr.slot for tr in trades), slot),
                evidence={"summary": f"{len(wallets)} wallet(s) net-bought {net_share:.1%} of the supply in {len(buys)} buys ({style})",
                          "style": style, "cluster": cluster, "wallets": wallets[:EVIDENCE_ITEMS],
                          "wallet_count": len(wallets), "buys": len(buys),
                          "net_supply_share": round(net_share, 6), "signatures": sorted({tr.signature for tr in buys})[:EVIDENCE_ITEMS]}))
        return found


def _funder(funders: Mapping[str, str], trade: Trade) -> str | None:
    """Who funded the trade's wallet before the trade (kades.chain.funding.FundersAsOf;
    a plain mapping, as tests give, as it is)."""
    as_of = getattr(funders, "as_of", None)
    return as_of(trade.wallet, trade.slot, trade.time_s) if as_of else funders.get(trade.wallet)


def _maybe_funded(funders: Mapping[str, str]):
    """The wallets that may have a funder, for a check at C speed before the lookup: the
    wallets FundersAsOf holds fundings of (whichever slot), or a plain mapping's keys."""
    return getattr(funders, "funded", funders)


def _transfer_flows(sends: list[Transfer]) -> dict[str, int]:
    """Per wallet: tokens sent minus tokens received by transfer in the window."""
    flows: dict[str, int] = {}
    for send in sends:
        flows[send.source] = flows.get(send.source, 0) + send.amount
        flows[send.destination] = flows.get(send.destination, 0) - send.amount
    return flows


@dataclass(frozen=True, kw_only=True)
class Distribution(ChainDetector):
    """A wallet sending tokens to `recipients` wallets or more, or selling `supply_share` of the
    supply in 3+ sells beyond what it bought or received in the window."""

    kind = "distribution"
    name = DETECTOR
    recipients: int = setting("distribution_recipients")
    supply_share: float = setting("distribution_supply_share")
    alert_cooldown_s: float = setting("alert_cooldown_s")

    def find(self, state: WhaleState, token: str, *, time_s: float, slot: int) -> list[dict]:
        supply, found = state.supply_of(), []
        if supply is None:  # nothing to weigh what moved against
            return found
        fan_out: dict[str, list[Transfer]] = {}
        received: dict[str, int] = {}
        for send in state.sends:
            fan_out.setdefault(send.source, []).append(send)
            received[send.destination] = received.get(send.destination, 0) + send.amount
        sells: dict[str, list[Trade]] = {}
        bought: dict[str, int] = {}
        for trade in state.trades:
            if trade.side < 0:
                sells.setdefault(trade.wallet, []).append(trade)
            else:
                bought[trade.wallet] = bought.get(trade.wallet, 0) + trade.base
        for wallet in sorted(set(fan_out) | set(sells)):
            sends, sold = fan_out.get(wallet, []), sells.get(wallet, [])
            if len(sends) < self.recipients and len(sold) < 3:  # can pass neither test below
                continue
            recipients = {s.destination for s in sends}
            # Selling down a position held before: what came in during the window does not count
            # (a wash wallet selling what a partner just handed it is not distributing).
            inflow = bought.get(wallet, 0) + received.get(wallet, 0)
            sold_share = (sum(s.base for s in sold) - inflow) / supply
            sent = sum(s.amount for s in sends)
            moved = sent + sum(s.base for s in sold)
            # a fan-out sends `supply_share` or more itself: five airdrops of 0.0003 % each
            # were one, and so were five dust transfers beside a sale whale_movement reports
            fanned = len(recipients) >= self.recipients and sent >= self.supply_share * supply
            if not fanned and not (len(sold) >= 3 and sold_share >= self.supply_share):
                continue
            if not alert_once(state.alerted, f"dist:{wallet}", time_s, cooldown_s=self.alert_cooldown_s):
                continue
            rows = sends + sold
            found.append(make_anomaly(
                token=token, kind=self.kind, detector=self.name, time_s=time_s,
                severity=ramp(moved / supply, self.supply_share, 0.2), confidence=0.8,
                start_s=min(r.time_s for r in rows), slots=(min(r.slot for r in rows), slot),
                evidence={"summary": f"{wallet} sent tokens to {len(recipients)} wallets and sold {sold_share:.1%} of the supply",
                          "wallet": wallet, "recipients": sorted(recipients)[:EVIDENCE_ITEMS],
                          "recipient_count": len(recipients), "sold_supply_share": round(sold_share, 6),
                          "moved_supply_share": round(moved / supply, 6),
                          "signatures": sorted({r.signature for r in rows})[:EVIDENCE_ITEMS]}))
        return found


@dataclass(frozen=True, kw_only=True)
class WalletSplitting(ChainDetector):
    """`wallets` wallets or more, seeded by one funder (a SOL fan-out), trading the token."""

    kind = "wallet_splitting"
    name = DETECTOR
    wallets: int = setting("split_wallets")
    alert_cooldown_s: float = setting("alert_cooldown_s")

    def find(self, state: WhaleState, token: str, *, funders: Mapping[str, str], time_s: float,
             slot: int) -> list[dict]:
        seeded: dict[str, set] = {}
        funded = _maybe_funded(funders)  # (most traders were funded by nobody: not looked up)
        for trade in compress(state.trades, map(funded.__contains__, map(_WALLET, state.trades))):
            funder = _funder(funders, trade)  # one lookup, not `in` then []
            if funder is not None:
                seeded.setdefault(funder, set()).add(trade.wallet)
        found = []
        for funder, wallets in sorted(seeded.items()):
            if len(wallets) < self.wallets or not alert_once(state.alerted, f"split:{funder}", time_s,
                                                             cooldown_s=self.alert_cooldown_s):
                continue
            trades = [tr for tr in state.trades if tr.wallet in wallets]
            found.append(make_anomaly(
                token=token, kind=self.kind, detector=self.name, time_s=time_s,
                severity=ramp(len(wallets), self.wallets, 3 * self.wallets), confidence=0.85,
                start_s=min(tr.time_s for tr in trades), slots=(min(tr.slot for tr in trades), slot),
                evidence={"summary": f"{funder} funded {len(wallets)} wallets that all trade this token",
                          "funder": funder, "wallets": sorted(wallets)[:EVIDENCE_ITEMS], "wallet_count": len(wallets),
                          "signatures": sorted({tr.signature for tr in trades})[:EVIDENCE_ITEMS]}))
        return found

