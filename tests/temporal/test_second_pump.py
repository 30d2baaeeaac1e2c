"""A second pump soon after a first (issue 14): on a thin token the detectors relearned the
first pump's run once it outlasted relearn_after_s, and their scales took its moves; the
likelihood learned its raw scores as its normal. A run's points that carry the price on
away (a monotone rise) are no longer relearned (kades.temporal.threshold, RUNAWAY).
Generated series, where the answer is known."""
from __future__ import annotations

import json
import math
import random

import pytest

from kades.temporal.policy import new_monitor, step

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def grid_token(seed: int, pumps: int = 3):
    """1-minute bars of a token on a coarse price grid (a tick of 0.5-2 %, moved in ~5 % of
    minutes), volumes lognormal; after 3 calm days `pumps` pumps of +5 ticks in 5 minutes
    on x30 volume, 30-150 minutes apart. (points, the index of each pump's first bar)."""
    rng = random.Random(seed)
    tick = rng.uniform(0.005, 0.02)
    ticks, minute, points, starts = round(1 / tick), 0, [], []
    due = [3 * 1440 + rng.randrange(600)]
    for _ in range(pumps - 1):
        due.append(due[-1] + 5 + rng.randint(30, 150))
    end = due[-1] + 600
    while minute < end:
        pump = bool(due) and minute == due[0]
        if pump:
            due.pop(0)
            starts.append(len(points))
        for _ in range(5 if pump else 1):
            if pump:
                ticks += 1
            elif rng.random() < 0.05:
                ticks += rng.choice((-1, 1))
            points.append({"time": MINUTE * minute, "price": ticks * tick,
                           "volume": (30 if pump else 1) * 100 * rng.lognormvariate(0, 1)})
            minute += 1
    return points, starts


def thin_token(seed: int, apart_s: tuple[float, float], mean_s: float = 120.0):
    """A token traded at random gaps (mean `mean_s`); after 3 calm days a slow pump (20
    trades at the same gaps, +2 % each), another `apart_s` after its last trade, then 6 calm
    hours. (points, the index of each pump's first trade)."""
    rng = random.Random(seed)
    moment, price, points, starts = 1.7e9, 1.0, [], []
    due, stop = [moment + 3 * DAY + rng.uniform(0, DAY / 2)], math.inf
    while moment < stop:
        pump = bool(due) and moment >= due[0]
        if pump:
            due.pop(0)
            starts.append(len(points))
        for _ in range(20 if pump else 1):
            moment += max(1, round(rng.expovariate(1 / mean_s)))
            price *= math.exp((0.02 if pump else 0.0) + rng.gauss(0, 0.004))
            points.append({"time": moment, "price": price,
                           "volume": 1000 * rng.uniform(0.5, 1.5)})
        if pump and len(starts) == 1:
            due.append(moment + rng.uniform(*apart_s))
        elif pump:
            stop = moment + 6 * HOUR
    return points, starts


def tally(points, starts, within_s: float) -> tuple[list[bool], int]:
    """(each pump caught within `within_s` of its first point, alerts over an hour after
    every pump's start)."""
    monitor = new_monitor()
    alerts = [x["time"] for x in points if step(monitor, x).alert]
    begun = [points[s]["time"] for s in starts]
    caught = [any(0 <= a - b < within_s for a in alerts) for b in begun]
    other = sum(not any(0 <= a - b < HOUR for b in begun) for a in alerts)
    return caught, other


@pytest.mark.parametrize("apart_s, goal", [((0.5 * HOUR, 2 * HOUR), 9),
                                           ((4 * HOUR, 8 * HOUR), 15)],
                         ids=["0.5-2 h apart", "4-8 h apart"])
def test_a_second_slow_pump_on_a_thin_token_is_caught(apart_s, goal):
    """16 seeds: second pumps caught within 40 minutes (their 20 trades) / first pumps /
    other alerts. Measured 0.5-2 h apart 10/16 / 15/16 / 1 (before: 0/16, the first pump
    relearned from its fifth trade), 4-8 h apart 16/16 / 15/16 / 1 (before: 11/16)."""
    first = later = other = 0
    for seed in range(16):
        caught, others = tally(*thin_token(seed, apart_s), within_s=40 * MINUTE)
        first += caught[0]
        later += caught[1]
        other += others
    print(f"\nsecond pumps caught {later}/16, first {first}/16, {other} other alerts")
    assert later >= goal and first >= 15 and other <= 2


def test_later_pumps_on_a_coarse_grid_are_caught():
    """12 seeds, 3 pumps each, caught within 10 minutes / other alerts (36 calm token-days).
    Measured 12/12 first and 22/24 later, 10 other alerts, before and now: the two misses
    are the likelihood's, which learns the first pump's raw scores as its normal (open)."""
    first = later = other = 0
    for seed in range(12):
        caught, others = tally(*grid_token(seed), within_s=10 * MINUTE)
        first += caught[0]
        later += sum(caught[1:])
        other += others
    print(f"\nfirst pumps caught {first}/12, later {later}/24, {other} other alerts")
    assert first == 12 and later >= 21 and other <= 12


def test_a_run_carried_across_states_alerts_as_in_one_go():
    """The run's range is in the state (run_range): a token scored in batches, its state
    saved and read as JSON every 7 points, mid-run too, alerts as one scored in one go."""
    points, _ = thin_token(0, (0.5 * HOUR, 2 * HOUR))
    monitor = new_monitor()
    whole = [step(monitor, x).alert for x in points]
    monitor, batched, mid_run = new_monitor(), [], 0
    for i, x in enumerate(points):
        if i % 7 == 0:
            state = json.loads(json.dumps(monitor.to_state()))
            mid_run += "run_range" in state
            monitor = new_monitor(state)
        batched.append(step(monitor, x).alert)
    assert mid_run and batched == whole
