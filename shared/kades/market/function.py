"""market-aggregator: stores a feed's ticks as token metrics and passes them on as a market tick."""
from __future__ import annotations

from datetime import datetime

from kades.events.catalogue import MARKET_FEED, MARKET_TICK, derived_id, new_event
from kades.events.envelope import CloudEvent
from kades.market.aggregate import normalise_ticks
from kades.runtime import Context, Function
from kades.storage.repository import insert_token_metrics


def metric_rows(event: CloudEvent, ticks: list[dict]) -> list[dict]:
    """Token-metric rows of normalised ticks, keyed to the event (a redelivery inserts nothing)."""
    return [{"time": tick["time"], "token": tick["token"], "price": tick["price"],
             "volume": tick.get("volume"), "liquidity": tick.get("liquidity"),
             "source": tick["source"], "event_source": event.source, "event_id": event.id}
            for tick in ticks]


def handle_feed(event: CloudEvent, ctx: Context) -> CloudEvent:
    ticks = normalise_ticks(event.data["ticks"], default_source=event.source[:128])  # schema limit
    with ctx.db() as conn:
        insert_token_metrics(conn, metric_rows(event, ticks))
    tokens = {tick["token"] for tick in ticks}
    return new_event(MARKET_TICK, ctx.source, {"ticks": ticks},
                     subject=ticks[0]["token"] if len(tokens) == 1 else None,
                     event_id=derived_id(event, "market-tick"),
                     time=max((tick["time"] for tick in ticks), key=datetime.fromisoformat))


FUNCTION = Function("market-aggregator", (MARKET_FEED,), handle_feed, uses_database=True)
