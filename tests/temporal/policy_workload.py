"""Streams that take the alert policy (kades.temporal.policy) down its paths, and a record of
everything it says of them: every verdict and, now and then, every token's state, as text
that tells 1 from 1.0, -0.0 from 0.0 and NaN from a number. test_policy_compiled.py runs it
on the compiled modules (shared/setup.py) and, in a process that imports the package from a
copy without them, on the source: the two records must be equal.

Run as a script, it prints its record as JSON lines."""
from __future__ import annotations

import json
import math
import random
import sys

from kades.simulate.market import simulate_market
from kades.simulate.series import SERIES_KINDS, simulate_series
from kades.temporal.function import epoch_s
from kades.temporal.policy import new_monitor, step


def market(seed: int) -> list[dict]:
    """A simulated market's ticks, each token's at irregular times: bursts, gaps, repeats."""
    sim = simulate_market(seed=seed, tokens=3, minutes=600, anomalies_per_token=4)
    rng, moments, points = random.Random(seed), {}, []
    for tick in sim.ticks:
        moment = moments[tick["token"]] = moments.get(tick["token"], epoch_s(tick["time"])) + \
            rng.choice((0.0, 0.4, 1.0, 5.0, 5.0, 5.0, 12.0, 60.0, 600.0, 7200.0))
        points.append({"token": tick["token"], "time": moment, "price": tick["price"],
                       "volume": tick["volume"], "liquidity": tick["liquidity"]})
    return points


def odd_ticks(seed: int) -> list[dict]:
    """One token's ticks with what feeds send: integer times, prices and volumes, bars
    without a trade, a stuck reading, a pool pulled in the same second, times that go back,
    a flat start that moves, missing fields and values that are not numbers."""
    rng, points, price, liquidity = random.Random(seed), [], 100, 5000.0
    moment = 1_700_000_000
    for index in range(1500):
        phase = index // 150
        moment += (1 if phase == 3 else 60) if phase != 7 else rng.choice((0, 1, 2, 30))
        if phase in (0, 6):
            pass  # a flat start (an integer price), then a stuck reading
        elif phase == 4:
            price = round(price * (1 + rng.gauss(0, 0.002)), 6) if index % 40 == 0 else price
        else:
            price = round(price * (1 + rng.gauss(0, 0.003)
                                   + (0.3 if index % 307 == 0 else 0)
                                   - (0.4 if index % 509 == 0 else 0)), 6)
        volume = (rng.choice((0, 0, 3, 12, 50)) if phase in (4, 5) else 7 if phase == 6
                  else rng.randint(1, 40))
        point = {"token": "odd", "time": moment, "price": price, "volume": volume,
                 "liquidity": liquidity}
        if index % 211 == 0:
            point["liquidity"] = liquidity = liquidity * 0.5
            point["time"] = moment - 0.5  # the pull in the same second as the last trade
        if index % 97 == 0:
            point["time"] = moment - 300  # a late tick
        if index % 113 == 0:
            point.pop("volume")
        if index % 331 == 0:
            point["volume"] = math.nan
        if index == 1333:
            point["price"] = math.inf
        points.append(point)
    return points


def series_points(kind: str, seed: int) -> list[dict]:
    """A simulated KPI series (hourly, jittered), of one token per kind."""
    series = simulate_series(kind, seed=seed, points=900, step_s=3600.0, jitter=True)
    return [{"token": kind, "time": t, "price": v} for t, v in zip(series.times, series.values)]


def streams() -> list[tuple[str, bool, list[dict]]]:
    """(name, log scale, points) of every stream."""
    found = [(f"market {seed}", True, market(seed)) for seed in (3, 11)]
    found += [(f"odd {seed}", True, odd_ticks(seed)) for seed in (1, 2)]
    for kind in SERIES_KINDS:
        points = series_points(kind, 5)
        found.append((f"{kind} linear", False, points))
        if min(point["price"] for point in points) > 0:
            found.append((f"{kind} log", True, points))
    return found


def bits(value) -> str:
    """`value` as JSON holds it, a tab, and as repr shows it (1 and 1.0, -0.0, NaN told
    apart; neither writes a tab of its own)."""
    return json.dumps(value, sort_keys=True, default=repr) + "\t" + repr(value)


def record() -> list[str]:
    """Every verdict, each token's state every 97 points and at the end, and any error a
    point raised; a state also carried on from its JSON, as a fresh replica does."""
    lines = []
    for name, log_scale, points in streams():
        monitors = {}
        for index, point in enumerate(points):
            token = point["token"]
            monitor = monitors.get(token) or new_monitor(log_scale=log_scale)
            x = {key: value for key, value in point.items() if key != "token"}
            try:
                lines.append(bits(tuple(step(monitor, x))))
            except (ValueError, TypeError, KeyError, OverflowError) as error:
                lines.append(f"{name} {index}: {type(error).__name__}: {error}")
            if index % 97 == 96:
                state = monitor.to_state()
                lines.append(bits(state))
                monitor = new_monitor(json.loads(json.dumps(state)), log_scale=log_scale)
            monitors[token] = monitor
        lines += [bits(monitors[token].to_state()) for token in sorted(monitors)]
    return lines


if __name__ == "__main__":
    json.dump(record(), sys.stdout)
