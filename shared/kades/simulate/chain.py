"""Labelled chain scenarios: seeded chain-block events in which every manipulation is known.

Each scenario trades its own token on a constant-product pool (SOL quote) and emits the same
records the Solana normaliser produces. `simulate_chain(seed=...)` merges them into one
chain-block event per 400 ms slot; `.labels` says which token carries which kind, from when.
Organic tokens carry no label: any alert on them is a false alarm.
"""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kades.events.catalogue import CHAIN_BLOCK, MAX_EVENT_BYTES, SOLANA_GENESIS, new_event
from kades.events.chunking import event_bytes
from kades.events.envelope import CloudEvent
from kades.solana.base58 import ALPHABET
from kades.solana.parts import SlotLinks, split_block
from kades.solana.programs import LAMPORTS, WSOL

SLOT_S = 0.4
START_S = datetime(2024, 6, 1, tzinfo=timezone.utc).timestamp()
# Slots count 400 ms steps from Solana's genesis, so a later run has later slots.
GENESIS_S = SOLANA_GENESIS.timestamp()
SOURCE = "/kades/simulator/chain"
TOKEN_UNIT = 10 ** 6
SUPPLY = 10 ** 15  # pump.fun-like: 1e9 tokens, 6 decimals
SCENARIOS = ("organic", "organic", "organic", "wash_ring", "cycle", "soft_rug", "dump",
             "sniper_launch", "risky_launch", "split_accumulation", "distribution", "whale_swap")
# label kind of each scenario (several for some); organic: none
SCENARIO_KINDS = {"wash_ring": ["wash_trading"], "cycle": ["cyclic_transfer"], "soft_rug": ["liquidity_removal"],
                  "dump": ["rug_price_dump"], "sniper_launch": ["sniper_bundle"], "risky_launch": ["risky_launch"],
                  "split_accumulation": ["wallet_splitting", "accumulation"], "distribution": ["distribution"],
                  "whale_swap": ["whale_movement"]}

# Kinds that are true of a scenario as a side effect (a creator dumping is also a whale
# selling): alerts of these kinds are not false alarms, but they are not required either.
ALSO_TRUE = {"dump": ["whale_movement", "distribution"], "soft_rug": [],
             "sniper_launch": ["wallet_splitting", "accumulation", "whale_movement"],
             "split_accumulation": ["whale_movement"], "distribution": ["whale_movement"],
             "whale_swap": ["accumulation"], "wash_ring": ["whale_movement"]}


@dataclass
class ChainSimulation:
    seed: int
    events: list[CloudEvent]
    labels: list[dict]  # {token, kind, scenario, start_s, required}
    tokens: dict[str, str] = field(default_factory=dict)  # token -> scenario


class Market:
    """One token's pool and the records its actions produce (time-stamped)."""

    def __init__(self, rng: random.Random, token: str, pool: str, quote_sol: float, base_share: float):
        self.rng, self.token, self.pool = rng, token, pool
        self.quote, self.base = int(quote_sol * LAMPORTS), int(SUPPLY * base_share)
        self.records: list[tuple[float, str, dict]] = []

    def sig(self) -> str:
        return "".join(self.rng.choice(ALPHABET) for _ in range(88))

    def _state(self, at: float, signature: str) -> None:
        self.records.append((at, "pool_states", {
            "signature": signature, "program": "sim_amm", "pool": self.pool, "base_mint": self.token,
            "quote_mint": WSOL, "base_reserve": self.base, "quote_reserve": self.quote, "base_decimals": 6,
            "quote_decimals": 9, "virtual": False,
            "price": (self.quote / 1e9) / (self.base / 1e6) if self.base else None}))

    def swap(self, at: float, trader: str, side: str, *, sol: float = 0.0, tokens: int = 0) -> int:
        """Buy with `sol` SOL or sell `tokens`; the token amount bought or sold."""
        signature = self.sig()
        if side == "buy":
            quote_in = int(sol * LAMPORTS)
            base_out = self.base - (self.base * self.quote) // (self.quote + quote_in)
            self.quote, self.base = self.quote + quote_in, self.base - base_out
            base_amount, quote_amount = base_out, quote_in
        else:
            quote_out = self.quote - (self.base * self.quote) // (self.base + tokens)
            self.quote, self.base = self.quote - quote_out, self.base + tokens
            base_amount, quote_amount = tokens, quote_out
        buying = side == "buy"
        self.records.append((at, "swaps", {
            "signature": signature, "trader": trader, "program": "sim_amm", "pool": self.pool,
            "mint_in": WSOL if buying else self.token, "mint_out": self.token if buying else WSOL,
            "amount_in": quote_amount if buying else base_amount, "amount_out": base_amount if buying else quote_amount,
            "decimals_in": 9 if buying else 6, "decimals_out": 6 if buying else 9, "base_mint": self.token,
            "quote_mint": WSOL, "side": side, "base_amount": base_amount, "quote_amount": quote_amount,
            "price": (quote_amount / 1e9) / (base_amount / 1e6) if base_amount else None}))
        self._state(at, signature)
        return base_amount

    def transfer(self, at: float, source: str, destination: str, amount: int, *, native: bool = False) -> None:
        self.records.append((at, "transfers", {
            "signature": self.sig(), "mint": WSOL if native else self.token, "source": source,
            "destination": destination, "amount": amount, "decimals": 9 if native else 6, "native": native}))

    def liquidity(self, at: float, provider: str, action: str, share: float = 1.0) -> None:
        before = (self.base, self.quote)
        if action == "remove":
            self.base, self.quote = int(self.base * (1 - share)), int(self.quote * (1 - share))
        signature = self.sig()
        self.records.append((at, "liquidity", {
            "signature": signature, "program": "sim_amm", "pool": self.pool, "action": action,
            "provider": provider, "base_mint": self.token, "quote_mint": WSOL, "base_decimals": 6,
            "quote_decimals": 9, "base_delta": self.base - (0 if action == "create" else before[0]),
            "quote_delta": self.quote - (0 if action == "create" else before[1]),
            "base_reserve_before": 0 if action == "create" else before[0],
            "quote_reserve_before": 0 if action == "create" else before[1],
            "base_reserve_after": self.base, "quote_reserve_after": self.quote, "lp_mint": None, "lp_amount": None}))
        self._state(at, signature)

    def launch(self, at: float, creator: str, *, mint_authority: str | None = None,
               freeze_authority: str | None = None) -> None:
        self.records.append((at, "launches", {
            "signature": self.sig(), "kind": "create", "program": "pump_fun", "mint": self.token,
            "creator": creator, "pool": self.pool, "decimals": 6, "mint_authority": mint_authority,
            "freeze_authority": freeze_authority}))


def wallet(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(44))


def organic(m: Market, rng: random.Random, start: float, end: float, traders: int = 20) -> None:
    """Independent traders: buys of 0.05-1.5 SOL, sells of part of what they hold, and the odd
    gift to a fresh wallet (a tree: tokens never come back)."""
    holdings = {wallet(rng): 0 for _ in range(traders)}
    at = start
    while True:
        at += rng.expovariate(1 / 20.0)
        if at >= end:
            return
        trader = rng.choice(list(holdings))
        if holdings[trader] > 0 and rng.random() < 0.4:
            amount = int(holdings[trader] * rng.uniform(0.2, 1.0))
            m.swap(at, trader, "sell", tokens=amount)
            holdings[trader] -= amount
        elif holdings[trader] > 0 and rng.random() < 0.05:
            amount = holdings[trader] // 3
            m.transfer(at, trader, wallet(rng), amount)
            holdings[trader] -= amount
        else:
            holdings[trader] += m.swap(at, trader, "buy", sol=rng.uniform(0.05, 1.5))


def scenario(name: str, m: Market, rng: random.Random, t0: float, start: float, end: float) -> None:
    creator = wallet(rng)
    if name != "sniper_launch" and name != "risky_launch":
        m.liquidity(t0, creator, "create")
        organic(m, rng, t0 + 1, end)
    if name == "wash_ring":
        a, b, c = wallet(rng), wallet(rng), wallet(rng)
        at = start
        for _ in range(12):
            got = m.swap(at, a, "buy", sol=3.0)
            m.swap(at + rng.uniform(2, 10), a, "sell", tokens=got)       # self-trade
            got = m.swap(at + 15, b, "buy", sol=3.0)
            m.transfer(at + 18, b, c, got)                                # hand over ...
            m.swap(at + 21, c, "sell", tokens=got)                        # ... and sell back
            at += rng.uniform(25, 40)
    elif name == "cycle":
        ring = [wallet(rng) for _ in range(rng.randint(3, 5))]
        amount = m.swap(start - 30, ring[0], "buy", sol=2.0)
        for hop, source in enumerate(ring):
            m.transfer(start + 20 * hop, source, ring[(hop + 1) % len(ring)], amount)
    elif name == "soft_rug":
        m.liquidity(start, creator, "remove", share=rng.uniform(0.8, 0.98))
    elif name == "dump":
        sells = rng.randint(1, 3)
        for k in range(sells):
            m.swap(start + 8 * k, creator, "sell", tokens=int(SUPPLY * 0.35 / sells))
    elif name in ("sniper_launch", "risky_launch"):
        risky = name == "risky_launch"
        m.launch(start, creator, mint_authority=creator if risky else None,
                 freeze_authority=creator if risky else None)
        m.liquidity(start, creator, "create")
        if not risky:
            bundle = [wallet(rng) for _ in range(rng.randint(4, 6))]
            for buyer in bundle:
                m.transfer(start, creator, buyer, int(1.5 * LAMPORTS), native=True)
                m.swap(start, buyer, "buy", sol=1.0)
            for delay in (1.0, 2.5):
                m.swap(start + delay, wallet(rng), "buy", sol=0.8)
        organic(m, rng, start + 20, end)
    elif name == "split_accumulation":
        funder, fresh = wallet(rng), [wallet(rng) for _ in range(rng.randint(5, 7))]
        for buyer in fresh:
            m.transfer(start, funder, buyer, 5 * LAMPORTS, native=True)
        at = start + 30
        for _ in range(8):
            for buyer in fresh:
                m.swap(at + rng.uniform(0, 20), buyer, "buy", sol=rng.uniform(0.5, 0.9))
            at += rng.uniform(50, 90)
    elif name == "distribution":
        holder = wallet(rng)
        for k in range(8):
            m.transfer(start + 10 * k, holder, wallet(rng), SUPPLY // 100)
        for k in range(3):
            m.swap(start + 100 + 20 * k, holder, "sell", tokens=SUPPLY // 50)
    elif name == "whale_swap":
        m.swap(start, wallet(rng), "buy", sol=rng.uniform(30, 45))


def simulate_chain(*, seed: int, minutes: float = 30.0, scenarios: tuple[str, ...] = SCENARIOS,
                   start: datetime | None = None) -> ChainSimulation:
    """Every scenario on its own token over `minutes`, from `start` (default 2024-06-01 UTC)."""
    rng = random.Random(seed)
    t0 = start.timestamp() if start is not None else START_S
    end = t0 + minutes * 60
    records, labels, tokens = [], [], {}
    for name in scenarios:
        token, pool = wallet(rng), wallet(rng)
        base_share = 0.1 if name == "dump" else 0.8
        m = Market(rng, token, pool, quote_sol=rng.uniform(40, 80), base_share=base_share)
        start = t0 + rng.uniform(0.3, 0.6) * (end - t0)
        scenario(name, m, rng, t0, start, end)
        tokens[token] = name
        for kind in SCENARIO_KINDS.get(name, []):
            labels.append({"token": token, "kind": kind, "scenario": name, "start_s": start, "required": True})
        for kind in ALSO_TRUE.get(name, []):
            labels.append({"token": token, "kind": kind, "scenario": name, "start_s": start, "required": False})
        records.extend((at, order, kind, record) for order, (at, kind, record) in enumerate(m.records))
    records.sort(key=lambda r: (r[0], r[1]))
    return ChainSimulation(seed, _blocks(records, seed), labels, tokens)


def _blocks(records: list[tuple], seed: int) -> list[CloudEvent]:
    blocks: dict[int, dict] = {}
    for at, _, kind, record in records:
        slot = int((at - GENESIS_S) / SLOT_S)
        block = blocks.setdefault(slot, {
            "slot": slot, "block_time": datetime.fromtimestamp(int(at), tz=timezone.utc).isoformat().replace("+00:00", "Z"),
            "transfers": [], "swaps": [], "liquidity": [], "pool_states": [], "launches": [], "tx": 0})
        index = block["tx"] - 1 if kind == "pool_states" else block["tx"]
        block[kind].append({**record, "tx_index": index})
        block["tx"] += kind != "pool_states"  # a pool state belongs to the swap before it
    events = []
    links = SlotLinks(1)  # it knows every slot: no mint traded before the first (the horizon, 0)
    for slot in sorted(blocks):
        block = blocks[slot]
        block["stats"] = {"transactions": block.pop("tx"), "failed": 0, "skipped_programs": {}}
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"kades-sim-chain:{seed}:{slot}"))
        linked = {**block, **links.whole_block(block)}
        event = new_event(CHAIN_BLOCK, SOURCE, linked, event_id=event_id, time=block["block_time"])
        # a slot over the size limit goes as solana-source sends it: per mint, in parts
        events += ([event] if event_bytes(event) <= MAX_EVENT_BYTES
                   else split_block(block, source=SOURCE, links=links))
        links.sent(slot, linked["previous_mint_slots"])
    return events
