"""ThresholdFilter: turns a detector's scores into flags, and keeps flagged ticks out of what
the detector learns (else every spike would widen the scale and hide the next one).

>>> from kades.temporal.detector import ReturnSpikeDetector
>>> import random
>>> rng = random.Random(3)
>>> monitor = ThresholdFilter(ReturnSpikeDetector(grace_period=20), threshold=0.5)
>>> price, flags = 2.0, []
>>> for second in range(0, 900, 5):
...     price *= 1 + rng.gauss(0, 0.002) - (0.3 if second == 600 else 0)
...     flags += monitor.process_one({"time": second, "price": price, "volume": 500.0})
>>> [(flag["time"], flag["anomaly_type"]) for flag in flags]
[(600, 'flash_crash')]
"""
from __future__ import annotations

import math
from typing import Any

from kades.temporal.detector import ReturnSpikeDetector


class ThresholdFilter:
    """Flags each anomaly type whose score reaches `threshold`.

    Parameters:
        threshold: the score (0..1) from which a tick is anomalous.
        cooldown_s: a run of anomalous ticks of one type is flagged once when it starts and
            again every `cooldown_s` while it lasts (one volume spike is one anomaly, not
            twelve); every tick of the run stays unlearned.
        relearn_after_s: a run of anomalous ticks longer than this is a new normal (a new
            volume regime): the detector learns from it again.
    """

    def __init__(self, detector: ReturnSpikeDetector, *, threshold: float = 0.5,
                 cooldown_s: float = 60.0, relearn_after_s: float = 600.0):
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.detector = detector
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.relearn_after_s = relearn_after_s
        self.last_flag_time: dict[str, float] = {}
        self.anomalous_since: float | None = None
        self.ongoing: list[str] = []  # types over the threshold at the previous tick

    def process_one(self, x: dict) -> list[dict[str, Any]]:
        """Score x, learn from it unless anomalous; the flags it raises (often none).

        A flag is {time, anomaly_type, score, details}, `time` as given in x.
        """
        parts = self.detector.score_parts(x)
        over = {kind: score for kind, score in parts.items() if score >= self.threshold}
        ongoing, self.ongoing = self.ongoing, sorted(over)
        if not over:
            self.anomalous_since = None
            self.detector.learn_one(x)
            return []
        if self.anomalous_since is None:
            self.anomalous_since = x["time"]
        details = self._details(x)
        if x["time"] - self.anomalous_since >= self.relearn_after_s:
            self.detector.learn_one(x)
        else:
            self.detector.advance_one(x)
        flags = []
        for kind, score in over.items():
            last = self.last_flag_time.get(kind)
            if kind in ongoing and last is not None and x["time"] - last < self.cooldown_s:
                continue
            self.last_flag_time[kind] = x["time"]
            flags.append({"time": x["time"], "anomaly_type": kind, "score": round(score, 4),
                          "details": details})
        return flags

    def _details(self, x: dict) -> dict[str, float]:
        log_return, z_price, z_volume = self.detector.deviations(x)
        return {"price": x["price"], "price_change": round(math.expm1(log_return), 6),
                "return_z": round(z_price, 2), "volume_z": round(z_volume, 2)}

    def to_state(self) -> dict[str, Any]:
        return {"detector": self.detector.to_state(), "last_flag_time": dict(self.last_flag_time),
                "anomalous_since": self.anomalous_since, "ongoing": list(self.ongoing)}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, *, detector_params: dict | None = None,
                   **params: Any) -> "ThresholdFilter":
        """A filter with `params` around a detector with `detector_params`, carrying on from
        `state` (None: a fresh one)."""
        state = state or {}
        detector = ReturnSpikeDetector.from_state(state.get("detector"), **(detector_params or {}))
        monitor = cls(detector, **params)
        monitor.last_flag_time = dict(state.get("last_flag_time", {}))
        monitor.anomalous_since = state.get("anomalous_since")
        monitor.ongoing = list(state.get("ongoing", []))
        return monitor
