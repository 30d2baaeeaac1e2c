"""What chain-analysis and whale-detection share around their detectors: reading a block
event's time, and answering with anomaly events: one per token, split under the size limit."""
from __future__ import annotations

from kades.chain.blockview import block_time_s
from kades.errors import BadRequestError, Problem
from kades.events.catalogue import ANOMALY_DETECTED
from kades.events.chunking import per_token_replies
from kades.events.envelope import CloudEvent
from kades.runtime import Context


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
