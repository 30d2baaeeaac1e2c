"""What chain-analysis and whale-detection share around their detectors: reading a block
event's time, taking a block event (or the stream-flush ping) to their detectors, and
answering with anomaly events: one per token, split under the size limit."""
from __future__ import annotations

import time
from typing import Callable

from kades.chain.blockview import block_time_s
from kades.chain.ordering import slot_buffer
from kades.errors import BadRequestError, Problem
from kades.events.catalogue import ANOMALY_DETECTED, PING
from kades.events.chunking import assemble, per_token_replies
from kades.events.envelope import CloudEvent
from kades.keys import outbox_key
from kades.runtime import Context
from kades.runtime.reorder import FLUSH_BATCH, quiet_keys

# flush(quiet mints, **run) and analyse(block, block time s, **run), where run holds the
# reorder buffer, the wall-clock now and the event's outbox: the function's own detectors.
Flush = Callable[..., list[dict]]
Analyse = Callable[..., list[dict]]


def handle_block_event(event: CloudEvent, ctx: Context, *, waiting_key: str, kind: str,
                       flush: Flush, analyse: Analyse) -> list[CloudEvent] | None:
    """A chain block (or one of its parts), or the stream-flush ping that releases the slots
    of mints gone quiet; the anomaly events it raised."""
    buffer, now = slot_buffer(ctx.settings), time.time()
    if event.type == PING:  # the longest-waiting FLUSH_BATCH: the rest at the next minute
        mints = quiet_keys(ctx.redis, waiting_key, now_s=now, idle_s=ctx.settings.reorder_idle_s,
                           limit=FLUSH_BATCH)
        if not mints:
            return None
        anomalies = flush(mints, buffer=buffer, now_s=now,
                          outbox=outbox_key(ctx.name, event.source, event.id))
        return anomalies_reply(event, ctx, anomalies, kind)
    block, cause = assemble(ctx.redis, ctx.name, event)
    if block is None:
        return None  # a part whose siblings have not all arrived yet
    anomalies = analyse(block, event_block_time_s(event), buffer=buffer, now_s=now,
                        outbox=outbox_key(ctx.name, cause.source, cause.id))
    return anomalies_reply(cause, ctx, anomalies, kind)


def event_block_time_s(event: CloudEvent) -> float:
    """The block's time (its block_time, else the event's time); 400 when it has none."""
    try:
        return block_time_s(event.data, event.get("time"))
    except ValueError as error:
        raise BadRequestError("invalid chain block", [Problem("data.block_time", str(error))]) from error


def anomalies_reply(event: CloudEvent, ctx: Context, anomalies: list[dict],
                    kind: str) -> list[CloudEvent]:
    """The block's anomaly events, one per token (in parts when large; ids derived from the
    block's, `kind`, the token and the part); [] when nothing was found."""
    return per_token_replies(event, ctx.source, ANOMALY_DETECTED, "anomalies", anomalies,
                             purpose=kind, time_of=lambda part: part[-1]["time"])
