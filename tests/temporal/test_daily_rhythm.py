"""A daily rhythm (a KPI that steps up at 08:00 and down at 20:00) is the series' normal:
an alert that recurs at the same time of day on 2 of the 3 days before is kept quiet
(kades.temporal.threshold, RECUR_DAYS). Generated series, where the answer is known."""
from __future__ import annotations

import json
import random

import pytest

from kades.temporal.policy import new_monitor, step

DAY = 86400.0


def working_hours(seed: int, step_s: float, days: int = 14) -> tuple[list[float], list[float]]:
    """300 from 08:00 to 20:00, 100 otherwise, 5 % noise."""
    rng = random.Random(seed)
    times = [step_s * i for i in range(int(days * DAY / step_s))]
    return times, [(300.0 if 8 <= (t % DAY) / 3600 < 20 else 100.0) * (1 + rng.gauss(0, 0.05))
                   for t in times]


def alert_times(times, values, monitor=None) -> list[float]:
    monitor = monitor or new_monitor()
    return [t for t, v in zip(times, values) if step(monitor, {"time": t, "price": v}).alert]


@pytest.mark.parametrize("step_s", [60.0, 300.0], ids=["1-minute", "5-minute"])
def test_a_working_hours_kpi_alerts_on_its_first_days_only(step_s):
    """Before: both steps alerted every day, 28 alerts in 14 days."""
    for seed in (1, 2):
        found = alert_times(*working_hours(seed, step_s))
        print(f"\n{step_s:.0f} s steps, seed {seed}: {len(found)} alerts in 14 days")
        assert len(found) <= 6
        assert all(t < 3 * DAY for t in found)


def test_an_event_at_another_time_of_day_is_still_alerted():
    times, values = working_hours(3, 60.0)
    crash = times.index(10 * DAY + 14 * 3600)  # day 10, 14:00: inside working hours
    values[crash:crash + 30] = [v / 3 for v in values[crash:crash + 30]]
    found = alert_times(times, values)
    assert any(0 <= t - times[crash] <= 120 for t in found)


def test_the_rhythm_is_kept_in_the_state():
    """Scored in one go, or in daily calls with the state through JSON between them (as
    temporal-analysis keeps it in Redis): the same alerts."""
    times, values = working_hours(4, 300.0, days=6)
    whole = alert_times(times, values)
    state, found, per_day = None, [], int(DAY / 300.0)
    for start in range(0, len(times), per_day):
        monitor = new_monitor(state)
        found += alert_times(times[start:start + per_day], values[start:start + per_day], monitor)
        state = json.loads(json.dumps(monitor.to_state()))
    assert found == whole and len(whole) == 4
