"""chain-analysis: manipulation patterns in chain blocks; replies `ai.kades.anomaly.detected.v1`.

State lives in Redis (kades.runtime.state: one optimistic round trip per event): one document
per token (trades, transfers, holders, launch, and its reorder buffer), per pool (liquidity),
per creator (launches) and one shared document of recent SOL fundings (who seeded which
wallet). A mint's slots are analysed in slot order, once each, whatever the delivery order
(kades.chain.ordering); the `stream-flush` PingSource has quiet mints' waiting slots analysed.
"""
from __future__ import annotations

from kades.chain.blockview import pool_observations, slot_launches, sol_fundings, token_records
from kades.chain.cycles import CyclicTransfers
from kades.chain.detector import configured
from kades.chain.funding import FUNDING_TTL_S, FundersAsOf, record_fundings
from kades.chain.launch import MAX_HOLDERS, LaunchRisk, Snipers
from kades.chain.liquidity import watch_pool
from kades.chain.ordering import (IN_ORDER, KEEP_S, MissingKeys, admit, launches_as_of, pending_payloads,
                                  record_launches)
from kades.chain.reply import handle_block_event
from kades.chain.rows import EarlyBuy, Trade, Transfer
from kades.chain.state import TokenState
from kades.chain.thresholds import ChainThresholds, thresholds
from kades.chain.wash import WashTrading
from kades.errors import TemporaryFailure
from kades.events.catalogue import CHAIN_BLOCK, PING
from kades.events.envelope import CloudEvent
from kades.keys import CHAIN_FUNDINGS as FUNDING_KEY, CHAIN_LAUNCHES as CREATOR_KEY, CHAIN_POOL as POOL_KEY
from kades.keys import CHAIN_TOKEN as TOKEN_KEY, CHAIN_WAITING as WAITING_KEY
from kades.runtime import Context, Function
from kades.runtime.reorder import ReorderBuffer, note_waiting
from kades.runtime.state import StateStore, by_key

STATE_TTL_S = 7 * 24 * 3600
MAX_KEY_ROUNDS = 4     # reads of the documents a release needs before answering 503


def start(ctx: Context) -> StateStore:
    """chain-analysis's per-process state, one per Context (`ctx.local(start)`): the states
    it last committed, cached."""
    return StateStore(ttl_s=STATE_TTL_S)


def new_token_state() -> dict:
    return TokenState().to_state()


def analyse_token(doc: dict | None, token: str, records: dict, creator_launches: dict, funders: dict,
                  time_s: float, slot: int, t: ChainThresholds) -> tuple[dict, list[dict]]:
    """One slot of a token's records through every token detector; `doc` is updated in place."""
    doc = doc if doc is not None else new_token_state()
    state = TokenState.from_state(doc)
    if slot <= state.last_slot:
        return doc, []  # this slot was analysed already
    state.last_slot = slot
    holders, sniping_s = state.holders, configured(Snipers, t).window_s
    for record in records["launches"]:
        state.record_launch(record, time_s, slot)
    for swap in records["swaps"]:
        side = 1 if swap["side"] == "buy" else -1
        state.trades.append(Trade(time_s, swap["trader"], side, swap["base_amount"], swap["quote_amount"],
                                  swap["signature"], slot))
        holders[swap["trader"]] = holders.get(swap["trader"], 0) + side * swap["base_amount"]
        if state.first_trade is None:
            state.first_trade = {"time_s": time_s, "slot": slot}
        if side > 0 and time_s - state.first_trade["time_s"] <= sniping_s:
            state.early_buys.append(EarlyBuy(time_s, swap["trader"], swap["base_amount"], swap["quote_amount"],
                                             swap["signature"], slot))
    new_edges = []
    for transfer in records["transfers"]:
        amount = transfer["amount"]
        holders[transfer["source"]] = holders.get(transfer["source"], 0) - amount
        holders[transfer["destination"]] = holders.get(transfer["destination"], 0) + amount
        new_edges.append(Transfer(time_s, transfer["source"], transfer["destination"], amount, transfer["signature"], slot))
    if len(holders) > MAX_HOLDERS:  # keep the largest holders only
        state.holders = dict(sorted(holders.items(), key=lambda x: -abs(x[1]))[:MAX_HOLDERS])
    anomalies = configured(CyclicTransfers, t).find(state, token, new_edges, time_s=time_s, slot=slot)
    anomalies += configured(WashTrading, t).find(state, token, time_s=time_s, slot=slot)
    anomalies += configured(LaunchRisk, t).find(state, token, time_s=time_s, slot=slot,
                                                creator_launches=creator_launches.get(state.creator, 0))
    anomalies += configured(Snipers, t).find(state, token, funders=funders, time_s=time_s, slot=slot)
    doc.update(state.to_state())
    return doc, anomalies


def mint_items(block: dict, time_s: float) -> dict[str, tuple[int, float, dict]]:
    """The block as items per mint: (slot, block time, {records, pools}); a pool goes with its
    base mint (every record of it does). `records` only for mints with token records."""
    items: dict[str, dict] = {}
    for token, records in token_records(block).items():
        items.setdefault(token, {"pools": {}})["records"] = records
    for pool, observations in pool_observations(block, time_s).items():
        mint = observations[0]["record"]["base_mint"]
        items.setdefault(mint, {"pools": {}})["pools"][pool] = observations
    return {mint: (block["slot"], time_s, payload) for mint, payload in items.items()}


def _needed_keys(state: dict | None, item: tuple | None) -> set[str]:
    """The pool and creator documents a mint's release may touch (read before the update)."""
    payloads = pending_payloads(state) + ([item[2]] if item else [])
    keys = {POOL_KEY.format(pool=p) for payload in payloads for p in payload["pools"]}
    creators = {((state or {}).get("launch") or {}).get("creator")}
    creators |= {l.get("creator") for payload in payloads
                 for l in (payload.get("records") or {}).get("launches", [])}
    return keys | {CREATOR_KEY.format(creator=c) for c in creators if c}


def analyse_mints(client, items: dict[str, tuple | None], context: dict | None,
                  t: ChainThresholds, store, *, buffer: ReorderBuffer = IN_ORDER,
                  now_s: float = 0.0, outbox: str | None = None) -> list[dict]:
    """Take each mint's item (None: only release what waited) into its reorder buffer and
    analyse what it releases, in slot order; `context` (slot, time_s, fundings, launches) is
    the slot's, recorded in the shared documents. All committed atomically."""
    mints = list(items)
    token_keys = [TOKEN_KEY.format(token=m) for m in mints]
    creators = sorted({l["creator"] for l in (context or {}).get("launches", []) if l.get("creator")})
    extra: set[str] = set()
    for _ in range(MAX_KEY_ROUNDS):
        current = dict(zip(mints, store.current(client, token_keys)))
        needed = set(extra) | {CREATOR_KEY.format(creator=c) for c in creators}
        for mint in mints:
            needed |= _needed_keys(current[mint], items[mint])
        keys = token_keys + sorted(needed) + [FUNDING_KEY]
        try:
            compute = _compute(mints, items, context, creators, t, buffer, now_s)
            anomalies = store.update(client, keys, by_key(keys, compute), outbox=outbox)
        except MissingKeys as missing:  # another replica moved a mint on meanwhile
            extra |= missing.keys
            continue
        if client is not None:
            note_waiting(client, WAITING_KEY, mints,
                         [(s or {}).get("reorder", {}) for s in store.current(client, token_keys)])
        return anomalies
    raise TemporaryFailure("the documents a mint needs kept changing")


def _compute(mints, items, context, creators, t, buffer, now_s):
    def compute(docs: dict) -> tuple[dict, list[dict]]:
        if context is not None:
            slot, time_s = context["slot"], context["time_s"]
            for creator in creators:
                key = CREATOR_KEY.format(creator=creator)
                docs[key] = record_launches(docs[key], context["launches"], creator, slot=slot,
                                            time_s=time_s, keep_s=t.creator_window_s + KEEP_S)
            docs[FUNDING_KEY] = record_fundings(
                docs[FUNDING_KEY], context["fundings"], slot=slot, time_s=time_s,
                ttl_s=FUNDING_TTL_S, creators=frozenset(creators))
        funding = docs[FUNDING_KEY] or {"funded": {}}
        anomalies = []
        for mint in mints:
            key = TOKEN_KEY.format(token=mint)
            state = docs[key] or new_token_state()
            for slot, payload in admit(buffer, state, items[mint], now_s=now_s,
                                       function="chain-analysis", mint=mint):
                anomalies += _analyse_slot(docs, state, mint, slot, payload, funding, t)
            docs[key] = state
        return docs, anomalies
    return compute


def _analyse_slot(docs: dict, state: dict, mint: str, slot: int, payload: dict, funding: dict,
                  t: ChainThresholds) -> list[dict]:
    """One released slot of a mint: its pools, then its token records."""
    time_s, anomalies = payload["time_s"], []
    for pool, observations in payload["pools"].items():
        key = POOL_KEY.format(pool=pool)
        if key not in docs:
            raise MissingKeys({key})
        docs[key], found = watch_pool(docs[key], pool, observations, t)
        anomalies += found
    if payload.get("records") is None:
        return anomalies
    launched = _LaunchesAsOf(docs, slot=slot, time_s=time_s, window_s=t.creator_window_s)
    funders = FundersAsOf(funding, slot=slot, time_s=time_s, ttl_s=FUNDING_TTL_S)
    _, found = analyse_token(state, mint, payload["records"], launched, funders, time_s, slot, t)  # in place
    return anomalies + found


class _LaunchesAsOf:
    """creator -> launches in the window ending at a slot, from the creator documents read."""

    def __init__(self, docs: dict, *, slot: int, time_s: float, window_s: float):
        self.docs, self.slot, self.time_s, self.window_s = docs, slot, time_s, window_s

    def get(self, creator: str | None, default: int = 0) -> int:
        if creator is None:
            return default
        key = CREATOR_KEY.format(creator=creator)
        if key not in self.docs:
            raise MissingKeys({key})
        return launches_as_of(self.docs[key], slot=self.slot, time_s=self.time_s,
                              window_s=self.window_s)


def slot_context(block: dict, time_s: float) -> dict:
    """What the block says of its whole slot: SOL fundings and launches (kades.solana.parts)."""
    return {"slot": block["slot"], "time_s": time_s, "fundings": sol_fundings(block),
            "launches": slot_launches(block)}


def analyse_block(client, block: dict, time_s: float, t: ChainThresholds, store, *,
                  buffer: ReorderBuffer = IN_ORDER, now_s: float = 0.0,
                  outbox: str | None = None) -> list[dict]:
    """Every detector over one block (a whole slot or one mint's part of it), through each
    mint's reorder buffer; `store` keeps the states (Redis; in memory for eval). Under
    `outbox` a retry of the block gets its first committed attempt's anomalies."""
    return analyse_mints(client, mint_items(block, time_s), slot_context(block, time_s), t, store,
                         buffer=buffer, now_s=now_s, outbox=outbox)


def handle_block(event: CloudEvent, ctx: Context) -> list[CloudEvent] | None:
    t, store = thresholds(), ctx.local(start)
    return handle_block_event(
        event, ctx, waiting_key=WAITING_KEY, kind="chain-anomalies",
        flush=lambda mints, **run: analyse_mints(ctx.redis, dict.fromkeys(mints), None, t, store,
                                                 **run),
        analyse=lambda block, time_s, **run: analyse_block(ctx.redis, block, time_s, t, store,
                                                           **run))


FUNCTION = Function("chain-analysis", (CHAIN_BLOCK, PING), handle_block)
