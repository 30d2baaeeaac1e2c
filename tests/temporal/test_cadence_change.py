"""A series whose cadence changes (1-minute points, then 5-minute or hourly ones): the same
coarser step again and again is a new resolution (kades.temporal.threshold, CADENCE_STEPS),
so the coarser part runs on the slowed clock a series of that step runs on from the start; a
tick series' quiet stretches (irregular multiples of its minute) are not a new cadence.
Generated series, where the answer is known."""
from __future__ import annotations

import json
import math
import random

import pytest

from kades.temporal.clock import CADENCE_GAP_STEPS, CADENCE_STEPS, CLOCK_REF_S
from kades.temporal.policy import new_monitor, step

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def cadence_series(seed: int, kind: str, phases: list[tuple[float, float]], crashes: int = 4):
    """Calm points at each (step, days) of `phases` in turn, a random walk of 1 % log returns
    ("walk") or a level with N(0, 1) noise ("level"), with `crashes` drops of 15 sd in each
    phase (none in the first tenth of the series, nor in the first tenth of a phase).
    (times, values, crash indices, phase of each point)."""
    rng, moment, times, phase_of = random.Random(seed), 1.7e9, [], []
    for phase, (step_s, days) in enumerate(phases):
        for _ in range(int(days * DAY / step_s)):
            moment += step_s
            times.append(moment)
            phase_of.append(phase)
    at = set()
    for phase in range(len(phases)):
        start, end = phase_of.index(phase), len(phase_of) - phase_of[::-1].index(phase) - 1
        start = max(start + min((end - start) // 10, 30), len(times) // 10)
        at.update(rng.sample(range(start, end - 3), crashes))
    level, values = 0.0, []
    for i in range(len(times)):
        if kind == "walk":
            level += rng.gauss(0, 0.01) - (0.15 if i in at else 0.0)
            values.append(100.0 * math.exp(level))
        else:
            values.append(100.0 + rng.gauss(0, 1) - (15.0 if i in at else 0.0))
    return times, values, sorted(at), phase_of


def alert_points(monitor, times, values, offset: int = 0) -> list[int]:
    return [offset + i for i, (t, v) in enumerate(zip(times, values))
            if step(monitor, {"time": t, "price": v}).alert]


def tally(phases, alerts_of=None):
    """Over 3 seeds and both kinds: (caught, crashes, other alerts) in the last phase, and
    the monitors' final resolutions."""
    caught = crashes = other = 0
    resolutions = []
    for kind in ("walk", "level"):
        for seed in range(3):
            times, values, at, phase_of = cadence_series(seed, kind, phases)
            monitor = new_monitor()
            found = (alerts_of or alert_points)(monitor, times, values)
            last = [i for i in at if phase_of[i] == len(phases) - 1]
            caught += sum(any(i <= a <= i + 2 for a in found) for i in last)
            crashes += len(last)
            other += sum(phase_of[a] == len(phases) - 1
                         and not any(i <= a <= i + 2 for i in at) for a in found)
            resolutions.append(monitor.clock.resolution)
    return caught, crashes, other, resolutions


def test_one_minute_points_turned_five_minute_take_the_five_minute_resolution():
    """3 days of 1-minute points, then 7 days of 5-minute ones: measured 24/24 crashes of the
    5-minute part caught, 1 other alert in its 42 series-days (2 before the switch's
    rescaling, SeriesClock.slowed). Before, the 1-minute resolution stayed and the 5-minute
    part ran on the real clock: 23/24, 34 other alerts."""
    caught, crashes, other, resolutions = tally([(MINUTE, 3), (5 * MINUTE, 7)])
    print(f"\n1 -> 5 minutes: {caught}/{crashes} crashes caught, {other} other alerts")
    assert resolutions == [5 * MINUTE] * 6
    assert caught >= crashes - 1 and other <= 4


def test_one_minute_points_turned_hourly_stay_quiet():
    """3 days of 1-minute points, then 30 days of hourly ones: measured 24/24 caught, 1 other
    alert in 180 series-days (2 while a run that taught nothing was rescaled: see
    test_a_switch_whose_run_taught_nothing_keeps_the_members_scales). Before: 23/24, 87 (the
    resolution was taken anew only once it was 20 times shorter than the typical step, 26
    hours on; the hours before ran on the real clock). An hour is a gap's length after
    minutes, so CADENCE_GAP_STEPS of them suffice."""
    caught, crashes, other, resolutions = tally([(MINUTE, 3), (HOUR, 30)])
    print(f"\n1 minute -> 1 hour: {caught}/{crashes} crashes caught, {other} other alerts")
    assert resolutions == [HOUR] * 6
    assert caught >= crashes - 1 and other <= 4


def test_a_cadence_taken_up_in_two_calls_alerts_as_in_one():
    """The run of steps is in the state: a series scored in two calls, cut in the middle of
    the run, alerts as one scored in one go; a state from before it (no `cadence`) carries on
    and finds the new cadence from its next steps."""
    times, values, _, phase_of = cadence_series(5, "walk", [(MINUTE, 3), (5 * MINUTE, 7)])
    whole = alert_points(new_monitor(), times, values)
    cut = phase_of.index(1) + CADENCE_STEPS // 2
    first = new_monitor()
    found = alert_points(first, times[:cut], values[:cut])
    state = json.loads(json.dumps(first.to_state()))
    assert state["cadence"][:2] == [5 * MINUTE, CADENCE_STEPS // 2]
    second = new_monitor(state)
    found += alert_points(second, times[cut:], values[cut:], offset=cut)
    assert found == whole and second.clock.resolution == 5 * MINUTE
    assert second.clock.scale == 5 * MINUTE / CLOCK_REF_S
    # a run saved before it counted what it taught (two elements): every step taught
    shorter = new_monitor({**state, "cadence": state["cadence"][:2]})
    assert alert_points(shorter, times[cut:], values[cut:], offset=cut) == [
        a for a in whole if a >= cut]
    del state["cadence"]
    older = new_monitor(state)
    alert_points(older, times[cut:], values[cut:])
    assert older.clock.resolution == 5 * MINUTE


def test_ticks_after_random_readings_take_their_grid_again():
    """1,500 readings at random times (exponential gaps, mean 5 s), then ticks 1, 2, 5 or
    60 s apart: the resolution is the second again, as from a fresh start (before: the
    running median of the random steps stayed, 2.0-2.05 s, and the steps stayed off grid)."""
    for seed in (1, 2, 3):
        rng, monitor, moment = random.Random(seed), new_monitor(), 1.7e9
        for _ in range(1500):
            moment += max(1.0, rng.expovariate(1 / 5.0))
            step(monitor, {"time": moment, "price": 100.0 + rng.gauss(0, 1)})
        assert monitor.clock.off_grid > 0.5
        for _ in range(1500):
            moment += rng.choice([1, 1, 2, 5, 60])
            step(monitor, {"time": moment, "price": 100.0 + rng.gauss(0, 1)})
        assert monitor.clock.resolution == 1.0 and monitor.clock.off_grid < 0.1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quiet_stretches_of_ticks_are_not_a_new_cadence(seed):
    """Minute ticks with quiet stretches, including runs of up to CADENCE_STEPS - 1 equal
    2-minute steps and CADENCE_GAP_STEPS - 1 equal hour-long ones (the pump tapes' longest:
    7 and 1): the resolution stays the minute and the clock the real one. (A guard: passes
    before the change too.)"""
    rng, monitor, moment = random.Random(seed), new_monitor(), 1.7e9
    for _ in range(200):
        for _ in range(rng.randint(5, 30)):
            moment += MINUTE * (1 if rng.random() < 0.6 else rng.randint(2, 10))
            step(monitor, {"time": moment, "price": 100.0 + rng.gauss(0, 1)})
        run, length = rng.choice([(2 * MINUTE, CADENCE_STEPS - 1), (HOUR, CADENCE_GAP_STEPS - 1)])
        for gap in [run] * length + [MINUTE]:  # then a tick again
            moment += gap
            step(monitor, {"time": moment, "price": 100.0 + rng.gauss(0, 1)})
    assert monitor.clock.resolution == MINUTE and monitor.clock.scale == 1.0


def test_one_minute_points_turned_hourly_with_jittered_times_take_the_hour():
    """The same as turned hourly, with times a few milliseconds off the minute and hour (a
    poller's clock, float seconds): the steps of a new cadence are equal to CADENCE_TOLERANCE,
    not to float rounding (GRID_TOLERANCE, 3.6 ms at an hour). Measured 24/24 caught, 1 other
    alert (2 while a run that taught nothing was rescaled); with float rounding the run never
    formed and the hours ran on the real clock for a day: 22/24, 74 other alerts."""
    def jittered(monitor, times, values):
        rng = random.Random(99)
        return alert_points(monitor, [t + rng.uniform(-0.005, 0.005) for t in times], values)
    caught, crashes, other, resolutions = tally([(MINUTE, 3), (HOUR, 30)], jittered)
    print(f"\n1 minute -> 1 hour, jittered: {caught}/{crashes} crashes caught, {other} other alerts")
    assert all(abs(r - HOUR) < 1.0 for r in resolutions)
    assert caught >= crashes - 1 and other <= 4


def thin_token_with_bursts(seed: int, days: float = 14.0):
    """A thin token's trades on whole seconds (on-chain block times), at random (exponential
    gaps, mean 3 minutes), and 20 bursts of 20-60 trades 1 s apart (a bot), its price moving
    0.15 % a trade in them (0.4 % between the random trades): no event anywhere. Points."""
    rng = random.Random(seed)
    moment, price, points = 1.7e9, 1.0, []
    end = moment + days * DAY
    bursts = sorted(rng.uniform(moment + DAY, end) for _ in range(20))
    while moment < end:
        if bursts and moment >= bursts[0]:
            bursts.pop(0)
            for _ in range(rng.randint(20, 60)):
                moment += 1
                price *= math.exp(rng.gauss(0, 0.0015))
                points.append({"time": moment, "price": price, "volume": rng.uniform(500, 1500)})
        moment += max(1, round(rng.expovariate(1 / 180)))
        price *= math.exp(rng.gauss(0, 0.004))
        points.append({"time": moment, "price": price, "volume": rng.uniform(500, 1500)})
    return points


def test_bursts_of_trades_a_second_apart_are_no_cadence():
    """A burst of a thin token's trades 1 s apart repeats one step, but it is a burst, not a
    new cadence: a step over 4 times shorter than a randomly timed series' median step
    (LOG_STRAY_FACTOR) is not taken as its resolution. Measured (3 seeds, 14 days each): 2
    alerts, as before the cadence rule; with the bursts taken as a cadence of 1 s, 24 (0.6 a
    day: moves of 0.3-0.4 % in a second, on the real clock), and on whole seconds every later
    step is a multiple of that second, so the run of 1 s steps never ended and the next pair
    of trades a second apart took the second again."""
    alerts, seconds = 0, 0
    for seed in (1, 2, 3):
        monitor = new_monitor()
        for point in thin_token_with_bursts(seed):
            alerts += bool(step(monitor, point).alert)
            seconds += monitor.clock.resolution is not None and monitor.clock.resolution <= 1.0
    print(f"\nthin token with bursts: {alerts} alerts, {seconds} points on a 1 s resolution")
    assert seconds == 0 and alerts <= 4


def alerts_after_the_switch(kind: str, coarse_s: float, seeds: int = 8, points: int = 60) -> int:
    """Alerts in the first `points` points after calm 1-minute points (a day) turn into
    steps of `coarse_s`: "walk" and "level" as in `cadence_series` (its moves per point do
    not grow with the step), or "brownian", a walk of 1 % per minute whose moves grow with
    the square root of the step (a price sampled more sparsely)."""
    alerts = 0
    for seed in range(seeds):
        times, values, _, phase_of = cadence_series(seed, "walk" if kind == "brownian" else kind,
                                                    [(MINUTE, 1), (coarse_s, 1)], crashes=0)
        if kind == "brownian":
            rng, level, values = random.Random(seed), 0.0, []
            for before, moment in zip([times[0] - MINUTE] + times, times):
                level += rng.gauss(0, 0.01 * math.sqrt((moment - before) / MINUTE))
                values.append(100.0 * math.exp(level))
        switch = phase_of.index(1)
        monitor = new_monitor()
        found = alert_points(monitor, times[:switch + points], values[:switch + points])
        alerts += sum(a >= switch for a in found)
    return alerts


def test_the_switch_to_a_coarser_cadence_raises_no_alerts():
    """The run of coarser steps is taught on the old clock until it is taken (CADENCE_STEPS),
    and the clock then slows at once, so the movement per second the members had learned
    jumped (a walk's 1 % per step, learned over 900 s, then seen over 90). Now what the
    return-spike and volatility members learned per second (per sqrt second) of the old clock
    is read in the new one's seconds as the clock slows (SeriesClock.slowed): the run's steps
    taught them, so they hold what a series of that step learns from the start. Calm series
    (a day of 1-minute points), 8 seeds, alerts in the 60 points after the switch, measured
    walk / level / brownian: 1 -> 15 minutes 2 / 0 / 2 (before: 26 / 17 / 31, mostly
    volatility_regime), 1 -> 10 minutes 0 / 0 / 0 (9 / 6 / 24), 1 -> 30 minutes 0 / 0 / 0
    (9 / 12 / 27). Crashes of 15 sd after the switch are caught as before (`tally`, 1 -> 15
    minutes: 24/24, 0 other alerts; before: the same)."""
    figures = {(kind, minutes): alerts_after_the_switch(kind, minutes * MINUTE)
               for minutes in (15, 10, 30) for kind in ("walk", "level", "brownian")}
    print("\nalerts within 60 points of the switch:",
          ", ".join(f"1 -> {m} min {kind} {n}" for (kind, m), n in figures.items()))
    caught, crashes, other, resolutions = tally([(MINUTE, 3), (15 * MINUTE, 14)])
    print(f"1 -> 15 minutes: {caught}/{crashes} crashes caught, {other} other alerts")
    for minutes in (15, 10, 30):
        assert sum(n for (_, m), n in figures.items() if m == minutes) <= 6
    assert resolutions == [15 * MINUTE] * 6 and caught >= crashes - 1 and other <= 4


def test_a_switch_whose_run_taught_nothing_keeps_the_members_scales():
    """1-minute points turned hourly: the hourly steps before the new cadence is taken are
    gaps (clock.GAP_FACTOR), which teach the members nothing (SeriesClock.taught_s 0), so
    what they hold per second is what the minutes taught. Rescaled as if the hours had
    taught it (`slowed`, 40), the volatility baseline of a walk was 60 times too high and x4
    volatility regimes went unseen for days (from a review: 6 seeds, the regime from 20
    hourly points after the switch, caught within 40 points 2/6; unrescaled 6/6). A member
    rescales only what the run taught it for at least its half-life (base.taught)."""
    caught, taught = 0, []
    for seed in range(6):
        rng, moment, level, points = random.Random(seed), 1.7e9, 0.0, []
        for i in range(1440 + 90):
            moment += MINUTE if i < 1440 else HOUR
            level += rng.gauss(0, 0.04 if i >= 1440 + CADENCE_GAP_STEPS + 20 else 0.01)
            points.append({"time": moment, "price": 100.0 * math.exp(level)})
        monitor, alerts, taken = new_monitor(), [], None
        for i, x in enumerate(points):
            alerts += [i] if step(monitor, x).alert else []
            if monitor.clock.slowed != 1.0:
                taken = i
                taught.append(getattr(monitor.clock, "taught_s", None))
        assert taken == 1440 + CADENCE_GAP_STEPS - 1
        start = taken + 1 + 20
        assert not any(1440 <= a < start for a in alerts)
        caught += any(start <= a < start + 40 for a in alerts)
    print(f"\n1 minute -> 1 hour, x4 regime 20 points after the switch: caught {caught}/6")
    assert caught >= 5 and taught == [0.0] * 6
