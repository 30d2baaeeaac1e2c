"""market-aggregator: feed ticks and chain-block prices, stored as token metrics, passed on as
market ticks: one event per token (subject = partitionkey = the token, so the Kafka Broker
keeps a token's ticks in order), a token's ticks in parts when over the size limit."""
from __future__ import annotations

from datetime import datetime

from kades.events.catalogue import CHAIN_BLOCK, MARKET_FEED, MARKET_TICK
from kades.events.chunking import assemble, per_token_replies
from kades.events.envelope import CloudEvent
from kades.market.aggregate import normalise_ticks, normalise_time
from kades.market.chain import (chain_ticks, merge_pool_liquidity, note_sol_usd,
                                read_sol_usd, sol_usd_of)
from kades.runtime import Context, Function, faults
from kades.storage.repository import insert_token_metrics


def metric_rows(event: CloudEvent, ticks: list[dict]) -> list[dict]:
    """Token-metric rows of normalised ticks, keyed to the event (a redelivery inserts nothing);
    a chain tick's slot goes with it, to be merged with the other slots of its second."""
    return [{"time": tick["time"], "token": tick["token"], "price": tick["price"],
             "volume": tick.get("volume"), "liquidity": tick.get("liquidity"),
             "source": tick["source"], "quote": tick.get("quote") or "",
             "event_source": event.source, "event_id": event.id,
             "slot": tick.get("slot")}
            for tick in ticks]


def tick_replies(event: CloudEvent, ctx: Context, ticks: list[dict]) -> list[CloudEvent]:
    """The market tick events of normalised ticks: per token, each at its latest tick, in
    the order they are to reach the Broker. The first event is the HTTP reply, which goes out
    after the rest are sent to the sink: the last part is put first, so that a token's parts
    arrive in index order (part 1 went last, its ticks then late behind parts 2..n, and a
    pump's opening minutes were not analysed)."""
    events = per_token_replies(event, ctx.source, MARKET_TICK, "ticks", ticks,
                               purpose="market-tick",
                               time_of=lambda part: max((t["time"] for t in part),
                                                        key=datetime.fromisoformat))
    return events[-1:] + events[:-1]


def handle_feed(event: CloudEvent, ctx: Context) -> list[CloudEvent]:
    ticks = normalise_ticks(event.data["ticks"], default_source=event.source[:128])  # schema limit
    with ctx.db() as conn:
        insert_token_metrics(conn, metric_rows(event, ticks))
    faults.point("after_db")  # tests only (KADES_FAULT_POINTS)
    return tick_replies(event, ctx, ticks)


def handle_chain_block(event: CloudEvent, ctx: Context) -> list[CloudEvent] | None:
    """Per-token prices of one slot; nothing to say when nothing was traded."""
    if not event.data.get("block_time"):
        return None  # a block without time cannot be placed on a price series
    block, event = assemble(ctx.redis, "market-aggregator", event)
    if block is None:
        return None  # a part whose siblings have not all arrived yet
    unpriced: list[dict] = []  # tokens of drained pools alone: no tick, their pools kept
    ticks = chain_ticks(block, sol_usd=read_sol_usd(ctx.redis), unpriced=unpriced)
    merge_pool_liquidity(ctx.redis, block["slot"], ticks + unpriced)
    seen = sol_usd_of(block)
    if seen:  # also from a block whose only trades were SOL's own: it was not kept then
        note_sol_usd(ctx.redis, seen, block["slot"])
    if not ticks:
        return None
    for tick in ticks:
        tick["time"] = normalise_time(tick["time"])
    with ctx.db() as conn:
        insert_token_metrics(conn, metric_rows(event, ticks))
    faults.point("after_db")  # tests only (KADES_FAULT_POINTS)
    return tick_replies(event, ctx, ticks)


def handle(event: CloudEvent, ctx: Context) -> list[CloudEvent] | None:
    return handle_chain_block(event, ctx) if event.type == CHAIN_BLOCK else handle_feed(event, ctx)


FUNCTION = Function("market-aggregator", (MARKET_FEED, CHAIN_BLOCK), handle, uses_database=True)
