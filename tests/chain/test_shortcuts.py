"""The shortcuts of wash trading, cyclic transfers and the store's holders (docs/performance.md,
"Chain analysis and growth") give exactly what the plain passes they replaced gave: the same
anomalies and the same state after. The plain passes are kept here as the reference and run
on random windows: few wallets and many, times in and out of order, transfers joining wallets.
"""
from __future__ import annotations

import copy
import json
import random

import pytest

from kades.chain import store
from kades.chain.anomaly import EVIDENCE_ITEMS, make_anomaly, ramp
from kades.chain.cycles import MAX_EDGES, CyclicTransfers, _index, _path
from kades.chain.detector import alert_once
from kades.chain.rows import Trade, Transfer
from kades.chain.state import TokenState
from kades.chain.wash import MAX_TRADES, WashTrading, linked_groups


class PlainWash(WashTrading):
    """WashTrading.find as it was: every trade grouped, every group of min_trades judged."""

    def find(self, state, token, *, time_s, slot):
        trades = [tr for tr in state.trades if time_s - tr.time_s <= self.window_s]
        state.trades = trades[-MAX_TRADES:]
        total_quote = sum(tr.quote for tr in trades)
        if not trades or total_quote <= 0:
            return []
        group_of = linked_groups({tr.wallet for tr in trades}, state.edges)
        members = {}
        for tr in trades:
            members.setdefault(group_of.get(tr.wallet, tr.wallet), []).append(tr)
        anomalies = []
        for group_trades in members.values():
            if len(group_trades) >= self.min_trades:
                found = self._judge(state, token, group_trades, total_quote, time_s, slot)
                anomalies += [found] if found else []
        return anomalies

    def _judge(self, state, token, group_trades, total_quote, time_s, slot):
        share = sum(tr.quote for tr in group_trades) / total_quote
        if share < self.min_volume_share:
            return None
        buys = [tr for tr in group_trades if tr.side > 0]
        sells = [tr for tr in group_trades if tr.side < 0]
        if not buys or not sells:
            return None
        volume_base = sum(tr.base for tr in group_trades)
        net = sum(tr.side * tr.base for tr in group_trades)
        if not volume_base or abs(net) > self.net_tolerance * volume_base:
            return None
        position = peak = 0
        for trade in sorted(group_trades, key=lambda tr: tr.time_s):
            position += trade.side * trade.base
            peak = max(peak, abs(position))
        if volume_base < self.min_turnover * peak:
            return None
        wallets = sorted({tr.wallet for tr in group_trades})
        if not alert_once(state.alerted, "wash:" + ",".join(wallets)[:200], time_s,
                          cooldown_s=self.alert_cooldown_s):
            return None
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


class PlainCycles(CyclicTransfers):
    """CyclicTransfers.find as it was: the window indexed on every block with a transfer."""

    def find(self, state, token, new_edges, *, time_s, slot):
        edges = [e for e in state.edges if e.time_s >= time_s - self.window_s][-MAX_EDGES:]
        outgoing, incoming = {}, {}
        for edge in edges:
            _index(outgoing, edge.source, edge)
            _index(incoming, edge.destination, edge)
        found = []
        for edge in new_edges:
            path = _path(outgoing, incoming, edge.destination, edge.source, edge.time_s, self.max_length - 1)
            if path:
                cycle = path + [edge]
                wallets = [cycle[0].source] + [e.destination for e in cycle]
                key = "cycle:" + ",".join(sorted(set(wallets)))[:200]
                if alert_once(state.alerted, key, time_s, cooldown_s=self.alert_cooldown_s):
                    found.append([[e.signature for e in cycle], cycle[0].source])
            _index(outgoing, edge.source, edge)
            _index(incoming, edge.destination, edge)
            edges.append(edge)
        state.edges = edges[-MAX_EDGES:]
        return found


def window(rng: random.Random, wallets: int, trades: int, edges: int, *, ordered: bool) -> TokenState:
    """A token's window: trades and transfers among `wallets` wallets, round trips often."""
    names = [f"W{k}" for k in range(wallets)]
    times = sorted(rng.uniform(0, 5000) for _ in range(trades))
    if not ordered:
        times = [t + rng.choice((0, 0, -100, -3000)) for t in times]
    return TokenState(
        trades=[Trade(t, rng.choice(names), rng.choice((1, -1, k % 2 * 2 - 1)), rng.choice((10**6, rng.randrange(10**7))),
                      rng.randrange(10**6), f"s{k}", k) for k, t in enumerate(times)],
        edges=[Transfer(rng.uniform(0, 5000), rng.choice(names), rng.choice(names), 5, f"t{k}", k)
               for k in range(edges)],
        alerted={"wash:W0": 1000.0, "cycle:W1": 0.0})


WASH = {"min_volume_share": 0.05, "alert_cooldown_s": 900.0}  # more groups judged, more alerts


@pytest.mark.parametrize("seed", range(40))
def test_wash_trading_finds_what_the_plain_pass_found(seed):
    rng = random.Random(seed)
    for wallets, trades, edges in ((3, 40, 3), (8, 200, 10), (300, 400, 60), (2, 3, 0), (50, 60, 80)):
        state = window(rng, wallets, trades, edges, ordered=seed % 2 == 0)
        for time_s in (4000.0, 5000.0, 7000.0, 9000.0):
            plain = copy.deepcopy(state)
            expected = PlainWash(**WASH).find(plain, "T", time_s=time_s, slot=9)
            assert WashTrading(**WASH).find(state, "T", time_s=time_s, slot=9) == expected
            assert state == plain and list(state.alerted.items()) == list(plain.alerted.items())


@pytest.mark.parametrize("seed", range(40))
def test_cyclic_transfers_find_what_the_plain_pass_found(seed):
    rng = random.Random(seed)
    for wallets, edges in ((4, 20), (30, 100), (400, 300)):
        state = window(rng, wallets, 0, edges, ordered=True)
        for time_s in (3000.0, 5000.0, 6000.0):
            new = [Transfer(time_s, f"W{rng.randrange(wallets)}", f"W{rng.randrange(wallets)}", 5, f"n{k}", 9)
                   for k in range(rng.choice((1, 3, 8)))]
            plain = copy.deepcopy(state)
            expected = PlainCycles().find(plain, "T", new, time_s=time_s, slot=9)
            found = CyclicTransfers().find(state, "T", new, time_s=time_s, slot=9)
            assert [a["evidence"]["signatures"] for a in found] == [e[0] for e in expected]
            assert state == plain and list(state.alerted.items()) == list(plain.alerted.items())


def plain_changes(before: dict, amounts: dict) -> dict | None:
    """The holders' changes as the store found them before: a set difference of the items."""
    try:
        return dict(amounts.items() - before.items())
    except TypeError:
        return None


@pytest.mark.parametrize("seed", range(20))
def test_the_holders_chunk_holds_what_the_set_difference_found(seed):
    rng = random.Random(seed)
    before = {f"W{k}": rng.randrange(-50, 50) for k in range(rng.randrange(1, 300))}
    old = store.EMPTY.replaced(store.HOLDERS, dict(before), store._text(before)[1:-1], len(before))[0]
    amounts = dict(before)
    for wallet in rng.sample(list(before), min(len(before), rng.randrange(0, 20))):
        amounts[wallet] = rng.choice((amounts[wallet], amounts[wallet] + 1, float(amounts[wallet]), True))
    amounts.update((f"N{k}", rng.randrange(9)) for k in range(rng.randrange(0, 5)))
    changes = plain_changes(before, amounts)
    log, deleted, written = store._keyed_delta(store.HOLDERS, old, amounts)
    if not changes:
        assert (log, deleted, written) == (old, [], [])
        return
    chunk = json.loads("{" + written[1] + "}")
    assert chunk == changes  # the same entries (their order inside the chunk does not matter) ...
    assert [w for w in chunk if w not in before] == [w for w in amounts if w not in before]  # ... but new wallets'
    assert log.value == amounts and deleted == []


def test_holders_not_scalars_are_no_part_as_before():
    old = store.EMPTY.replaced(store.HOLDERS, {"A": 1}, '"A":1', 1)[0]
    assert plain_changes({"A": 1}, {"A": 1, "B": [2]}) is None
    assert store._keyed_delta(store.HOLDERS, old, {"A": 1, "B": [2]}) is None
