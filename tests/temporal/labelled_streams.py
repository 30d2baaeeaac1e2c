"""Shared helpers of the temporal tests: simulator streams as detector inputs, label scoring."""
from __future__ import annotations

from datetime import datetime

from kades.temporal.policy import new_monitor
from kades.temporal.threshold import ThresholdFilter

WINDOW_AFTER_S = 60.0


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def as_x(tick: dict) -> dict:
    return {"time": epoch(tick["time"]), "price": tick["price"], "volume": tick["volume"],
            "liquidity": tick.get("liquidity")}


def run_filters(ticks: list[dict]) -> list[tuple[str, dict]]:
    """(token, flag) of every flag raised by one fresh monitor of the alert policy per token
    (what temporal-analysis runs)."""
    monitors: dict[str, ThresholdFilter] = {}
    flags = []
    for tick in ticks:
        monitor = monitors.setdefault(tick["token"], new_monitor())
        flags += [(tick["token"], flag) for flag in monitor.process_one(as_x(tick))]
    return flags


def precision_recall(flags: list[tuple[str, dict]], labels: list[dict]) -> dict[str, int]:
    """A label is detected when a flag of its token lands in [start, end + 60 s]; a flag in no
    label's window is a false positive."""
    windows = [(l["token"], epoch(l["start"]), epoch(l["end"]) + WINDOW_AFTER_S) for l in labels]

    def inside(token, flag, window):
        return token == window[0] and window[1] <= flag["time"] <= window[2]

    detected = sum(any(inside(t, f, w) for t, f in flags) for w in windows)
    true_flags = sum(any(inside(t, f, w) for w in windows) for t, f in flags)
    return {"labels": len(windows), "detected": detected, "flags": len(flags),
            "true_flags": true_flags}
