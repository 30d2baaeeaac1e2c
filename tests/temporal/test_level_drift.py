"""A sensor that fails by drifting: a slow ramp off a calm, mean-reverting level, too slow for
any member that looks back minutes (the multi-window member learns a steady ramp as its bias
within the hour). The level-range member (kades.temporal.levelrange) judges the 5-minute level
against a 1-day mean, in 1-day mean |deviations|, only while the series reverts to its mean.
Generated series through the live policy (kades.temporal.policy), where the answer is known."""
from __future__ import annotations

import json

import numpy as np

from kades.jsontext import compact_json
from kades.temporal.policy import new_monitor, step

DAY = 86400.0
START = 2 * DAY  # two calm days before the ramp: the member warms up in 6 hours


def ramp(seed: int, step_s: float, rate_sd_h: float, hours: float, *, hold_h: float = 0.0,
         noise: str = "gauss") -> tuple[np.ndarray, np.ndarray]:
    """Noise of sd 1 around 100 (Gaussian, or an AR(1) of 0.9 scaled to sd 1) for two days,
    then a ramp of `rate_sd_h` sd an hour for `hours`, then held where it got for `hold_h`."""
    rng = np.random.default_rng(seed)
    n = int((START + (hours + hold_h) * 3600) / step_s)
    times = np.arange(n) * step_s
    noise_values = rng.normal(0, 1, n)
    if noise == "ar90":
        values = np.zeros(n)
        for i in range(1, n):
            values[i] = 0.9 * values[i - 1] + noise_values[i]
        noise_values = values / values.std()
    into = np.clip(times - START, 0.0, hours * 3600) / 3600
    return times, 100 + noise_values + rate_sd_h * into


def calm(kind: str, seed: int, step_s: float, days: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    n = int(days * DAY / step_s)
    times = np.arange(n) * step_s
    if kind == "gauss":
        return times, 100 + rng.normal(0, 1, n)
    if kind == "ar90":
        noise, values = rng.normal(0, 1, n), np.zeros(n)
        for i in range(1, n):
            values[i] = 0.9 * values[i - 1] + noise[i]
        return times, 100 + values
    if kind == "walk":
        return times, 10 * np.exp(np.cumsum(rng.normal(0, 0.002 * np.sqrt(step_s / 60), n)))
    if kind == "daily":
        return times, 100 + 20 * np.sin(2 * np.pi * times / DAY) + rng.normal(0, 1, n)
    raise ValueError(kind)


def run(times, values, monitor=None) -> tuple[list[tuple], list[float], int]:
    """The alerts (time, kind, member, details), the level-range member's score at every
    point (0 when it did not score) and how many points it scored."""
    monitor = monitor or new_monitor()
    alerts, scores, scored = [], [], 0
    for moment, value in zip(times, values):
        verdict = step(monitor, {"time": float(moment), "price": float(value)})
        direct = getattr(monitor.detector, "last_direct", {})  # (none before the member)
        scored += bool(direct)
        scores.append(max(direct.values(), default=0.0))
        if verdict.alert:
            flag = verdict.flags[0]
            alerts.append((float(moment), verdict.alert, verdict.top_detector, flag["details"]))
    return alerts, scores, scored


def test_a_slow_ramp_off_a_calm_level_is_caught():
    """A quarter of the noise's sd a minute (15 sd an hour), 1-minute points: never alerted
    before (0/3, the longest window is 15 minutes); now 3/3, by the level-range member, 33-35
    minutes in (8-9 sd off), and nothing in the two calm days before."""
    firsts = []
    for seed in range(3):
        times, values = ramp(seed, 60.0, 15.0, 6.0)
        alerts, _, _ = run(times, values)
        assert not [a for a in alerts if a[0] < START], seed
        during = [a for a in alerts if a[0] >= START]
        assert during and during[0][2] == "level_range" and during[0][1] == "price_spike"
        firsts.append((during[0][0] - START) / 60)
    print(f"\n15 sd/h ramp, 1-minute points: caught 3/3, first alert after "
          f"{', '.join(f'{m:.0f}' for m in firsts)} min")
    assert max(firsts) <= 45


def test_slower_ramps_down_and_on_correlated_noise_are_caught():
    """5 sd an hour for 12 hours at 5-minute points, down on Gaussian noise and up on an
    AR(0.9) one (its long deviation 2.3 typical steps): each caught, none before the ramp."""
    found = []
    for noise, rate in (("gauss", -5.0), ("ar90", 5.0)):
        for seed in range(2):
            times, values = ramp(seed, 300.0, rate, 12.0, noise=noise)
            alerts, _, _ = run(times, values)
            assert not [a for a in alerts if a[0] < START], (noise, seed)
            during = [a for a in alerts if a[0] >= START]
            assert during, (noise, seed)
            assert during[0][1] == ("price_spike" if rate > 0 else "flash_crash")
            found.append(f"{noise} {rate:+.0f} sd/h s{seed}: "
                         f"{(during[0][0] - START) / 3600 * abs(rate):.1f} sd off")
    print("\n" + "; ".join(found))


def test_calm_mean_reverting_noise_is_scored_and_stays_quiet():
    """The member scores calm Gaussian and AR(0.9) noise at nearly every point once warmed up
    (it is for them), and its score stays far under an alert's: no alert in 4 days at
    1-minute points or 14 at 5-minute ones (3 seeds)."""
    for kind in ("gauss", "ar90"):
        for step_s, days in ((60.0, 4.0), (300.0, 14.0)):
            per_day, highest = [], 0.0
            for seed in range(3):
                times, values = calm(kind, seed, step_s, days)
                alerts, scores, scored = run(times, values)
                warm = int(0.5 * DAY / step_s)  # after 12 hours
                assert scored >= 0.95 * (len(times) - warm), (kind, step_s, seed, scored)
                highest = max(highest, max(scores))
                assert not [a for a in alerts if a[2] == "level_range"]
                per_day.append(len(alerts) / days)
            print(f"\n{kind} {step_s:.0f} s, {days:.0f} days: alerts a day "
                  f"{', '.join(f'{p:.2f}' for p in per_day)} (all members), level-range "
                  f"score at most {highest:.3f}", end="")
            assert highest < 0.2 and max(per_day) <= 0.25


def test_a_random_walk_and_a_daily_cycle_are_never_scored_by_the_member():
    """Only a mean-reverting series has a range: a random walk's long deviation is 12-67
    typical steps, a daily cycle's about 11 (the gate is 4); the member never scores them."""
    from kades.temporal.levelrange import LevelRangeDetector
    for kind in ("walk", "daily"):
        for step_s in (60.0, 300.0):
            times, values = calm(kind, 0, step_s, 4.0)
            monitor = new_monitor()
            _, scores, scored = run(times, values, monitor)
            member = [m for m in monitor.detector.members if isinstance(m, LevelRangeDetector)][0]
            assert member.warmed_up and not member.mean_reverting()
            ratio = member.deviation / member.step
            print(f"\n{kind} {step_s:.0f} s: long deviation {ratio:.1f} typical steps, "
                  f"scored at {scored} of {len(times)} points", end="")
            assert scored == 0 and max(scores) == 0.0


def test_a_series_constant_at_first_is_judged_from_its_first_move():
    """A day of one value, then calm noise: with no range learned (deviation and step 0,
    which winsorised learning never leaves) the member scored 1 on the noise for good, 600
    alerts in 6 days where the other members give 12-21 (a review). It starts at the
    first move now, and stays quiet on the noise that follows."""
    rng = np.random.default_rng(5)
    times = np.arange(7 * 1440) * 60.0
    values = np.where(times < DAY, 100.0, 100 + rng.normal(0, 1, times.size))
    alerts, scores, _ = run(times, values)
    ours = [alert for alert in alerts if alert[2] == "level_range"]
    print(f"\nconstant for a day, then noise: {len(alerts)} alerts in 6 days, "
          f"{len(ours)} by the level-range member, its highest score {max(scores):.3f}")
    assert not ours and max(scores) < 0.5 and len(alerts) <= 25


def test_a_flagged_departure_is_accepted_until_it_doubles():
    """A ramp of 15 sd an hour for 6 hours (90 sd), then held there for 6 hours: each
    level-range alert comes at twice the last one's departure or more (2-3 in all), and the
    held level raises nothing. With nothing accepted it alerted at every cooldown: 69 times,
    36 of them while held."""
    counts = []
    for seed in range(3):
        times, values = ramp(seed, 60.0, 15.0, 6.0, hold_h=6.0)
        alerts, _, _ = run(times, values)
        ours = [a for a in alerts if a[2] == "level_range"]
        zs = [a[3]["z"] for a in ours]
        assert 1 <= len(ours) <= 4, (seed, zs)
        assert all(later >= 1.9 * earlier for earlier, later in zip(zs, zs[1:])), (seed, zs)
        assert not [a for a in alerts if a[0] >= START + 6 * 3600 + 600], seed  # held
        counts.append(f"{len(alerts)} alerts ({len(ours)} level_range at z {zs})")
    print("\n15 sd/h for 6 h, then held 6 h: " + "; ".join(counts))


def test_the_member_state_goes_through_the_codec_and_carries_on():
    """Mid-ramp, after an alert (an accepted departure): the state as the JSON that goes to
    Redis carries on with the same verdicts; a state saved before the member existed loads,
    and the member starts afresh on the others' clock (the one pass takes it)."""
    times, values = ramp(0, 60.0, 15.0, 6.0)
    half = int((START + 3 * 3600) / 60.0)
    monitor = new_monitor()
    for moment, value in zip(times[:half], values[:half]):
        step(monitor, {"time": float(moment), "price": float(value)})
    state = json.loads(compact_json(monitor.to_state()))
    assert state["detector"]["members"]["level_range"]["accepted"] > 8
    carried = new_monitor(state)
    for moment, value in zip(times[half:], values[half:]):
        x = {"time": float(moment), "price": float(value)}
        assert step(monitor, x) == step(carried, x)
    assert json.dumps(monitor.to_state()) == json.dumps(carried.to_state())

    old = json.loads(json.dumps(state))
    del old["detector"]["members"]["level_range"]
    loaded = new_monitor(old)
    assert loaded.detector._stepper()  # the one pass, not the members one by one
    member = loaded.detector.members[-1]
    assert member.name == "level_range" and member.seen == 0
    assert member.last_time == loaded.detector.members[0].last_time
    step(loaded, {"time": float(times[half]), "price": float(values[half])})
    assert loaded.detector.members[-1].last_level is not None
