"""The anomaly item every chain detector emits (schema: ai.kades.anomaly.detected.v1)."""
from __future__ import annotations

from datetime import datetime, timezone

DETECTOR_VERSION = "1.0"
# Lists in evidence (wallets, signatures) name at most this many, beside their count: an
# airdrop to thousands of wallets must not make an anomaly event too large to send.
EVIDENCE_ITEMS = 50


def rfc3339(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def ramp(value: float, low: float, high: float, *, floor: float = 0.5) -> float:
    """`floor` at `low`, 1 at `high` and beyond, linear between (severity from a threshold).

    >>> ramp(0.5, 0.5, 0.9), ramp(0.7, 0.5, 0.9), ramp(0.95, 0.5, 0.9)
    (0.5, 0.75, 1.0)
    """
    if high <= low:
        return 1.0
    share = (value - low) / (high - low)
    return round(min(1.0, max(floor, floor + (1 - floor) * share)), 4)


def make_anomaly(*, token: str, kind: str, detector: str, time_s: float, severity: float,
                 confidence: float, evidence: dict, start_s: float | None = None,
                 slots: tuple[int, int] | None = None) -> dict:
    """One anomaly item; `score` (what risk-scoring reads) is severity x confidence."""
    severity = min(1.0, max(0.0, severity))
    confidence = min(1.0, max(0.0, confidence))
    window = {"start": rfc3339(start_s if start_s is not None else time_s), "end": rfc3339(time_s)}
    if slots is not None:
        window.update(first_slot=slots[0], last_slot=slots[1])
    return {"token": token, "time": rfc3339(time_s), "anomaly_type": kind,
            "score": round(severity * confidence, 4), "severity": round(severity, 4),
            "confidence": round(confidence, 4), "detector": detector,
            "detector_version": DETECTOR_VERSION,
            "window": window,
            # `details` is what risk-scoring stores and the API shows today: the evidence too.
            "evidence": evidence, "details": {"summary": evidence.get("summary", kind), "evidence": evidence}}
