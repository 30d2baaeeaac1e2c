"""Events that recur, isolated, on a coarse series: each is alerted while they stay rare
(kades.temporal.likelihood, RARE_SHARE); a series that turns spiky all the time falls quiet.
Generated series, where the answer is known."""
from __future__ import annotations

import json
import math
import random

import pytest

from kades.temporal.policy import new_monitor, step

DAY = 86400.0


def spiky(seed: int, step_s: float, every: int, *, points: int = 3000,
          spiky_from: int | None = None) -> tuple[list[float], list[float], list[int]]:
    """A level with 3 % noise and a single point x3 every `every` points; from `spiky_from`
    on, a point x3 every 3 points as well. The times, values and the spikes' indices."""
    rng = random.Random(seed)
    times = [step_s * i for i in range(points)]
    values = [100.0 * math.exp(rng.gauss(0, 0.03)) for _ in times]
    spikes = list(range(every // 2, points, every)) if every else []
    if spiky_from is not None:
        spikes = sorted(set(spikes) | set(range(spiky_from, points, 3)))
    for i in spikes:
        values[i] *= 3.0
    return times, values, spikes


def alerted(times: list[float], values: list[float], monitor=None) -> list[int]:
    monitor = monitor or new_monitor()
    return [i for i, (t, v) in enumerate(zip(times, values))
            if step(monitor, {"time": t, "price": v}).alert]


@pytest.mark.parametrize("step_s", [300.0, 3600.0], ids=["5-minute", "hourly"])
@pytest.mark.parametrize("every", [50, 100])
def test_a_spike_every_50_or_100_points_is_alerted_each_time(step_s, every):
    """From a hunt: the likelihood learned the spikes' raw scores, and after the first
    thousand points a spike every 50 or 100 points was caught 0/59 and 0/30 (an hourly
    KPI's spike every 3 days: only the first)."""
    for seed in (1, 2):
        times, values, spikes = spiky(seed, step_s, every)
        found = alerted(times, values)
        late = [i for i in spikes if i >= 1000]
        print(f"\n{step_s:.0f} s steps, every {every}, seed {seed}: "
              f"{len(set(late) & set(found))}/{len(late)} late spikes alerted, "
              f"{len(set(found) - set(spikes))} other alerts")
        assert set(late) <= set(found)
        assert not set(found) - set(spikes) - {i + 1 for i in spikes}  # a spike or its fall


@pytest.mark.parametrize("step_s", [300.0, 3600.0], ids=["5-minute", "hourly"])
def test_a_series_that_turns_spiky_falls_quiet(step_s):
    """Calm, then a spike every 3 points from midway: a new normal, alerted at its start."""
    for seed in (3, 4):
        times, values, _ = spiky(seed, step_s, 0, spiky_from=1500)
        found = alerted(times, values)
        print(f"\n{step_s:.0f} s steps, seed {seed}: alerts at {found}")
        assert found and all(1500 <= i < 2000 for i in found)
        assert len(found) <= 20


def test_an_outage_of_an_hourly_working_hours_kpi_is_alerted():
    """From a hunt: an hourly KPI's daily steps (08:00 up, 20:00 down: one of each kind a
    day) became the likelihood's normal, and an outage as deep as the evening's drop, at
    14:00, was missed (0/3); at 5-minute steps it was caught."""
    for seed in (1, 2):
        rng = random.Random(seed)
        times = [3600.0 * i for i in range(21 * 24)]
        values = [(300.0 if 8 <= (t % DAY) / 3600 < 20 else 100.0) * (1 + rng.gauss(0, 0.05))
                  for t in times]
        outage = times.index(10 * DAY + 14 * 3600)
        values[outage:outage + 3] = [v / 3 for v in values[outage:outage + 3]]
        found = alerted(times, values)
        assert outage in found
        rhythm = [i for i in found if not outage <= i <= outage + 3]  # the outage and its end
        assert all(times[i] < 3 * DAY for i in rhythm), found  # the rhythm: first days only


def test_the_share_of_events_is_kept_in_the_state():
    """Scored in one go, or in daily calls with the state through JSON between them (as
    temporal-analysis keeps it in Redis): the same alerts. A state from before the share
    was kept (no `event_rates`) carries on."""
    times, values, _ = spiky(5, 3600.0, 60, points=1500)
    whole = alerted(times, values)
    state, found = None, []
    for start in range(0, len(times), 24):
        monitor = new_monitor(state)
        found += [start + i for i in alerted(times[start:start + 24], values[start:start + 24],
                                             monitor)]
        state = json.loads(json.dumps(monitor.to_state()))
    assert found == whole and len(whole) >= 20
    assert state["likelihood"]["event_rates"]
    del state["likelihood"]["event_rates"]
    alerted(times[:24], values[:24], new_monitor(state))
