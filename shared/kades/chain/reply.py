"""What chain-analysis and whale-detection share around their detectors: reading a block
event's time, and answering with one anomaly event (or nothing)."""
from __future__ import annotations

from kades.chain.blockview import block_time_s
from kades.errors import BadRequestError, Problem
from kades.events.catalogue import ANOMALY_DETECTED, derived_id, new_event
from kades.events.envelope import CloudEvent
from kades.runtime import Context


def event_block_time_s(event: CloudEvent) -> float:
    """The block's time (its block_time, else the event's time); 400 when it has none."""
    try:
        return block_time_s(event.data, event.get("time"))
    except ValueError as error:
        raise BadRequestError("invalid chain block", [Problem("data.block_time", str(error))]) from error


def anomalies_reply(event: CloudEvent, ctx: Context, anomalies: list[dict],
                    kind: str) -> CloudEvent | None:
    """One anomaly event for the block (id derived from the block's and `kind`), or None."""
    if not anomalies:
        return None
    tokens = {a["token"] for a in anomalies}
    return new_event(ANOMALY_DETECTED, ctx.source, {"anomalies": anomalies},
                     subject=anomalies[0]["token"] if len(tokens) == 1 else None,
                     event_id=derived_id(event, kind), time=anomalies[-1]["time"])
