"""chain-analysis's typed state of one token, and its JSON document in Redis.

The document keeps the keys and row lists it always had (`to_state` writes the same JSON), so
states written before read back unchanged; keys the detectors do not own (the reorder buffer)
stay in the document beside them.

>>> import json
>>> state = TokenState.from_state(json.loads(json.dumps(TokenState().to_state())))
>>> state == TokenState(), list(state.to_state())[:3]
(True, ['last_slot', 'trades', 'edges'])
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from kades.chain.rows import EarlyBuy, Trade, Transfer, as_rows

PUMP_FUN_SUPPLY = 10 ** 15  # 1 billion tokens, 6 decimals: every pump.fun mint


@dataclass
class TokenState:
    last_slot: int = -1                                       # the last slot analysed
    trades: list[Trade] = field(default_factory=list)         # the window's swaps
    edges: list[Transfer] = field(default_factory=list)       # the window's token transfers
    holders: dict[str, int] = field(default_factory=dict)     # wallet -> net tokens seen
    early_buys: list[EarlyBuy] = field(default_factory=list)  # buys in the sniping window
    first_trade: dict | None = None                           # {time_s, slot}
    launch: dict | None = None                                # creator, authorities, supply ...
    alerted: dict[str, float] = field(default_factory=dict)   # alert key -> when (or risk said)

    @classmethod
    def from_state(cls, doc: dict | None) -> "TokenState":
        if not doc:
            return cls()
        return cls(last_slot=doc["last_slot"], trades=as_rows(Trade, doc["trades"]),
                   edges=as_rows(Transfer, doc["edges"]), holders=doc["holders"],
                   early_buys=as_rows(EarlyBuy, doc["early_buys"]),
                   first_trade=doc["first_trade"], launch=doc["launch"], alerted=doc["alerted"])

    def to_state(self) -> dict:
        return {name: getattr(self, name) for name in _FIELDS}

    def record_launch(self, record: dict, time_s: float, slot: int) -> None:
        """A launch record of the token: its creation, or a change of one of its authorities."""
        if record["kind"] in ("create", "initialize_mint") and self.launch is None:
            supply = PUMP_FUN_SUPPLY if record.get("program") == "pump_fun" else None
            self.launch = {"creator": record.get("creator"), "mint_authority": record.get("mint_authority"),
                           "freeze_authority": record.get("freeze_authority"), "time_s": time_s,
                           "slot": slot, "signature": record["signature"], "supply": supply}
        elif (record["kind"] == "set_authority" and self.launch is not None
              and record.get("field") in ("mint_authority", "freeze_authority")):
            self.launch[record["field"]] = record.get("new_authority")

    @property
    def creator(self) -> str | None:
        return (self.launch or {}).get("creator")


_FIELDS = tuple(f.name for f in fields(TokenState))
