"""Precision and recall of the sentiment function's anomalies on labelled social simulations.

A flag is a true positive when it falls inside a campaign window (start … end + `grace_s`)
of its token whose labelled kinds include the flag's kind; a labelled (campaign, kind) is
found when at least one such flag exists. Shared by tests and `make eval`.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from kades.events.catalogue import ANOMALY_DETECTED, data_problems
from kades.runtime import Context
from kades.sentiment import function as sentiment

KINDS = ("mention_burst", "sentiment_shift", "coordinated_promotion")


def run(sim, ctx) -> list[dict]:
    """Every anomaly the handler flags on the simulation's events, fed in order."""
    ctx = Context(ctx.name, settings=ctx.settings)  # a fresh process: nothing cached
    found = []
    for event in sim.events:
        for reply in sentiment.handle_posts(event, ctx) or []:
            assert not data_problems(reply), data_problems(reply)
            if reply.type == ANOMALY_DETECTED:
                found += reply.data["anomalies"]
    return found


def _inside(flag: dict, label: dict, grace_s: float) -> bool:
    end = (datetime.fromisoformat(label["end"].replace("Z", "+00:00"))
           + timedelta(seconds=grace_s)).isoformat().replace("+00:00", "Z")
    return flag["token"] == label["token"] and label["start"] <= flag["time"] <= end


def tally(flags: list[dict], labels: list[dict], counts: Counter, *, grace_s: float = 60) -> Counter:
    for flag in flags:
        hit = any(flag["anomaly_type"] in label["kinds"] and _inside(flag, label, grace_s)
                  for label in labels)
        counts[flag["anomaly_type"], "tp" if hit else "fp"] += 1
    for label in labels:
        for kind in label["kinds"]:
            got = any(f["anomaly_type"] == kind and _inside(f, label, grace_s) for f in flags)
            counts[kind, "found" if got else "missed"] += 1
    return counts


def figures(counts: Counter) -> dict[str, tuple[float, float, int, int]]:
    """kind -> (precision, recall, flags, labelled campaigns)."""
    result = {}
    for kind in KINDS:
        flagged = counts[kind, "tp"] + counts[kind, "fp"]
        labelled = counts[kind, "found"] + counts[kind, "missed"]
        result[kind] = (counts[kind, "tp"] / flagged if flagged else 1.0,
                        counts[kind, "found"] / labelled if labelled else 1.0, flagged, labelled)
    return result
