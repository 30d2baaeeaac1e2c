"""A daily rhythm (a KPI that steps up at 08:00 and down at 20:00) is the series' normal:
an alert that recurs at the same time of day on 2 of the 3 days before is kept quiet
(kades.temporal.threshold, RECUR_DAYS), unless it is twice as large (RECUR_ESCALATION); so
is a weekly one (weekday and weekend levels) after its first two weeks (RECUR_WEEKS).
Generated series, where the answer is known."""
from __future__ import annotations

import json
import math
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


def daily_batch(seed: int, step_s: float, days: int = 21) -> tuple[list[float], list[float]]:
    """A calm KPI (3 % noise) that rises x1.5 for 15 minutes every day at 03:00."""
    rng = random.Random(seed)
    times = [step_s * i for i in range(int(days * DAY / step_s))]
    values = [100.0 * math.exp(rng.gauss(0, 0.03)) for _ in times]
    for i, t in enumerate(times):
        if 3 * 3600 <= t % DAY < 3 * 3600 + 900:
            values[i] *= 1.5
    return times, values


@pytest.mark.parametrize("step_s", [60.0, 300.0], ids=["1-minute", "5-minute"])
def test_an_event_far_larger_than_the_rhythm_at_its_time_is_alerted(step_s):
    """From a hunt: the daily batch x15 on day 10, or an 80 % outage at 03:00 beside it,
    was kept quiet as the rhythm (0/2 and 0/3 before)."""
    for seed in (1, 2):
        for change in (15.0, 0.2 / 1.5):  # the batch x15, an outage under it
            times, values = daily_batch(seed, step_s)
            start = times.index(10 * DAY + 3 * 3600)
            for i in range(start, start + int(900 / step_s)):
                values[i] *= change
            found = alert_times(times, values)
            assert any(0 <= t - times[start] <= 2 * step_s for t in found), (seed, change)
            quiet_days = {int(t // DAY) for t in found if 3 * 3600 - 600 <= t % DAY <= 4 * 3600}
            assert len(quiet_days - {0, 1, 2, 10}) <= 2, sorted(quiet_days)


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


MONDAY = 4 * DAY  # 1970-01-05, a Monday


def weekdays_and_weekends(seed: int, step_s: float, weeks: int = 5):
    """100 on weekdays, 50 on Saturdays and Sundays, 5 % noise, from a Monday."""
    rng = random.Random(seed)
    times = [MONDAY + step_s * i for i in range(int(weeks * 7 * DAY / step_s))]
    return times, [(50.0 if (t - MONDAY) // DAY % 7 >= 5 else 100.0) * (1 + rng.gauss(0, 0.05))
                   for t in times]


@pytest.mark.parametrize("step_s", [300.0, 3600.0], ids=["5-minute", "hourly"])
def test_a_weekly_rhythm_alerts_in_its_first_weeks_only(step_s):
    """Before: every Saturday and every Monday alerted, 9-11 alerts in 5 weeks. Now a flag
    at the same time of week on both weeks before is the rhythm (RECUR_WEEKS)."""
    for seed in (1, 2, 3):
        found = alert_times(*weekdays_and_weekends(seed, step_s))
        late = [t for t in found if t >= MONDAY + 16 * DAY]  # after the third Monday
        print(f"\n{step_s:.0f} s steps, seed {seed}: {len(found)} alerts in 5 weeks, "
              f"{len(late)} after the third Monday")
        assert len(late) <= 2


def test_an_outage_in_a_weekly_rhythm_is_still_alerted():
    """A Wednesday outage, and a weekend far deeper than the usual (x0.2), in week 4."""
    times, values = weekdays_and_weekends(7, 300.0)
    outage = times.index(MONDAY + 23 * DAY + 14 * 3600)
    deeper = times.index(MONDAY + 26 * DAY)  # the fourth Saturday, 00:00
    values[outage:outage + 6] = [v / 3 for v in values[outage:outage + 6]]
    values[deeper:deeper + 6] = [v / 5 for v in values[deeper:deeper + 6]]
    found = alert_times(times, values)
    for start in (outage, deeper):
        assert any(0 <= t - times[start] <= 900 for t in found), start
