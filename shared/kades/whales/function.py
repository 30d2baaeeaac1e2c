"""whale-detection: large moves, accumulation, distribution, wallet splitting; replies anomalies.

One Redis document per token (with its reorder buffer), kept in parts as chain-analysis's are
(kades.chain.store.TokenStore: only what changed is written, a waiting slot decoded when it is
released), read and written in one optimistic round trip per event, and a log of each slot's
SOL fan-outs (funder -> wallets) and SOL price beside them (kades.chain.slotlog). A mint's slots are analysed in
slot order, once each, whatever the delivery order (kades.chain.ordering); the `stream-flush`
PingSource has quiet mints' waiting slots analysed.
"""
from __future__ import annotations

from dataclasses import dataclass

from kades.chain.blockview import sol_fundings, token_records
from kades.chain.detector import configured
from kades.chain.funding import FundersAsOf, seeding
from kades.chain.ordering import IN_ORDER, Links, Tally, admit, block_links, mint_links
from kades.chain.reply import handle_block_event
from kades.chain.rows import Trade, Transfer
from kades.chain.slotlog import log_of, price_as_of
from kades.chain.state import PUMP_FUN_SUPPLY
from kades.chain.store import TokenStore
from kades.chain.thresholds import ChainThresholds, thresholds
from kades.events.catalogue import CHAIN_BLOCK, PING
from kades.events.envelope import CloudEvent
from kades.keys import SOL_USD as SOL_USD_KEY, WHALES_FUNDING_SLOTS as FUNDING_SLOTS_KEY
from kades.keys import WHALES_FUNDINGS_DOCUMENT as FUNDINGS_DOCUMENT_KEY
from kades.keys import WHALES_FUNDING_LOG as FUNDING_LOG_KEY, WHALES_TOKEN as TOKEN_KEY
from kades.keys import WHALES_WAITING as WAITING_KEY, WHALES_WATERMARK, WHALES_WATERMARK_AHEAD
from kades.keys import WHALES_WATERMARK_BLOCKED
from kades.market.chain import quote_lamports, read_sol_usd, sol_usd_of
from kades.runtime import Context, Function
from kades.runtime.bulkhead import PASSED_ON, count_failures, log_failure, until_encoded
from kades.runtime.reorder import ReorderBuffer
from kades.runtime.state import by_key
from kades.runtime.ttlcache import TtlCache
from kades.solana.programs import QUOTE_MINTS
from kades.whales.detectors import Accumulation, Distribution, WalletSplitting, WhaleMovement
from kades.whales.state import MAX_ROWS, WhaleState

STATE_TTL_S = 7 * 24 * 3600
SOL_USD_REFRESH_S = 30.0


@dataclass(frozen=True)
class Local:
    """whale-detection's per-process state, one per Context (`ctx.local(start)`)."""

    states: TokenStore   # the states it last committed, cached; token documents in parts
    sol_usd: TtlCache    # SOL/USD as market-aggregator last saw it, read at most every 30 s


def start(ctx: Context) -> Local:
    return Local(TokenStore(ttl_s=STATE_TTL_S, prefix=TOKEN_KEY.format(token="")),
                 TtlCache(ttl_s=SOL_USD_REFRESH_S, max_entries=1))


def analyse_token(doc: dict | None, token: str, records: dict, pool_states: list[dict], funders: dict,
                  time_s: float, slot: int, t: ChainThresholds, sol_usd: float | None = None
                  ) -> tuple[dict, list[dict]]:
    """One slot of a token's records through every whale detector; `doc` is updated in place."""
    doc = doc if doc is not None else WhaleState().to_state()
    state = WhaleState.from_state(doc)
    if slot <= state.last_slot:
        return doc, []
    state.last_slot = slot
    window = t.whale_window_s
    state.trades = [r for r in state.trades if time_s - r.time_s <= window][-MAX_ROWS:]
    state.sends = [r for r in state.sends if time_s - r.time_s <= window][-MAX_ROWS:]
    # every pump.fun mint has the same supply: known from its launch, and from a trade on its
    # bonding curve (a token first met after its launch was weighed against the tokens seen
    # in pools and wallets: 8 buys of 0.7 SOL, 0.95 % of the supply, read as 5.4 %)
    if any(r.get("program") == "pump_fun" for r in records["launches"] + records["swaps"]):
        state.supply = PUMP_FUN_SUPPLY
    # a pool created is the token's launch (its pool's tokens then its supply's view), but not
    # the pool a bonding curve graduates to: the curve's buyers hold most of the supply by
    # then (a pump.fun token's supply is known instead; a launchpad's, met at graduation,
    # is not: the new pool's fifth of it stood for all of it), nor a pool created after
    # others of the token were seen (a second pool of a token met mid-life: its pools' tokens
    # a sliver of its supply, as before)
    state.launched = state.launched or (records.get("created") is True and not state.pools
                                        and state.pool is None)
    # a pump.fun curve's migration to its pool ("created": "pump_fun" in a slot that waited in
    # the reorder buffer from before "migrated")
    if "pump_fun" in (records.get("migrated"), records.get("created")):
        state.supply = PUMP_FUN_SUPPLY
    anomalies = []
    states_by_sig = {(p["signature"], p["pool"]): p for p in pool_states}
    movement = configured(WhaleMovement, t)
    for swap in records["swaps"]:  # each judged against the pool before it
        anomalies += movement.find(state, token, swap, time_s=time_s, slot=slot, sol_usd=sol_usd)
        side = 1 if swap["side"] == "buy" else -1
        state.trades.append(Trade(time_s, swap["trader"], side, swap["base_amount"],
                                  quote_lamports(swap, sol_usd), swap["signature"], slot))
        state.holders[swap["trader"]] = state.holders.get(swap["trader"], 0) + side * swap["base_amount"]
        after = states_by_sig.get((swap["signature"], swap["pool"]))
        if after:
            state.saw_pool(after["pool"], [after["base_reserve"], after["quote_reserve"]],
                           after["quote_mint"])
    for p in pool_states:
        state.saw_pool(p["pool"], [p["base_reserve"], p["quote_reserve"]], p["quote_mint"])
    for transfer in records["transfers"]:
        state.sends.append(Transfer(time_s, transfer["source"], transfer["destination"], transfer["amount"],
                                    transfer["signature"], slot))
        for wallet, sign in ((transfer["source"], -1), (transfer["destination"], 1)):
            state.holders[wallet] = state.holders.get(wallet, 0) + sign * transfer["amount"]
    if len(state.holders) > MAX_ROWS:
        state.holders = dict(sorted(state.holders.items(), key=lambda x: -abs(x[1]))[:MAX_ROWS])
    if len(state.sizes) > MAX_ROWS:  # (rebuilt at every event, 0.2 ms of 3 at 3,000 traders)
        state.sizes = dict(list(state.sizes.items())[-MAX_ROWS:])
    anomalies += configured(Accumulation, t).find(state, token, funders=funders, time_s=time_s, slot=slot)
    anomalies += configured(Distribution, t).find(state, token, time_s=time_s, slot=slot)
    anomalies += configured(WalletSplitting, t).find(state, token, funders=funders, time_s=time_s, slot=slot)
    doc.update(state.to_state())
    return doc, anomalies


def mint_items(block: dict, time_s: float, sol_usd: float | None = None
               ) -> dict[str, tuple[int, float, dict]]:
    """The block as items per mint: (slot, block time, {records, pool_states, sol_usd});
    `sol_usd`, the slot's own SOL price (sol_usd_of)."""
    pool_states: dict[str, list] = {}
    for p in block.get("pool_states", []):
        if p["base_mint"] not in QUOTE_MINTS:  # SOL/USDC pools: no token of ours, as swaps
            pool_states.setdefault(p["base_mint"], []).append(p)
    records = token_records(block)
    empty = {"swaps": [], "transfers": [], "launches": []}  # a pool created or changed with no trade
    # mints whose pool the block creates: from then on, what they have is in view (supply_of);
    # apart, the pools a bonding curve's graduation creates, by the curve's program ("pump_fun":
    # its supply is every pump.fun mint's); a curve made and graduated in one block is both
    created, migrated = {}, {}
    for r in block.get("liquidity", []):
        if r.get("action") == "create":
            if r.get("migration"):
                migrated[r["base_mint"]] = r["migration"]["program"]
            else:
                created[r["base_mint"]] = True
    return {mint: (block["slot"], time_s, {"records": {**records.get(mint, empty),
                                                       **({"created": True} if mint in created else {}),
                                                       **({"migrated": migrated[mint]} if mint in migrated else {})},
                                          "pool_states": pool_states.get(mint, []), "sol_usd": sol_usd})
            for mint in {**records, **pool_states}}


def analyse_mints(client, items: dict[str, tuple | None], context: dict | None, t: ChainThresholds,
                  store, sol_usd: float | None = None, *, buffer: ReorderBuffer = IN_ORDER,
                  now_s: float = 0.0, outbox: str | None = None,
                  links: Links | None = None) -> list[dict]:
    """Take each mint's item (None: only release what waited) into its reorder buffer and run
    the whale detectors over what it releases, in slot order; `context` (slot, time_s,
    fundings, sol_usd) is the slot's, recorded in the slot log (a fact of the slot, needing
    no compare-and-set). `sol_usd` (when known) turns SOL into dollars for slots
    without a price of their own. `links` as chain-analysis's analyse_mints takes them, and
    as there, the mints the slot's commit no longer blocks have their slots released too."""
    mints = list(items)
    token_keys = {mint: TOKEN_KEY.format(token=mint) for mint in mints}
    record = None if context is None else {
        "slot": context["slot"], "time_s": context["time_s"],
        "fundings": seeding(context["fundings"]), "sol_usd": context.get("sol_usd")}
    log = log_of(store, FUNDING_LOG_KEY, FUNDING_SLOTS_KEY, FUNDINGS_DOCUMENT_KEY,
                 (WHALES_WATERMARK, WHALES_WATERMARK_AHEAD, WHALES_WATERMARK_BLOCKED))
    blocked: dict[str, int] = {}  # the last compute's: mint -> the watermark its slot needs
    computed: list[list] = [[]]   # ... and its anomalies (its result committed: the same list)
    failed: set[str] = set()      # ... and the mints it started afresh (kades.runtime.bulkhead)
    reset: set[str] = set()       # mints whose state did not encode: afresh at every compute
    tally = [Tally()]             # the last compute's late and impossible slots

    def compute(docs: dict) -> tuple[dict, list[dict]]:
        # the slot log at every attempt, after the states were read (kades.chain.slotlog)
        shared = log.sync(client, record, ttl_s=t.whale_window_s)
        new_docs, anomalies = {}, []
        blocked.clear()
        failed.clear()
        tally[0] = Tally()
        computed[0] = anomalies
        for mint, key in token_keys.items():
            if mint in reset:
                failed.add(mint)
                new_docs[key] = WhaleState().to_state()
                continue
            state, found = docs[key] or WhaleState().to_state(), []
            try:
                for slot, payload in admit(buffer, state, items[mint], now_s=now_s,
                                           function="whale-detection", mint=mint, tally=tally[0],
                                           links=mint_links(links, mint),
                                           watermark=shared["watermark"], blocked=blocked):
                    time_s = payload["time_s"]
                    funders = FundersAsOf(shared, slot=slot, time_s=time_s, ttl_s=t.whale_window_s)
                    price = payload["sol_usd"] or price_as_of(shared, slot, time_s) or sol_usd
                    found += analyse_token(state, mint, payload["records"], payload["pool_states"],
                                           funders, time_s, slot, t, price)[1]  # in place
            except PASSED_ON:
                raise
            except Exception:  # noqa: BLE001 - a bulkhead (kades.runtime.bulkhead): a mint's
                log_failure("whale-detection", mint)  # state is its own, read for this attempt
                failed.add(mint)
                blocked.pop(mint, None)
                state, found = WhaleState().to_state(), []
            anomalies += found
            new_docs[key] = state
        return new_docs, anomalies

    keys = list(token_keys.values())
    # the mints with slots waiting listed in the commit's own script: no round trip more, and
    # never a state committed without it
    listing = {} if client is None else {"waiting": (WAITING_KEY, {key: mint for mint, key in token_keys.items()})}
    anomalies = until_encoded(
        lambda: store.update(client, keys, by_key(keys, compute), outbox=outbox, **listing,
                             keep_empty=lambda: bool(tally[0] or failed)),  # counted: kept
        {key: mint for mint, key in token_keys.items()}, reset, "whale-detection")
    if anomalies is not computed[0]:  # its first attempt's, from the outbox: nothing of this run's
        blocked.clear()
    else:
        count_failures("whale-detection", len(failed))
        tally[0].count("whale-detection")
    if links is not None and context is not None:  # after the commit: kades.chain.slotlog
        _, unblocked = log.arrived(client, context["slot"], links[0], context["time_s"],
                                   lateness_slots=buffer.lateness_s, ttl_s=t.whale_window_s,
                                   blocked=blocked, outbox=outbox)
        if unblocked:  # their own stream-flush, now: a retry's outbox apart from this one's
            anomalies = anomalies + analyse_mints(
                client, dict.fromkeys(unblocked), None, t, store, sol_usd, buffer=buffer,
                now_s=now_s, outbox=None if outbox is None else outbox + ":unblocked")
    else:  # a flush's mints still waiting for the watermark
        log.block(client, blocked, ttl_s=t.whale_window_s)
    return anomalies


def analyse_block(client, block: dict, time_s: float, t: ChainThresholds, store,
                  sol_usd: float | None = None, *, buffer: ReorderBuffer = IN_ORDER,
                  now_s: float = 0.0, outbox: str | None = None) -> list[dict]:
    """Every whale detector over one block (a whole slot or one mint's part), through each
    mint's reorder buffer. Under `outbox` a retry of the block gets its first committed
    attempt's anomalies."""
    own = sol_usd_of(block)  # the slot's (`sol_usd`: the market's, for a slot without one)
    context = {"slot": block["slot"], "time_s": time_s, "fundings": sol_fundings(block),
               "sol_usd": own}
    return analyse_mints(client, mint_items(block, time_s, own), context, t, store, sol_usd,
                         buffer=buffer, now_s=now_s, outbox=outbox, links=block_links(block))


def handle_block(event: CloudEvent, ctx: Context) -> list[CloudEvent] | None:
    t, local = thresholds(), ctx.local(start)
    return handle_block_event(
        event, ctx, waiting_key=WAITING_KEY, kind="whale-anomalies",
        flush=lambda mints, **run: analyse_mints(ctx.redis, dict.fromkeys(mints), None, t, local.states,
                                                 sol_usd=_known_sol_usd(ctx.redis, local), **run),
        analyse=lambda block, time_s, **run: analyse_block(ctx.redis, block, time_s, t, local.states,
                                                           sol_usd=_known_sol_usd(ctx.redis, local),
                                                           **run))


def _known_sol_usd(client, local: Local) -> float | None:
    """SOL/USD as market-aggregator last saw it on chain; read from Redis at most every 30 s."""
    return local.sol_usd.get_or_load(SOL_USD_KEY, lambda: read_sol_usd(client))


FUNCTION = Function("whale-detection", (CHAIN_BLOCK, PING), handle_block)
