"""chain-analysis: manipulation patterns in chain blocks; replies `ai.kades.anomaly.detected.v1`.

State lives in Redis (kades.chain.store: one optimistic round trip per event, writing only
what changed): one document per token (trades, transfers, holders, launch, and its reorder
buffer; a hash of parts), one per pool (liquidity), one per creator (launches); and beside
them a log of each slot's SOL fundings (who seeded which wallet) and SOL price
(kades.chain.slotlog, a round trip of its own). A mint's slots are analysed in slot order,
once each, whatever the delivery order (kades.chain.ordering); the `stream-flush`
PingSource has quiet mints' waiting slots analysed.
"""
from __future__ import annotations

from dataclasses import dataclass

from kades.chain.blockview import pool_observations, slot_launches, sol_fundings, token_records
from kades.chain.cycles import CyclicTransfers
from kades.chain.detector import configured
from kades.chain.funding import FUNDING_TTL_S, FundersAsOf, seeding
from kades.chain.launch import MAX_HOLDERS, LaunchRisk, Snipers
from kades.chain.liquidity import watch_pool
from kades.chain.ordering import (IN_ORDER, KEEP_S, Links, MissingKeys, Tally, admit,
                                  block_links, launches_as_of, mint_links, record_launches,
                                  waiting_needs)
from kades.chain.reply import handle_block_event
from kades.chain.slotlog import log_of, price_as_of
from kades.chain.rows import EarlyBuy, Trade, Transfer
from kades.chain.state import TokenState
from kades.chain.store import TokenStore
from kades.chain.thresholds import ChainThresholds, thresholds
from kades.chain.wash import WashTrading, linked_groups
from kades.errors import TemporaryFailure
from kades.events.catalogue import CHAIN_BLOCK, PING
from kades.events.envelope import CloudEvent
from kades.keys import CHAIN_FUNDINGS_DOCUMENT as FUNDINGS_DOCUMENT_KEY
from kades.keys import CHAIN_FUNDING_SLOTS as FUNDING_SLOTS_KEY, CHAIN_FUNDING_LOG as FUNDING_LOG_KEY
from kades.keys import CHAIN_LAUNCHES as CREATOR_KEY, CHAIN_POOL as POOL_KEY
from kades.keys import CHAIN_TOKEN as TOKEN_KEY, CHAIN_WAITING as WAITING_KEY
from kades.keys import CHAIN_WATERMARK, CHAIN_WATERMARK_AHEAD, CHAIN_WATERMARK_BLOCKED
from kades.market.chain import quote_lamports, sol_usd_of
from kades.runtime import Context, Function
from kades.runtime.bulkhead import (PASSED_ON, StateNotEncoded, count_failures, log_failure,
                                    reset_unencoded)
from kades.runtime.reorder import ReorderBuffer
from kades.runtime.state import by_key
from kades.runtime.ttlcache import TtlCache
from kades.solana.programs import QUOTE_MINTS

STATE_TTL_S = 7 * 24 * 3600
MAX_KEY_ROUNDS = 4     # reads of the documents a release needs before answering 503
# what the mints' bulkhead passes on: the runtime's (kades.runtime.bulkhead) and MissingKeys (the
# documents read, then the update computed again)
PASSED_ON_HERE = PASSED_ON + (MissingKeys,)
NEEDS_TTL_S = 3600.0   # what a mint's state needs is remembered this long (or until replaced) ...
MAX_NEEDS = 50_000     # ... for this many mints at most


@dataclass(frozen=True)
class Local:
    """chain-analysis's per-process state, one per Context (`ctx.local(start)`)."""

    states: TokenStore   # the states it last committed, cached; token documents in parts
    needs: TtlCache      # mint -> what its state needs besides its document (analyse_mints)


def start(ctx: Context) -> Local:
    return Local(TokenStore(ttl_s=STATE_TTL_S),
                 TtlCache(ttl_s=NEEDS_TTL_S, max_entries=MAX_NEEDS))


def new_token_state() -> dict:
    return TokenState().to_state()


def arbitrage_legs(swaps: list[dict]) -> set[tuple[str, str]]:
    """(signature, trader) of the token's atomic arbitrage: bought in one pool and sold in
    another in one transaction (a bot closing a price gap, whose legs were a "self_trade").
    A volume bot buying and selling in the same pool in one transaction stays wash trading."""
    seen: dict[tuple[str, str], set] = {}
    for swap in swaps:
        seen.setdefault((swap["signature"], swap["trader"]), set()).add((swap["side"], swap["pool"]))
    return {key for key, legs in seen.items()
            if {side for side, _ in legs} == {"buy", "sell"} and len({pool for _, pool in legs}) > 1}


# A Jito bundle holds at most 5 transactions: a sandwich's front-run, its victims, its back-run.
SANDWICH_SPAN = 4


def sandwich_legs(swaps: list[dict], linked=lambda bot, victim: False) -> set[tuple[str, str]]:
    """(signature, trader) of the legs of the token's sandwiches: a trader's swap in a pool,
    another trader's swap the same way after it, and the first trader's opposite swap after
    that, within SANDWICH_SPAN transactions of the slot (`tx_index`; swaps without one are
    left alone). MEV bots do this around a busy token's sizeable trades, and their two
    legs, equal in size seconds apart, were wash trading's "self_trade" at confidence 0.9.
    A volume bot's buy and sell with no one's trade between them stay wash trading, and so
    do they around a trade of a wallet `linked` to it (by the token's transfers: one of its
    own, which a wash ring would put there to pass as a sandwich)."""
    by_pool: dict[str, list[dict]] = {}
    for swap in swaps:
        if isinstance(swap.get("tx_index"), int):
            by_pool.setdefault(swap["pool"], []).append(swap)
    legs: set[tuple[str, str]] = set()
    for pool_swaps in by_pool.values():
        pool_swaps.sort(key=lambda swap: swap["tx_index"])
        for at, front in enumerate(pool_swaps):
            end = at + 1  # sorted: the swaps within the span are the next ones
            while (end < len(pool_swaps)
                   and pool_swaps[end]["tx_index"] - front["tx_index"] <= SANDWICH_SPAN):
                end += 1
            within = pool_swaps[at + 1:end]
            for k, victim in enumerate(within):
                if (victim["trader"] == front["trader"] or victim["side"] != front["side"]
                        or linked(front["trader"], victim["trader"])):
                    continue
                back = next((s for s in within[k + 1:] if s["trader"] == front["trader"]
                             and s["side"] != front["side"]), None)
                if back is not None:
                    legs.update((leg["signature"], leg["trader"]) for leg in (front, back))
                    break
    return legs


def analyse_token(doc: dict | None, token: str, records: dict, creator_launches: dict, funders: dict,
                  time_s: float, slot: int, t: ChainThresholds, sol_usd: float | None = None
                  ) -> tuple[dict, list[dict]]:
    """One slot of a token's records through every token detector; `doc` is updated in place.
    `sol_usd`, the slot's SOL price, tells a stablecoin-quoted trade's quote in lamports."""
    doc = doc if doc is not None else new_token_state()
    state = TokenState.from_state(doc)
    if slot <= state.last_slot:
        return doc, []  # this slot was analysed already
    state.last_slot = slot
    holders, sniping_s = state.holders, configured(Snipers, t).window_s
    for record in records["launches"]:
        state.record_launch(record, time_s, slot)
    # legs of an atomic arbitrage or of a sandwich: no trade with oneself (wash trading's)
    not_wash = arbitrage_legs(records["swaps"]) | sandwich_legs(
        records["swaps"], _linked_by_transfers(state, records))
    for swap in records["swaps"]:
        side = 1 if swap["side"] == "buy" else -1
        if (swap["signature"], swap["trader"]) not in not_wash:
            state.trades.append(Trade(time_s, swap["trader"], side, swap["base_amount"],
                                      quote_lamports(swap, sol_usd), swap["signature"], slot))
        holders[swap["trader"]] = holders.get(swap["trader"], 0) + side * swap["base_amount"]
        if state.first_trade is None:
            state.first_trade = {"time_s": time_s, "slot": slot}
        if side > 0 and time_s - state.first_trade["time_s"] <= sniping_s:
            state.early_buys.append(EarlyBuy(time_s, swap["trader"], swap["base_amount"],
                                             quote_lamports(swap, sol_usd), swap["signature"], slot))
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


def _linked_by_transfers(state: TokenState, records: dict):
    """Whether two traders are one group of wash trading's (linked by the token's transfers,
    the window's and the slot's), worked out at the first question: sandwiches are rare."""
    groups = []

    def linked(bot: str, victim: str) -> bool:
        if not groups:
            edges = state.edges + [Transfer(0.0, t["source"], t["destination"], t["amount"],
                                            t["signature"], 0) for t in records["transfers"]]
            groups.append(linked_groups({s["trader"] for s in records["swaps"]}, edges))
        root = groups[0]  # (a wallet linked to none is not listed: its own root)
        return root.get(bot, bot) == root.get(victim, victim)
    return linked


def mint_items(block: dict, time_s: float, sol_usd: float | None = None
               ) -> dict[str, tuple[int, float, dict]]:
    """The block as items per mint: (slot, block time, {records, pools, sol_usd}); a pool goes
    with its base mint (every record of it does). `records` only for mints with token
    records; `sol_usd`, the slot's SOL price (sol_usd_of), with them when known."""
    items: dict[str, dict] = {}
    priced = {"sol_usd": sol_usd} if sol_usd else {}
    for token, records in token_records(block).items():
        items.setdefault(token, {"pools": {}}).update(records=records, **priced)
    for pool, observations in pool_observations(block, time_s).items():
        mint = observations[0]["record"]["base_mint"]
        if mint in QUOTE_MINTS:  # a SOL/USDC pool anyone can make and drain: no token's rug
            continue
        items.setdefault(mint, {"pools": {}})["pools"][pool] = observations
    return {mint: (block["slot"], time_s, payload) for mint, payload in items.items()}


def _state_needs(state: dict | None) -> frozenset[str]:
    """The pool and creator documents a mint's state makes its releases touch: its waiting
    slots' pools and creators, and its own creator."""
    pools, creators = waiting_needs(state)
    creators.add(((state or {}).get("launch") or {}).get("creator"))
    return frozenset({POOL_KEY.format(pool=p) for p in pools}
                     | {CREATOR_KEY.format(creator=c) for c in creators if c})


def _item_needs(item: tuple | None) -> set[str]:
    """The pool and creator documents a mint's new item touches."""
    if item is None:
        return set()
    launches = (item[2].get("records") or {}).get("launches", [])
    return ({POOL_KEY.format(pool=p) for p in item[2]["pools"]}
            | {CREATOR_KEY.format(creator=l["creator"]) for l in launches if l.get("creator")})


def analyse_mints(client, items: dict[str, tuple | None], context: dict | None,
                  t: ChainThresholds, store, *, buffer: ReorderBuffer = IN_ORDER,
                  now_s: float = 0.0, outbox: str | None = None,
                  needs: TtlCache | None = None, links: Links | None = None) -> list[dict]:
    """Take each mint's item (None: only release what waited) into its reorder buffer and
    analyse what it releases, in slot order; `context` (slot, time_s, fundings, launches,
    sol_usd) is the slot's: its launches recorded in their creators' documents, its fundings
    and SOL price in the slot log (facts of the slot, needing no compare-and-set). The states
    are committed atomically; then the slot is said committed to the log's watermark, and
    the mints it no longer blocks have their slots released too (their anomalies added).
    `links` are the block's (kades.chain.ordering.block_links): with them a slot may be
    released at once.

    `needs` (the function's, per process) remembers what each mint's state needs besides its
    own document (_state_needs) as this process last committed it, which saves reading the
    mint's document a second time to find out; without it, or for a mint it does not know,
    the document is read first. Either is a guess checked by the update: a document it
    misses is asked for (MissingKeys) and read in the next round."""
    needs = needs if needs is not None else TtlCache(ttl_s=NEEDS_TTL_S)
    mints = list(items)
    token_keys = [TOKEN_KEY.format(token=m) for m in mints]
    creators = sorted({l["creator"] for l in (context or {}).get("launches", []) if l.get("creator")})
    extra: set[str] = set()
    record = None if context is None else {
        "slot": context["slot"], "time_s": context["time_s"],
        "fundings": seeding(context["fundings"], frozenset(creators)),
        "sol_usd": context.get("sol_usd")}
    log = log_of(store, FUNDING_LOG_KEY, FUNDING_SLOTS_KEY, FUNDINGS_DOCUMENT_KEY,
                 (CHAIN_WATERMARK, CHAIN_WATERMARK_AHEAD, CHAIN_WATERMARK_BLOCKED))
    # Redis's store lists the mints whose slots wait (the flush's work) in the same commit
    listing = {} if client is None else {"waiting": (WAITING_KEY, dict(zip(token_keys, mints)))}
    failed: set[str] = set()  # mints whose analysis raised, started afresh (runtime.bulkhead)
    key_rounds = 0
    while key_rounds < MAX_KEY_ROUNDS:  # (a mint that fails takes no round: it fails once)
        known = {mint: needs.get(mint) for mint in mints}
        unknown = [mint for mint, found in known.items() if found is None]
        if unknown:
            states = store.current(client, [TOKEN_KEY.format(token=m) for m in unknown])
            known.update((mint, _state_needs(state)) for mint, state in zip(unknown, states))
        needed = set(extra) | {CREATOR_KEY.format(creator=c) for c in creators}
        for mint in mints:
            needed |= known[mint] | _item_needs(items[mint])
        keys = token_keys + sorted(needed)
        compute = _Compute(mints, items, context, creators, t, buffer, now_s,
                           lambda: log.sync(client, record, ttl_s=FUNDING_TTL_S), links, failed)
        try:
            anomalies = store.update(client, keys, by_key(keys, compute), outbox=outbox,
                                     keep_empty=compute.counts, **listing)
        except MintFailed as failure:
            failed.add(failure.mint)
            continue
        except StateNotEncoded as failure:  # started afresh as a failed mint
            reset_unencoded(failure, dict(zip(token_keys, mints)), failed, "chain-analysis")
            continue
        except MissingKeys as missing:  # another replica moved a mint on meanwhile
            key_rounds += 1
            extra |= missing.keys
            # what this process guessed the mints need is out of date (another replica added
            # slots on pools it does not know): read their documents again, learn it whole,
            # rather than one missing document a round until the rounds ran out (a 503 at
            # every redelivery, for ever: the guess survived them)
            for mint in mints:
                needs.pop(mint)
            continue
        if anomalies is compute.anomalies:  # committed from the states this call computed
            for mint in mints:
                needs.put(mint, compute.needs[mint])
            count_failures("chain-analysis", len(failed))
            compute.tally.count("chain-analysis")
        if links is not None and context is not None:
            _, unblocked = log.arrived(
                client, context["slot"], links[0], context["time_s"],
                lateness_slots=buffer.lateness_s, ttl_s=FUNDING_TTL_S,
                blocked=compute.blocked if anomalies is compute.anomalies else None, outbox=outbox)
            if unblocked:  # their own stream-flush, now: a retry's outbox apart from this one's
                anomalies = anomalies + analyse_mints(
                    client, dict.fromkeys(unblocked), None, t, store, buffer=buffer, now_s=now_s,
                    outbox=None if outbox is None else outbox + ":unblocked", needs=needs)
        elif anomalies is compute.anomalies:  # a flush's mints still waiting for the watermark
            log.block(client, compute.blocked, ttl_s=FUNDING_TTL_S)
        return anomalies
    raise TemporaryFailure("the documents a mint needs kept changing")


class MintFailed(Exception):
    """A mint's analysis raised (kades.runtime.bulkhead). The compute changes documents mints
    share (their pools'), so the update is computed again from what was read, that mint
    started afresh."""

    def __init__(self, mint: str):
        super().__init__(mint)
        self.mint = mint


class _Compute:
    """An update's compute (kades.chain.store): the slot's shared records, then each mint's
    released slots. Its last run's anomalies, and what each mint's state needs (its
    _state_needs), are kept for after the commit."""

    def __init__(self, mints, items, context, creators, t, buffer, now_s, fundings, links,
                 failed=frozenset()):
        self.mints, self.items, self.context, self.creators = mints, items, context, creators
        self.failed = failed  # mints whose analysis raised in an earlier attempt: afresh
        self.t, self.buffer, self.now_s = t, buffer, now_s
        # the slot's fundings and price appended to the slot log, its view read (slotlog):
        # at every attempt, after its states were read, so that a slot another process
        # committed meanwhile has its context in the view
        self.fundings, self.links = fundings, links
        self.anomalies: list[dict] = []
        self.needs: dict[str, frozenset] = {}
        self.blocked: dict[str, int] = {}  # mint -> the watermark its waiting slot needs
        self.tally = Tally()  # its slots found late or impossible, counted once committed

    def counts(self) -> bool:
        """Whether the commit counts something (a late or impossible slot, a failed mint): its
        outbox is then kept even without anomalies, so a redelivery counts it not again."""
        return bool(self.tally or self.failed)

    def __call__(self, docs: dict) -> tuple[dict, list[dict]]:
        context, t = self.context, self.t
        if context is not None:
            slot, time_s = context["slot"], context["time_s"]
            for creator in self.creators:
                key = CREATOR_KEY.format(creator=creator)
                docs[key] = record_launches(docs[key], context["launches"], creator, slot=slot,
                                            time_s=time_s, keep_s=t.creator_window_s + KEEP_S)
        funding = self.fundings()
        anomalies, self.blocked, self.tally = [], {}, Tally()
        for mint in self.mints:
            key = TOKEN_KEY.format(token=mint)
            if mint in self.failed:
                docs[key] = new_token_state()
                self.needs[mint] = _state_needs(docs[key])
                continue
            state = docs[key] or new_token_state()
            try:
                for slot, payload in admit(self.buffer, state, self.items[mint], now_s=self.now_s,
                                           function="chain-analysis", mint=mint, tally=self.tally,
                                           links=mint_links(self.links, mint),
                                           watermark=funding["watermark"], blocked=self.blocked):
                    anomalies += _analyse_slot(docs, state, mint, slot, payload, funding, t)
                needs = _state_needs(state)
            except PASSED_ON_HERE:
                raise
            except Exception as error:  # noqa: BLE001 - a bulkhead (kades.runtime.bulkhead)
                log_failure("chain-analysis", mint)
                raise MintFailed(mint) from error
            docs[key] = state
            self.needs[mint] = needs
        self.anomalies = anomalies
        return docs, anomalies


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
    # the slot's SOL price, else the latest the slot log had by then (within the hour)
    sol_usd = payload.get("sol_usd") or price_as_of(funding, slot, time_s)
    _, found = analyse_token(state, mint, payload["records"], launched, funders, time_s, slot, t,
                             sol_usd)  # in place
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


def slot_context(block: dict, time_s: float, sol_usd: float | None = None) -> dict:
    """What the block says of its whole slot: SOL fundings, launches (kades.solana.parts) and
    SOL's price (sol_usd_of)."""
    return {"slot": block["slot"], "time_s": time_s, "fundings": sol_fundings(block),
            "launches": slot_launches(block), "sol_usd": sol_usd}


def analyse_block(client, block: dict, time_s: float, t: ChainThresholds, store, *,
                  buffer: ReorderBuffer = IN_ORDER, now_s: float = 0.0,
                  outbox: str | None = None, needs: TtlCache | None = None) -> list[dict]:
    """Every detector over one block (a whole slot or one mint's part of it), through each
    mint's reorder buffer; `store` keeps the states (Redis; in memory for eval), `needs` is
    the function's (analyse_mints). Under `outbox` a retry of the block gets its first
    committed attempt's anomalies."""
    sol_usd = sol_usd_of(block)
    return analyse_mints(client, mint_items(block, time_s, sol_usd),
                         slot_context(block, time_s, sol_usd), t, store, buffer=buffer,
                         now_s=now_s, outbox=outbox, needs=needs, links=block_links(block))


def handle_block(event: CloudEvent, ctx: Context) -> list[CloudEvent] | None:
    t, local = thresholds(), ctx.local(start)
    return handle_block_event(
        event, ctx, waiting_key=WAITING_KEY, kind="chain-anomalies",
        flush=lambda mints, **run: analyse_mints(ctx.redis, dict.fromkeys(mints), None, t,
                                                 local.states, needs=local.needs, **run),
        analyse=lambda block, time_s, **run: analyse_block(ctx.redis, block, time_s, t, local.states,
                                                           needs=local.needs, **run))


FUNCTION = Function("chain-analysis", (CHAIN_BLOCK, PING), handle_block)
