"""Faults injected at named steps of a handler, for tests only (`KADES_FAULT_POINTS`).

`make reliability` and its short form prove that a failure at any step of a handler loses
nothing and doubles nothing. Each step calls `point(name)` once; with the setting empty (the
default, and always in production) that is a dictionary lookup and nothing else. The steps:

- `after_state`:  after a StateStore update committed (kades.runtime.state)
- `after_db`:     after the handler's database write (temporal, risk-scoring, market)
- `before_sink`:  before extra events are sent to the sink (kades.runtime.sink)
- `after_sink`:   after they were all sent

    KADES_FAULT_POINTS="temporal-analysis:after_state:0.05,sentiment-analysis:before_sink:0.1"
    KADES_FAULT_SEED=7

makes that step of that function (the process's `K_SERVICE`) fail with that probability:
`InjectedFault`, a TemporaryFailure, so the function answers 503 and the Broker retries,
as it would after Redis, PostgreSQL or the sink failed at that moment. The draws are seeded
per (seed, function, step), so a run repeats its choices as far as thread timing allows.
Each injected fault is logged (`fault injected`, with the step) for the tests to count.
"""
from __future__ import annotations

import functools
import logging
import random
import threading

from kades.errors import TemporaryFailure
from kades.logs import log
from kades.settings import SettingsError, settings

logger = logging.getLogger("kades.runtime")

POINTS = ("after_state", "after_db", "before_sink", "after_sink")
VARIABLE = "KADES_FAULT_POINTS"


class InjectedFault(TemporaryFailure):
    """A failure injected on purpose at a step of a handler (answered 503, retried)."""


def parse(text: str) -> dict[tuple[str, str], float]:
    """`function:step:probability,...` -> {(function, step): probability}; SettingsError
    naming every malformed entry."""
    rates, problems = {}, []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        function, _, rest = entry.partition(":")
        step, _, rate = rest.partition(":")
        try:
            probability = float(rate)
        except ValueError:
            probability = -1.0
        if not function or step not in POINTS or not 0 <= probability <= 1:
            problems.append(f"{VARIABLE} entry {entry!r}: expected function:step:probability "
                            f"with step one of {', '.join(POINTS)} and probability 0-1")
            continue
        rates[(function, step)] = probability
    if problems:
        raise SettingsError(problems)
    return rates


class FaultPlan:
    """Which steps of which functions fail, how often, drawn from seeded generators."""

    def __init__(self, rates: dict[tuple[str, str], float], *, seed: int = 0):
        self.rates = rates
        self._draws = {key: random.Random(f"{seed}:{key[0]}:{key[1]}") for key in rates}
        self._lock = threading.Lock()  # a function serves requests on several threads

    def check(self, function: str, step: str) -> None:
        """InjectedFault when this step of `function` is drawn to fail now."""
        rate = self.rates.get((function, step))
        if not rate:
            return
        with self._lock:
            fails = self._draws[(function, step)].random() < rate
        if fails:
            log(logger, logging.WARNING, "fault injected", function=function, step=step)
            raise InjectedFault(f"fault injected {step} in {function} ({VARIABLE})")


@functools.lru_cache(maxsize=1)
def plan() -> FaultPlan:
    """The process's plan, from its settings (empty unless KADES_FAULT_POINTS is set)."""
    config = settings()
    return FaultPlan(parse(config.fault_points), seed=config.fault_seed)


def point(step: str) -> None:
    """A step of a handler: fails here (InjectedFault) when the plan says so."""
    current = plan()
    if current.rates:
        current.check(settings().function_name, step)
