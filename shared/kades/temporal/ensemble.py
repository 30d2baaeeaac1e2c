"""TemporalEnsemble: every detector on one stream, one score per point, contributors named.

The score of each anomaly kind is the highest any member gives it (each member is already
calibrated to "0.5 = as surprising as an alert should be", so a max keeps that meaning);
`explain` names the member behind each kind. Momentum features ride along as evidence. The
level-range member's scores are kept apart (`last_direct`, DIRECT): they meet the threshold as
they are, not through the anomaly likelihood (kades.temporal.threshold).

>>> import random
>>> rng, ensemble, price = random.Random(1), TemporalEnsemble(), 1.0
>>> for second in range(0, 1800, 5):
...     price *= 1 + rng.gauss(0, 0.002)
...     ensemble.learn_one({"time": second, "price": price, "volume": 100 * (1 + rng.random())})
>>> crash = {"time": 1800, "price": price * 0.7, "volume": 400.0}
>>> score, kind, contributors = ensemble.explain(crash)
>>> round(score, 2), kind, contributors[0]
(1.0, 'flash_crash', 'return_spike')
"""
from __future__ import annotations

import math
from typing import Any

from kades.temporal import fused
from kades.temporal.liquidity import LiquidityDropDetector

# ReturnSpike, MultiWindowReturn, Pump, LiquidityDrop, VolatilityRegime, Momentum, LevelRange
MEMBERS = fused.ORDER
# Members whose raw scores are already judged against the series' own range and meet the
# threshold as they are (ThresholdFilter), kept out of the raw parts: the likelihood learns
# a slowly rising raw score as the normal, so through it the slow drifts the level-range
# member is for became the normal (and the irregular simulator fell from 92.2 to 89.7). A
# DIRECT member is named for a kind when it alone reaches an alert's score there (DIRECT_HALF).
DIRECT = frozenset({fused.DIRECT_MEMBER})
DIRECT_HALF = fused.DIRECT_HALF
# Members added since states were first saved (version 2): one missing from a state starts
# afresh (from_state)
ADDED = frozenset({fused.DIRECT_MEMBER})
# Ties go to the kind named first: the most specific, most actionable reading.
KIND_ORDER = ("flash_crash", "price_spike", "liquidity_drop", "pump", "dump", "volume_spike",
              "volatility_regime")
STATE_VERSION = 2
_SCORE, _LEARN = fused.SCORE, fused.LEARN


class TemporalEnsemble:
    """All members on one stream. `log_scale=False` for series that may be zero or negative
    (members that only make sense on prices and volumes keep their own defaults);
    `member_states` carries on from each member's state by name (`from_state`);
    `one_pass=False` steps the members one by one (the same results, slower)."""

    name = "ensemble"
    kinds = KIND_ORDER

    def __init__(self, *, log_scale: bool = True, members: tuple[type, ...] = MEMBERS,
                 member_states: dict[str, Any] | None = None, one_pass: bool = True):
        self.log_scale = log_scale
        self.one_pass = one_pass
        self._members = [member.from_state((member_states or {}).get(member.name),
                                           **self._params(member)) for member in members]
        self.last_time: float | None = None
        self.last_by: dict[str, str] = {}  # kind -> member, of the last point scored
        self.last_direct: dict[str, float] = {}  # kind -> the DIRECT members' score, likewise
        # The default members are stepped in one pass (kades.temporal.fused), which holds
        # their state until asked for it: None = no stepper yet, False = stepped one by one
        # (`one_pass=False`, the reference the one pass is checked against, or members
        # that do not fit it).
        self._step = None

    @property
    def members(self) -> list:
        """The member detectors, their state up to date (from then on they are the truth:
        the caller may change them)."""
        self._release()
        return self._members

    def _stepper(self):
        if self._step is None:
            fits = self.one_pass and fused.fits(self._members)
            self._step = fused.stepper(self._members) if fits else False
        return self._step

    def _release(self) -> None:
        """The stepper's state written back to the members, and the stepper dropped."""
        if self._step:
            self._step.send((fused.SYNC, None))
            self._step = None

    def _synced(self) -> list:
        """The members with the stepper's state written back, the stepper kept."""
        if self._step:
            self._step.send((fused.SYNC, None))
        return self._members

    def __getstate__(self) -> dict[str, Any]:  # pickling: a generator does not pickle
        self._synced()
        return {**self.__dict__, "_step": None}

    @property
    def warmed_up(self) -> bool:
        """Whether the members that score every series are (the level-range member speaks
        only of mean-reverting series, after hours: DIRECT)."""
        return all(member.warmed_up for member in self._synced()
                   if member.kinds and member.name not in DIRECT)

    def score_parts(self, x: dict) -> dict[str, float]:
        step = self._step if self._step is not None else self._stepper()
        if step:
            found = step.send((_SCORE, x))
            if type(found) is tuple:
                parts, self.last_by, self.last_direct = found
                return parts
            self._release()  # None: a point for the members' own way (an error: theirs too)
        parts = dict.fromkeys(KIND_ORDER, 0.0)
        by = {}
        direct = {}
        for member in self._members:
            if member.name in DIRECT:
                continue
            for kind, score in member.score_parts(x).items():
                if score > parts[kind]:
                    parts[kind], by[kind] = score, member.name
        for member in self._members:  # after the others: named when over them (DIRECT_HALF)
            if member.name not in DIRECT:
                continue
            for kind, score in member.score_parts(x).items():
                if score > direct.get(kind, 0.0):
                    direct[kind] = score
                    if score >= DIRECT_HALF and score > parts[kind]:
                        by[kind] = member.name
        self.last_by, self.last_direct = by, direct
        return parts

    direct_members = DIRECT

    def name_direct(self, x: dict, won) -> None:
        """Name in `last_by` the member behind each kind's score as the threshold filter
        holds it (ThresholdFilter.process_one): the DIRECT member for the kinds `won` (its
        score is over the likelihood's there), else the member behind the raw score. The
        ensemble alone names a DIRECT member against the raw scores (DIRECT_HALF), and those
        are not what the threshold meets: a flag raised by the level-range member was named
        after a member whose surprise stayed under it, or the other way round."""
        by, fix = self.last_by, None
        for kind in won:
            if by.get(kind) not in DIRECT:
                fix = fix or {}
                fix[kind] = fused.DIRECT_MEMBER
        for kind, name in by.items():
            if name in DIRECT and kind not in won:
                fix = fix or {}
                fix[kind] = self._raw_member(x, kind)
        if fix:
            named = {**by, **fix}
            # a kind no member scored drops out (_raw_member's None); on most points none does
            self.last_by = (named if all(named.values()) else
                            {kind: name for kind, name in named.items() if name})

    def _raw_member(self, x: dict, kind: str) -> str | None:
        """The member behind `kind`'s raw score at x, DIRECT members left out (rare: when
        the likelihood's surprise is over a DIRECT member's score it was named for)."""
        best, name = 0.0, None
        for member in self._synced():
            if member.name not in DIRECT:
                score = member.score_parts(x).get(kind, 0.0)
                if score > best:
                    best, name = score, member.name
        return name

    def _parts(self, x: dict) -> tuple[dict[str, float], dict[str, str]]:
        return self.score_parts(x), self.last_by

    def score_one(self, x: dict) -> float:
        return max(self.score_parts(x).values())

    def explain(self, x: dict) -> tuple[float, str | None, list[str]]:
        """(score, top kind or None, member names ranked by their best score, scoring first)."""
        parts, by = self._parts(x)
        kind = max(KIND_ORDER, key=lambda k: (parts[k], -KIND_ORDER.index(k)))
        best: dict[str, float] = {}
        for k, name in by.items():
            best[name] = max(best.get(name, 0.0), parts[k])
        ranked = sorted(best, key=lambda name: -best[name])
        return parts[kind], (kind if parts[kind] > 0 else None), ranked

    def learn_one(self, x: dict, _command: int = _LEARN) -> None:
        """Learn from x (advance_one passes ADVANCE: one body, no call more per point)."""
        command = _command
        step = self._step if self._step is not None else self._stepper()
        done = step.send((command, x)) if step else None
        if done is not True:
            self._release()
            if done is not None:
                raise done  # an error past what x is (an overflow), as the members raise it
            for member in self._members:
                if command == fused.LEARN:
                    member.learn_one(x)
                else:
                    member.advance_one(x)
        moment = x["time"]
        last = self.last_time or moment
        self.last_time = moment if moment > last else last  # max(last, moment), no call

    def advance_one(self, x: dict) -> None:
        self.learn_one(x, fused.ADVANCE)

    def rescale_time(self, slowed: float, taught_s: float = math.inf) -> None:
        """The clock now runs `slowed` times slower: each member that learns per second
        says so in the new seconds, as far as the new cadence's `taught_s` taught it
        (kades.temporal.clock, a new cadence)."""
        for member in self.members:  # the stepper's state written back, then rebuilt
            rescale = getattr(member, "rescale_time", None)
            if rescale:
                rescale(slowed, taught_s)

    def evidence(self, x: dict) -> dict[str, Any]:
        """Each member's evidence by name (the window, the move, the baseline it used)."""
        return {member.name: found for member in self._synced()
                if (found := member.evidence(x))}

    def describe(self, x: dict, kind: str, *, member: str | None = None) -> dict[str, Any]:
        """Details of a flag of `kind` at x: the member behind it (`member`, as the threshold
        filter named it, or the ensemble's own) with its window, move and baseline, every
        member that scored, and the momentum context."""
        named = self.last_by
        parts, by = self._parts(x)
        evidence = self.evidence(x)
        _, _, ranked = self.explain(x)
        if member is None:
            member = by.get(kind)
        else:  # x re-scored: the filter's names kept
            self.last_by = named
            if member not in ranked:
                ranked = [member, *ranked]
        details = {"detector": member, **evidence.get(member, {}), "contributors": ranked}
        if "momentum" in evidence:
            details["momentum"] = evidence["momentum"]
        return details

    def to_state(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "last_time": self.last_time,
                "members": {member.name: member.to_state() for member in self._synced()}}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, **params: Any) -> "TemporalEnsemble":
        if state and state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown ensemble state version {state.get('version')!r}")
        members = state["members"] if state else None
        pump, window = (members or {}).get("pump"), (members or {}).get("multi_window")
        if pump and "last_level" not in pump and window and "last_level" in window:
            # a pump state from before dumps were scored: its last level and price grid step
            # are the multi-window member's (both learn them alike, on every point), so the
            # first fall after loading meets the grid bar (kades.temporal.pump.DUMP_GRIDS)
            members = {**members, "pump": {**pump, "last_level": window["last_level"],
                                           "resolution": window["resolution"]}}
        ensemble = cls(**params, member_states=members)
        if state:
            ensemble.last_time = state["last_time"]
            # a member added since the state was saved starts afresh, on the others' clock
            # (it learns nothing of the time before it): it then takes the one pass with
            # them (fused.fits), where on a clock of its own every such token went slower
            times = {member.last_time for member in ensemble._members
                     if member.name in state["members"]}
            if len(times) == 1:
                for member in ensemble._members:
                    if member.name in ADDED and member.name not in state["members"]:
                        member.last_time = next(iter(times))
        return ensemble

    def _params(self, member) -> dict[str, Any]:
        liquidity = member is LiquidityDropDetector or isinstance(member, LiquidityDropDetector)
        return {} if liquidity else {"log_scale": self.log_scale}
