"""Precision, recall and detection delay of chain alerts against scenario labels.

An alert is true when its token carries a label of its kind (required or merely also true)
and it came no earlier than `early_s` before the labelled start. Recall counts required
labels only; the delay is from the labelled start to the first true alert.
"""
from __future__ import annotations

import statistics
from datetime import datetime


def alert_time_s(alert: dict) -> float:
    return datetime.fromisoformat(alert["time"].replace("Z", "+00:00")).timestamp()


def score(alerts: list[dict], labels: list[dict], kinds: list[str], *, early_s: float = 60.0) -> dict[str, dict]:
    by_key = {(l["token"], l["kind"]): l for l in labels}
    report = {}
    for kind in kinds:
        mine = [a for a in alerts if a["anomaly_type"] == kind]
        true = [a for a in mine if (a["token"], kind) in by_key
                and alert_time_s(a) >= by_key[(a["token"], kind)]["start_s"] - early_s]
        required = [l for l in labels if l["kind"] == kind and l["required"]]
        delays = []
        for label in required:
            hits = [alert_time_s(a) - label["start_s"] for a in true if a["token"] == label["token"]]
            if hits:
                delays.append(min(hits))
        report[kind] = {"alerts": len(mine), "true_alerts": len(true), "labels": len(required),
                        "found": len(delays),
                        "precision": len(true) / len(mine) if mine else None,
                        "recall": len(delays) / len(required) if required else None,
                        "median_delay_s": statistics.median(delays) if delays else None}
    return report


def format_report(report: dict[str, dict]) -> str:
    lines = [f"{'kind':<20} {'alerts':>6} {'prec':>6} {'labels':>6} {'recall':>6} {'delay s':>8}"]
    for kind, r in report.items():
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        lines.append(f"{kind:<20} {r['alerts']:>6} {fmt(r['precision'], '.2f'):>6} {r['labels']:>6} "
                     f"{fmt(r['recall'], '.2f'):>6} {fmt(r['median_delay_s'], '.1f'):>8}")
    return "\n".join(lines)
