"""The alert budget on the real shared corpora, in-sample and held out (issue 14).

The policy (kades.temporal.policy, what temporal-analysis and `kades score` run) was tuned on
the in-sample part of each corpus only. The held-out part is fixed by one stable rule:
sorted by name, every third (the 3rd, 6th, 9th, ...) is held out.

Corpora (all in ../shared/data, read through shared_material):
- market/pump_dump: 18 Binance tapes, 1-minute ticks (price and volume). A pump is caught
  by an alert from 5 min before to 10 min after the announced start; a false alert is any
  alert outside 5 min before to 60 min after it (the pump and its dump); per token-day of
  the rest of the tape, warm-up included. Two tapes show no pump at the announced time
  (DLT: its tape's pump is 46 h later; SNM: none at all, its largest minute 2 BTC at +18 h):
  recall is given over all labelled pumps and over those visible in the tape (the
  announced ten minutes hold the tape's busiest minute).
- timeseries/donut_kpi: 3 web KPI series (5-minute points, 61 days each), operator-labelled;
- timeseries/skab: 34 labelled recordings of a pump testbed (1 s) plus one without faults;
  each of the 8 sensor channels is scored as its own series and a recording's alerts are
  those of all its channels.
For the last two a labelled run is caught by an alert inside it (or 10 points past its end),
and alerts elsewhere are false.
- liquidity/uniswap_v2_pools: 34 real pools from their creation (new tokens: 14 drained, 7
  dumped by their creator, 13 not labelled), as the per-block ticks market-aggregator makes
  of pool states (`pool_ticks`). An event is a pull (both reserves fell in a block, WETH by
  half or more: the drains, and the withdrawals in the other pools too) or a labelled
  dump's largest one-block price fall; caught by an alert at its tick or the next
  CATCH_TICKS; alerts elsewhere are false, per pool-day. Held out: the pools'
  own rule (kades.chain.uniswap_replay.held_out), as for the LP-holder figures.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timezone

import math

import shared_material

from kades.chain.uniswap_replay import held_out as held_out_pools, load_labels, pool_observations
from kades.temporal.policy import LinearUnit, new_monitor, step

PUMP_DIR = shared_material.DATA / "market/pump_dump"
DONUT_DIR = shared_material.DATA / "timeseries/donut_kpi"
SKAB_DIR = shared_material.DATA / "timeseries/skab"
POOLS_DIR = shared_material.DATA / "liquidity/uniswap_v2_pools"
PULL_SHARE = 0.5   # a pull: both reserves fell in one block, WETH by this share or more
CATCH_TICKS = 2    # a pull or dump is caught by an alert at its tick or the next two
DUMPED = "rug_type2_price_dump"
CATCH_BEFORE_S, CATCH_AFTER_S = 300.0, 600.0   # a pump is caught from 5 min before to 10 after
EVENT_AFTER_S = 3600.0                          # alerts up to 1 h after the start are the event's
GRACE_POINTS = 10                               # a labelled run is caught up to 10 points past it
BUDGET_PER_DAY, RECALL_GOAL = 1.0, 0.94


def held_out(names: list[str]) -> set[str]:
    """The fixed held-out third: sorted by name, every third."""
    return {name for index, name in enumerate(sorted(names)) if index % 3 == 2}


def alerts(points: list[dict], *, log_scale: bool = True) -> list[tuple[float, str]]:
    """(time, anomaly type) of every alert the policy raises on one series (on linear scale
    in its unit, as `kades score` runs it)."""
    monitor, found = new_monitor(log_scale=log_scale), []
    if not log_scale:
        unit = LinearUnit()
        for x in points:
            unit.add(x["price"])
        points = [{**x, "price": x["price"] / unit.unit} for x in points]
    for x in points:
        verdict = step(monitor, x)
        if verdict.alert:
            found.append((x["time"], verdict.alert))
    return found


@dataclass
class Tally:
    """What one corpus part scored: events caught, false alerts and the time they were in."""

    series: int = 0
    events: int = 0
    caught: int = 0
    visible: int = 0          # pumps only: visible in the tape
    visible_caught: int = 0
    alerts: int = 0
    false_alerts: int = 0
    days: float = 0.0
    points: int = 0           # the points the series had, and the days they fell on: a rate
    active_days: int = 0      # per series-day flatters a series that is mostly silence

    def saw(self, times) -> None:
        """Count a series' points and the UTC days that had any."""
        times = list(times)
        self.points += len(times)
        self.active_days += len({int(t // 86400) for t in times})

    @property
    def recall(self) -> float:
        return self.caught / self.events if self.events else 1.0

    @property
    def visible_recall(self) -> float:
        return self.visible_caught / self.visible if self.visible else 1.0

    @property
    def false_per_day(self) -> float:
        return self.false_alerts / self.days if self.days else 0.0

    @property
    def precision(self) -> float:
        return 1.0 - self.false_alerts / self.alerts if self.alerts else 1.0

    def line(self) -> str:
        visible = (f" (visible in the tape {self.visible_caught}/{self.visible})"
                   if self.visible and self.visible != self.events else "")
        rates = ""
        if self.points:
            rates = (f"; {1000 * self.false_alerts / self.points:.1f} per 1,000 points "
                     f"({self.points}), {self.false_alerts / max(1, self.active_days):.2f} per "
                     f"series-day with points ({self.active_days})")
        return (f"{self.series} series: caught {self.caught}/{self.events}{visible}, "
                f"{self.alerts} alerts, precision {self.precision:.2f}, "
                f"{self.false_alerts} false = {self.false_per_day:.2f} per series-day "
                f"({self.days:.1f} days){rates}")


# --- pump tapes ---------------------------------------------------------------------------

def pump_tally(tapes: list[dict]) -> Tally:
    """Tapes as tests/temporal/benchmark.load_pump_tapes gives them (window opens 10 min
    before the announced start)."""
    tally = Tally()
    for tape in tapes:
        start = tape["windows"][0][0] + 600.0
        points = tape["points"]
        times = [moment for moment, _ in alerts(points)]
        busiest = max(points, key=lambda p: p["volume"])["time"]
        visible = start <= busiest <= start + CATCH_AFTER_S
        caught = any(start - CATCH_BEFORE_S <= t <= start + CATCH_AFTER_S for t in times)
        tally.series += 1
        tally.events += 1
        tally.caught += caught
        tally.visible += visible
        tally.visible_caught += caught and visible
        tally.alerts += len(times)
        tally.false_alerts += sum(not start - CATCH_BEFORE_S <= t <= start + EVENT_AFTER_S
                                  for t in times)
        span = points[-1]["time"] - points[0]["time"] - CATCH_BEFORE_S - EVENT_AFTER_S
        tally.days += span / 86400.0
        tally.saw(p["time"] for p in points)
    return tally


# --- labelled series (donut KPI, SKAB) ----------------------------------------------------

def labelled_runs(times: list[float], labels: list[bool]) -> list[tuple[float, float]]:
    """(first, last) time of every run of labelled points, reaching GRACE_POINTS past it."""
    runs, begin = [], None
    for index, (moment, flagged) in enumerate(zip(times, labels)):
        if flagged and begin is None:
            begin = moment
        if begin is not None and (not flagged or index == len(times) - 1):
            end = times[min(len(times) - 1, index - 1 + GRACE_POINTS)]
            runs.append((begin, end))
            begin = None
    return runs


def labelled_tally(corpus: list[dict]) -> Tally:
    """Each series {name, channels: [[points]], times, labels, log_scale: [bool]}: the alerts
    of all its channels against its labelled runs."""
    tally = Tally()
    for series in corpus:
        runs = labelled_runs(series["times"], series["labels"])
        times = sorted(t for points, log_scale in zip(series["channels"], series["log_scale"])
                       for t, _ in alerts(points, log_scale=log_scale))
        tally.series += 1
        tally.events += len(runs)
        tally.caught += sum(any(a <= t <= b for t in times) for a, b in runs)
        tally.alerts += len(times)
        tally.false_alerts += sum(not any(a <= t <= b for a, b in runs) for t in times)
        tally.days += (series["times"][-1] - series["times"][0]) / 86400.0
        tally.saw(series["times"])
    return tally


def load_donut() -> list[dict]:
    corpus = []
    for path in sorted(DONUT_DIR.glob("*.csv")):
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        times = [float(row["timestamp"]) for row in rows]
        values = [float(row["value"]) for row in rows]
        corpus.append({"name": path.stem, "times": times,
                       "labels": [row["label"] == "1" for row in rows],
                       "channels": [[{"time": t, "price": v} for t, v in zip(times, values)]],
                       "log_scale": [min(values) > 0]})
    return corpus


def load_skab() -> list[dict]:
    corpus = []
    for path in sorted(SKAB_DIR.glob("*/*.csv")):
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
        times = [datetime.fromisoformat(row["datetime"]).replace(tzinfo=timezone.utc).timestamp()
                 for row in rows]
        channels = [name for name in rows[0] if name not in ("datetime", "anomaly", "changepoint")]
        values = {name: [float(row[name]) for row in rows] for name in channels}
        corpus.append({"name": f"{path.parent.name}/{path.stem}", "times": times,
                       "labels": [float(row.get("anomaly") or 0) > 0 for row in rows],
                       "channels": [[{"time": t, "price": v} for t, v in zip(times, values[name])]
                                    for name in channels],
                       "log_scale": [min(values[name]) > 0 for name in channels]})
    return corpus


def split(corpus: list[dict]) -> tuple[list[dict], list[dict]]:
    """(in-sample, held out) by held_out on the series' names."""
    out = held_out([series["name"] for series in corpus])
    return ([s for s in corpus if s["name"] not in out], [s for s in corpus if s["name"] in out])


# --- Uniswap pools from their creation ----------------------------------------------------

def pool_ticks(row: dict) -> tuple[list[dict], list[int]]:
    """One labelled pool as (ticks, the indices of its pulls): a tick per block with a price,
    as kades.market.chain.chain_ticks makes them -- the block's last reserves give the price
    (WETH per token) and the liquidity (2 x the WETH side), its swaps (reserves moving
    opposite ways) the volume in WETH; a block that left a reserve at 0 has no price and no
    tick."""
    decimals, blocks = int(row["token_decimals"]), {}
    before = None
    for seen in pool_observations(POOLS_DIR, row):
        if seen["kind"] != "state":
            continue
        base, quote = seen["record"]["base_reserve"], seen["record"]["quote_reserve"]
        block = blocks.setdefault(seen["slot"], {"time": seen["time_s"], "volume": 0.0,
                                                 "before": before})
        if before and (base - before[0]) * (quote - before[1]) < 0:
            block["volume"] += abs(quote - before[1]) / 1e18
        block["after"] = before = (base, quote)
    ticks, pulls = [], []
    for block in blocks.values():
        (base, quote), start = block["after"], block["before"]
        # (a rounding's tolerance: 54.8395 -> 27.4198 WETH, half, was no pull by 0.0000 WETH)
        if start and quote <= (1 - PULL_SHARE) * start[1] * (1 + 1e-6) and base < start[0]:
            pulls.append(len(ticks))  # the index its tick has, if it has one
        if base > 0 and quote > 0:
            ticks.append({"time": block["time"], "price": (quote / 1e18) / (base / 10 ** decimals),
                          "volume": block["volume"], "liquidity": 2 * quote / 1e18})
    return ticks, pulls


CRASH_RATIO = 0.1  # a block that takes 90 % of the price or more is an event, labelled or not


def load_pools() -> list[dict]:
    """The pools as {name, label, held_out, points, events: [tick index]}: their pulls, a
    labelled dump's largest one-block price fall, and any block that took 90 % of the price
    (a drain by a dump in a pool labelled otherwise was counted a false alert)."""
    rows = load_labels(POOLS_DIR)
    out = held_out_pools(rows)
    pools = []
    for row in rows:
        points, events = pool_ticks(row)
        if len(points) > 1:
            falls = [math.log(b["price"] / a["price"]) for a, b in zip(points, points[1:])]
            crashes = {1 + i for i, fall in enumerate(falls) if fall <= math.log(CRASH_RATIO)}
            if row["label"] == DUMPED:
                crashes.add(1 + falls.index(min(falls)))
            events = sorted(set(events) | crashes)
        pools.append({"name": row["pool"], "label": row["label"], "held_out": row["pool"] in out,
                      "points": points, "events": events})
    return pools


def pool_tally(pools: list[dict]) -> Tally:
    tally = Tally()
    for pool in pools:
        points = pool["points"]
        index = {x["time"]: i for i, x in enumerate(points)}
        found = [index[moment] for moment, _ in alerts(points)]
        near = lambda i: any(e <= i <= e + CATCH_TICKS for e in pool["events"])  # noqa: E731
        tally.series += 1
        tally.events += len(pool["events"])
        tally.caught += sum(any(e <= i <= e + CATCH_TICKS for i in found) for e in pool["events"])
        tally.alerts += len(found)
        tally.false_alerts += sum(not near(i) for i in found)
        if points:
            tally.days += (points[-1]["time"] - points[0]["time"]) / 86400.0
            tally.saw(p["time"] for p in points)
    return tally


def split_pools(pools: list[dict]) -> tuple[list[dict], list[dict]]:
    """(in-sample, held out) by the pools' own rule."""
    return [p for p in pools if not p["held_out"]], [p for p in pools if p["held_out"]]

