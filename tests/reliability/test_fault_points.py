"""The fault hook of the output accounting (kades.runtime.faults): parsed in one place,
seeded, off unless set, and a temporary failure (answered 503, so the Broker retries)."""
from __future__ import annotations

import pytest

from kades import clients
from kades.runtime import faults
from kades.settings import SettingsError


def test_points_parse_and_bad_entries_are_named():
    assert faults.parse(" temporal-analysis:after_state:0.05,sentiment-analysis:after_sink:1 ") == {
        ("temporal-analysis", "after_state"): 0.05, ("sentiment-analysis", "after_sink"): 1.0}
    assert faults.parse("") == {}
    with pytest.raises(SettingsError) as error:
        faults.parse("risk-scoring:after_commit:0.1,x:after_db:2")
    assert len(error.value.problems) == 2 and "after_commit" in str(error.value)


def test_a_plan_fails_only_its_steps_at_its_rate_repeatably():
    def draws(seed: int) -> list[bool]:
        plan = faults.FaultPlan({("f", "after_db"): 0.3}, seed=seed)
        out = []
        for _ in range(400):
            try:
                plan.check("f", "after_db")
                out.append(False)
            except faults.InjectedFault:
                out.append(True)
        return out
    first = draws(1)
    assert first == draws(1) and first != draws(2)
    assert 80 < sum(first) < 160
    faults.FaultPlan({("f", "after_db"): 1.0}).check("g", "after_db")   # another function
    faults.FaultPlan({("f", "after_db"): 1.0}).check("f", "after_state")  # another step


def test_an_injected_fault_is_a_temporary_failure_and_off_by_default(fresh_settings):
    assert isinstance(faults.InjectedFault("x"), clients.TEMPORARY_ERRORS)
    faults.plan.cache_clear()  # the plan is read from the settings once per process
    faults.point("after_state")  # nothing set: nothing happens
    fresh_settings.setenv("KADES_FAULT_POINTS", "kades:after_state:1")  # "kades": no K_SERVICE
    faults.plan.cache_clear()
    try:
        with pytest.raises(faults.InjectedFault):
            faults.point("after_state")
    finally:
        fresh_settings.delenv("KADES_FAULT_POINTS")
        faults.plan.cache_clear()
