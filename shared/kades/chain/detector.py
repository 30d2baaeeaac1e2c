"""What the chain and whale detectors share (the counterpart of kades.temporal.base).

A detector is a small frozen dataclass: keyword-only parameters spelled out with their unit,
each declared as the ChainThresholds field it comes from (`setting`: its default is that
field's, and `from_thresholds` takes the settings' value), checked when it is made (every bad
one named in one ValueError), and a `find(state, token, ..., time_s, slot)` that reads
and updates a typed token state (kades.chain.state, kades.whales.state) and returns the
anomalies found. Detectors hold no state of their own: one instance serves every token.

>>> Example = dataclasses.make_dataclass("Example", [("share", float, setting("top1_share"))],
...                                      bases=(ChainDetector,), frozen=True, kw_only=True)
>>> Example(), Example.from_thresholds(ChainThresholds(top1_share=0.4))
(Example(share=0.3), Example(share=0.4))
>>> Example(share=2.0)
Traceback (most recent call last):
ValueError: share must be at most 1 (got 2.0)
>>> alerted = {}
>>> alert_once(alerted, "k", 10.0, cooldown_s=60.0), alert_once(alerted, "k", 30.0, cooldown_s=60.0)
(True, False)
"""
from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar, TypeVar

from kades.chain.thresholds import ChainThresholds

DEFAULTS = ChainThresholds()
Detector = TypeVar("Detector", bound="ChainDetector")


def setting(name: str, *, scale: float = 1) -> dataclasses.Field:
    """A parameter that is ChainThresholds' `name` (times `scale`), its default included."""
    default = getattr(DEFAULTS, name)
    return dataclasses.field(default=default * scale if scale != 1 else default,
                             metadata={"setting": name, "scale": scale})


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChainDetector:
    """Base of the chain and whale detectors. Subclasses set `kind` (their anomaly type) and
    `name` (the `detector` of their anomalies) and declare their parameters with `setting`."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        problems = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value <= 0:
                problems.append(f"{field.name} must be positive (got {value})")
            elif field.name.endswith(("share", "tolerance")) and value > 1:
                problems.append(f"{field.name} must be at most 1 (got {value})")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_thresholds(cls, t: ChainThresholds):
        """The detector with the settings' values of its parameters."""
        values = {}
        for field in dataclasses.fields(cls):
            value, scale = getattr(t, field.metadata["setting"]), field.metadata["scale"]
            values[field.name] = value * scale if scale != 1 else value
        return cls(**values)


def configured(kind: type[Detector], t: ChainThresholds) -> Detector:
    """`kind` with the settings' thresholds, made once per thresholds (it holds nothing of a
    token, so one instance serves them all). The very thresholds object of the last call is
    recognised without hashing its ~40 fields: that is every call but the first, deployed."""
    last = _LAST.get(kind)
    if last is None or last[0] is not t:
        last = _LAST[kind] = (t, _made(kind, t))
    return last[1]


@functools.lru_cache(maxsize=64)
def _made(kind: type[Detector], t: ChainThresholds) -> Detector:
    return kind.from_thresholds(t)


_LAST: dict[type, tuple[ChainThresholds, "ChainDetector"]] = {}  # kind -> (thresholds, detector)


def alert_once(alerted: dict[str, float], key: str, time_s: float, *, cooldown_s: float) -> bool:
    """True (and remembered) unless `key` was alerted less than `cooldown_s` before. Keys
    of this kind ("kind:wallet") that cooled down are forgotten then: they suppress nothing
    any more, and a token traded by ever new wallets grew its state with one per wallet."""
    if time_s - alerted.get(key, -1e18) < cooldown_s:
        return False
    for cooled in [k for k, at in alerted.items() if ":" in k and time_s - at >= cooldown_s]:
        del alerted[cooled]
    alerted[key] = time_s
    return True
