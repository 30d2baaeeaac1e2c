"""whale-detection's typed state of one token, and its JSON document in Redis.

The document keeps the keys and row lists it always had (`to_state` writes the same JSON);
keys the detectors do not own (the reorder buffer) stay in the document beside them.

>>> import json
>>> state = WhaleState(holders={"A": 300, "B": -20}, pool=[700, 5], launched=True)
>>> state.supply_of(), WhaleState(supply=10**15).supply_of(), WhaleState(holders={"A": 9}).supply_of()
(1000, 1000000000000000, None)
>>> WhaleState(holders={"A": 300}, pool=[700, 5]).supply_of() is None  # met after its launch
True
>>> WhaleState.from_state(json.loads(json.dumps(state.to_state()))) == state
True
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from kades.chain.rows import Trade, Transfer, as_rows

MAX_ROWS = 5000  # trades, transfers, holders and wallet sizes kept per token
MAX_POOLS = 16   # pools whose reserves are kept per token


@dataclass
class WhaleState:
    last_slot: int = -1                                      # the last slot analysed
    trades: list[Trade] = field(default_factory=list)        # the window's swaps
    sends: list[Transfer] = field(default_factory=list)      # the window's token transfers
    sizes: dict[str, list[float]] = field(default_factory=dict)  # wallet -> its last 20 sizes
    holders: dict[str, int] = field(default_factory=dict)    # wallet -> net tokens seen
    pool: list[int] | None = None                            # [base, quote] reserves, latest
    supply: int | None = None                                # known supply (pump.fun mints)
    alerted: dict[str, float] = field(default_factory=dict)  # alert key -> when
    # pool -> its [base, quote reserve, quote mint], latest: a swap is weighed against its own
    # pool's (a 15 SOL buy in a 212 SOL pool was 500 % of the 3 SOL side pool that printed
    # last), in its own quote (documents before the mint hold [base, quote])
    pools: dict[str, list] = field(default_factory=dict)
    launched: bool = False  # its launch seen (a pool created): what it has is in view since

    @classmethod
    def from_state(cls, doc: dict | None) -> "WhaleState":
        if not doc:
            return cls()
        return cls(last_slot=doc["last_slot"], trades=as_rows(Trade, doc["trades"]),
                   sends=as_rows(Transfer, doc["sends"]), sizes=doc["sizes"],
                   holders=doc["holders"], pool=doc["pool"], supply=doc["supply"],
                   alerted=doc["alerted"], pools=doc.get("pools", {}),  # none before
                   launched=doc.get("launched", False))

    def saw_pool(self, pool: str, reserves: list[int], quote_mint: str | None = None) -> None:
        """A pool's reserves after a record of it (the latest of MAX_POOLS pools kept)."""
        self.pool = reserves
        self.pools.pop(pool, None)
        self.pools[pool] = [*reserves, quote_mint] if quote_mint else reserves
        while len(self.pools) > MAX_POOLS:
            del self.pools[next(iter(self.pools))]

    def pool_quote(self, pool: str | None, quote_mint: str) -> int:
        """`pool`'s quote reserve where it is counted in `quote_mint` (0: unknown). A router's
        swap names its first hop's pool and its last hop's mint: 15 SOL out of a TOKEN/USDT
        pool were weighed as 15e9 of its micro-USDT."""
        kept = self.pools.get(pool)
        if not kept or (len(kept) > 2 and kept[2] != quote_mint):
            return 0
        return kept[1]

    def to_state(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def supply_of(self) -> int | None:
        """Known supply, else, for a token seen since its pool was created, what we can see:
        the pools' tokens plus every positive holding (a new memecoin's supply goes to its
        pool at launch). None otherwise: met mid-life, a token's pools hold a sliver of its
        supply (3M of a billion), and an exchange's withdrawals of 0.018 % of it read as
        "5.7 % of the supply", a distribution; none without a pool either (its holdings seen
        were the "supply", and a $2,500 swap 4.9e9 of it)."""
        if self.supply:
            return self.supply
        if not self.launched:
            return None
        # every pool's tokens, not the last one's to print: a side pool with 1 % of the main
        # pool's made the supply 100 times smaller whenever an arbitrage touched it last
        pooled = sum(kept[0] for kept in self.pools.values()) if self.pools else \
            (self.pool or [0])[0]
        if pooled <= 0:
            return None
        return pooled + sum(b for b in self.holders.values() if b > 0)
