"""The rows a token's state keeps of its window: trades, transfers and early buys.

NamedTuples, so that code reads `trade.wallet` rather than `trade[1]`, while the documents in
Redis stay what they were: JSON writes a NamedTuple as the plain list, and the typed states
(kades.chain.state, kades.whales.state) make the lists read back rows again.

>>> import json
>>> trade = Trade(time_s=5.0, wallet="W", side=1, base=700, quote=10**9, signature="s", slot=3)
>>> json.dumps(trade)
'[5.0, "W", 1, 700, 1000000000, "s", 3]'
>>> Trade(*json.loads(json.dumps(trade))) == trade
True
"""
from __future__ import annotations

from typing import NamedTuple


class Trade(NamedTuple):
    """A swap of the token, from the trader's side."""

    time_s: float
    wallet: str      # the trader
    side: int        # +1 buy, -1 sell
    base: int        # token amount, raw units
    quote: int       # quote amount in lamports; a quote not told in SOL in its raw units
    signature: str
    slot: int


class Transfer(NamedTuple):
    """A transfer of the token between two wallets (an edge of the transfer graph)."""

    time_s: float
    source: str
    destination: str
    amount: int
    signature: str
    slot: int


class EarlyBuy(NamedTuple):
    """A buy within the sniping window after the token's first trade."""

    time_s: float
    wallet: str
    base: int
    quote: int
    signature: str
    slot: int


def as_rows(kind: type, rows: list) -> list:
    """A document's rows as `kind` rows: JSON gives lists; the token stores give the rows
    themselves, kept (kades.chain.codec and kades.chain.store know them by identity and
    reuse their encoded text)."""
    if set(map(type, rows)) <= {kind}:  # all of them `kind` rows (the check at C speed)
        return list(rows)
    return list(map(kind._make, rows))
