"""The series clock: the time the detectors step on, learned from the series' own steps.

The detectors' half-lives, windows and the alert policy's durations are in seconds, set for
ticks. A series' steps say how to read its time: its typical step (gaps), its resolution (the
shortest step of a tick series, the median of randomly timed readings, a new cadence), and
from the resolution how much slower than real time its clock runs. ThresholdFilter keeps one
SeriesClock per series and saves it in its own state (keys `log_step`, `clock`, `off_grid`,
`stretched`, `cadence`).

>>> clock, last = SeriesClock(), None
>>> for minute in range(0, 600, 5):  # 5-minute points: a clock slowed 300 s / CLOCK_REF_S
...     last, gap = clock.model_time(60.0 * minute, last)
>>> clock.resolution, round(clock.scale, 3), gap
(300.0, 3.333, False)
>>> clock.model_time(60.0 * 600 + 86400, last)[1]  # a day later: a gap
True
"""
from __future__ import annotations

import math
from typing import Any

# A gap: a point more than GAP_FACTOR times the series' typical step (and GAP_MIN_S) after
# the one before. The detectors forget by elapsed time, so after hours one point would
# replace what they learned of the series' scales and the next ordinary move would look
# huge (a calm 1-minute series with ten 1-day gaps: 41 alerts against 1 without them). The
# point after a gap is scored as any other, then advances the levels without teaching the
# scales. The typical step is a running geometric mean of the steps, gaps included, so a
# series that turns slower stops counting as gapped after a few points.
GAP_FACTOR = 20.0
LOG_GAP_FACTOR = math.log(GAP_FACTOR)
GAP_MIN_S = 600.0
STEP_RATE = 0.05
# A coarse series runs on a slower clock. The detectors' half-lives, windows, cooldowns and
# episodes are in seconds, set for ticks: at 5-minute or daily steps their long averages
# would hold a point or two. A series whose resolution (its shortest step) is over
# CLOCK_REF_S runs on a clock slowed by resolution / CLOCK_REF_S, so each of its steps lasts
# CLOCK_REF_S or more to the detectors. A minimum, not a typical step: a tick series with
# quiet stretches (a trade most minutes, none in some) keeps its real clock, where a
# typical step slowed the pump tapes' clock too and lost a pump (trades at random times
# are not on a grid of ticks: RANDOM_SHARE below). A stray step, over
# 4 times shorter than the typical one (LOG_STRAY_FACTOR) (an extra row 4 minutes after an hourly
# one, a duplicated row), does not set it; and a resolution that has become GAP_FACTOR
# times shorter than the typical step (a duplicated first row of a daily series) is taken
# anew. 90 s: the web KPIs (in-sample) caught the most from 75 to 100 s.
# Randomly timed readings (trades of a thin token, a KPI read at exponential gaps) have no
# such step: their shortest is a fluke of the arrivals (under a minute at 5-minute mean
# gaps), and a move over one, judged against sqrt(elapsed) worth of movement, looked large
# on a level series: its raw scores were high all the time and a 17-sd spike was no
# surprise (0-3 of 10 caught, now 10/10). A tick series' steps are whole multiples of its
# resolution (a quiet stretch is missing ticks), a regular series' are its step; a series
# whose steps are mostly off that grid (over RANDOM_SHARE of the recent ones, a running
# share at STEP_RATE) has random arrivals: its resolution is then the steps' running
# median (it moves by STEP_RATE / 2 in log towards each step; a step closer than that is
# taken as it is), and a step shorter than the resolution lasts the resolution to the
# detectors: the time between readings is not resolved more finely than the usual step.
# A series whose cadence changes (1-minute points, then 5-minute ones) kept its shortest step
# as its resolution, so the coarser part ran on the real clock (18-29 alerts for 8 crashes).
# A new cadence is the same step again and again: CADENCE_STEPS steps equal to one step (a
# whole multiple of it, a missing point, neither counts nor breaks the run) make it the
# resolution. A tick series' quiet stretches are irregular multiples of its tick (the pump
# tapes' longest run of one coarser step is 7: 2-minute steps). A step GAP_FACTOR times the
# resolution or more takes CADENCE_GAP_STEPS: the points after such steps teach the scales
# nothing (gaps), so waiting costs the most (1-minute points turned hourly alerted 23-24
# times in 90 series-days with 20, 0-1 with 8), and no tape repeats one (its longest run: 1).
# Strays (LOG_STRAY_FACTOR) start no run. The same rule brings a series whose steps went
# off the grid (RANDOM_SHARE) back to ticks once its readings repeat one step again, but not
# to a step over 4 times (LOG_STRAY_FACTOR) shorter than its resolution: that is a burst (a
# bot's trades 1 s apart in a thin token traded every few minutes; on whole seconds every
# later step is a multiple of the second, so its run never ended and the next two trades a
# second apart took the second again: 2 -> 24 alerts in 42 calm token-days, moves of
# 0.3 % in a second on the real clock). Steps are one step to CADENCE_TOLERANCE, not to float
# rounding: a poller's times a few ms off the hour formed no run (1 minute -> hourly: 74
# other alerts, now 1). A run's steps are taught on the old clock until it is taken, where
# the clock slows at once (`slowed`: the new scale over the old): what the detectors learned
# per second of it then reads `slowed` times too small (a walk's 1 % a step, learned over
# 900 s at 15-minute steps, seen over 90), and the switch alerted (1 -> 15 minutes, calm, 8
# seeds: 35 alerts in the 60 points after it, mostly volatility_regime). ThresholdFilter has
# the members that learn per second (per sqrt second) rescale it then; the run's steps
# taught them, so they hold what a series of that step learns from the start: 2.
CADENCE_STEPS = 20
CADENCE_GAP_STEPS = 8
CADENCE_TOLERANCE = 0.01  # one step, to 1 % (jittered times)
CLOCK_REF_S = 90.0
LOG_STRAY_FACTOR = math.log(4.0)
RANDOM_SHARE = 0.5
# A burst of readings in a randomly timed series (a pump's trades 1-2 s apart on a thin token
# traded every two minutes, a bot's flat burst) is no random arrival: BURST_STEPS steps in a
# row, each BURST_FACTOR times shorter than the resolution or more (by chance about 1 in
# 1,500 steps of exponential gaps). Its steps taught the clock: the median step slid to a
# few seconds within a pump's 120 trades and the typical step to one, so the series ran on
# ticks for a while (on whole seconds the second became the grid) and a burst's trades were
# moves over seconds. A burst's steps now teach the clock nothing (median, off-grid share,
# typical step) for BURST_HOLD steps, are stretched to the resolution as any short step, and
# each counts as `share` = step / resolution of a reading in the likelihood's long normal
# (ThresholdFilter): counted in full, a pump's 120 points set the normal's spread for days
# and the next pump was no surprise (caught 13/24 in a review; now 24/24). A burst longer
# than BURST_HOLD is a new rhythm: the median follows it as before. A held burst's readings
# advance the detectors without teaching their scales (`held`, ThresholdFilter): stretched,
# moves over a second or two were learned as moves over minutes, a calm far quieter than the
# token's, and a token whose trading turned into a 1 s stream alerted as the hold ended and
# the clock came back to seconds (5 alerts in 3 half hours; 0 before the burst rule and now).
BURST_FACTOR = 4.0
BURST_STEPS = 4
BURST_HOLD = 200
GRID_TOLERANCE = 1e-6  # a whole multiple to this relative error (float rounding)


def on_grid(step: float, resolution: float) -> bool:
    """Whether `step` is a whole multiple of `resolution` (a tick, or a tick series' quiet
    stretch: no trade for some minutes)."""
    ratio = step / resolution
    if not 0.5 <= ratio < 1e12:  # under one tick, or not finite (a NaN time)
        return False
    ticks = round(ratio)
    return abs(step - ticks * resolution) <= GRID_TOLERANCE * step


class SeriesClock:
    """A series' clock (see the module's notes above): `model_time` maps each point's real
    time to the detectors' and learns the steps from it. Compiled, the class is an extension
    type: every attribute it sets is declared in clock.pxd."""

    def __init__(self):
        self.log_step: float | None = None      # log of the typical step (GAP_FACTOR)
        self.resolution: float | None = None    # the shortest step, or the median one (CLOCK_REF_S)
        self.offset = 0.0                       # real time less the detectors' time
        self.off_grid = 0.0                     # the share of steps off the resolution's grid
        # detectors' seconds added by stretching short steps (RANDOM_SHARE): the durations
        # (cooldown, quiet, episode, relearn) run on the detectors' clock less these, so a
        # burst of readings seconds apart (trades in a pump) is seconds long to them, not a
        # resolution per reading (the same pump alerted 3-4 times in 20 s)
        self.stretched = 0.0
        self.cadence: list | None = None        # [step, count] of the latest run (CADENCE_STEPS)
        self.burst = 0                          # burst steps in a row (BURST_STEPS)
        self.share = 1.0                        # the last point's share of a reading (BURST_STEPS)
        self.held = False                       # the last point is a held burst's (BURST_HOLD)
        self.slowed = 1.0                       # a new cadence's slowing at the last point
        # the detectors' seconds of the old clock that the run of a new cadence taught them
        # (the run's steps, gaps left out), when it is taken (`slowed`; base.taught)
        self.taught_s = 0.0

    @property
    def scale(self) -> float:
        """Real seconds per second of the detectors' clock (1: a real clock)."""
        if self.resolution is None or self.resolution <= CLOCK_REF_S:
            return 1.0
        return self.resolution / CLOCK_REF_S

    def model_time(self, moment: float, last: float | None) -> tuple[float, bool]:
        """`moment` on the detectors' clock, and whether it comes after a gap; learns the
        series' typical step and resolution from it. `last`: the detectors' time of the last
        point taken (None: none yet). (Per point: attributes read once.)"""
        offset = self.offset
        self.share, self.held, self.slowed = 1.0, False, 1.0
        if last is None:
            return moment, False
        last += offset
        if moment <= last:
            return moment - offset, False
        step = moment - last
        log_step = math.log(step)
        typical = self.log_step
        if typical is None:
            typical = log_step
        gap = step > GAP_MIN_S and log_step > typical + LOG_GAP_FACTOR
        resolution = self.resolution
        random = resolution is not None and self.off_grid > RANDOM_SHARE
        burst = self.burst = (self.burst + 1 if random and step * BURST_FACTOR <= resolution
                              else 0)
        held = self.held = BURST_STEPS <= burst < BURST_STEPS + BURST_HOLD
        if not held:
            self.log_step = typical + STEP_RATE * (log_step - typical)
        if resolution is not None and not held:  # the share of steps off the resolution's grid
            off = step != resolution and not (on_grid(step, resolution)
                                              or on_grid(resolution, step))
            self.off_grid += STEP_RATE * (off - self.off_grid)
            cadence = self.cadence  # [step, count, taught_s] of the latest run of one step
            teaches = 0.0 if gap else step * min(1.0, CLOCK_REF_S / resolution)  # old clock
            if cadence is not None and abs(step - cadence[0]) <= CADENCE_TOLERANCE * step:
                cadence[1] += 1
                if cadence[1] >= (CADENCE_GAP_STEPS if cadence[0] >= GAP_FACTOR * resolution
                                  else CADENCE_STEPS) and (
                        abs(cadence[0] - resolution) > CADENCE_TOLERANCE * cadence[0]) and (
                        cadence[0] > resolution or math.log(resolution / cadence[0])
                        <= LOG_STRAY_FACTOR):  # a burst is no cadence
                    was = self.scale
                    self.resolution = resolution = cadence[0]  # a new cadence
                    self.off_grid = 0.0
                    self.slowed = self.scale / was  # what was learned per second (`slowed`)
                    self.taught_s = cadence[2]  # (the run's steps on the old clock)
                elif cadence[0] != resolution:  # what the run taught (`taught_s`)
                    cadence[2] += teaches
            elif not (cadence is not None and cadence[0] != resolution
                      and step > cadence[0] and on_grid(step, cadence[0])):
                self.cadence = ([step, 1, teaches] if log_step >= typical - LOG_STRAY_FACTOR
                                else None)
        if self.off_grid <= RANDOM_SHARE:  # ticks: the shortest step, strays left out
            if log_step >= typical - LOG_STRAY_FACTOR and (
                    resolution is None or step < resolution
                    or math.log(resolution) < typical - LOG_GAP_FACTOR):
                self.resolution = resolution = step
        else:  # random arrivals: the median step, and no step shorter than it
            log_resolution = math.log(resolution)
            move = log_step - log_resolution
            if held:
                pass  # a burst's steps are not the arrivals' (BURST_HOLD)
            elif abs(move) <= STEP_RATE / 2 or log_resolution < typical - LOG_GAP_FACTOR:
                resolution = step  # close enough, or taken anew
            else:
                resolution *= math.exp(STEP_RATE / 2 if move > 0 else -STEP_RATE / 2)
            self.resolution = resolution
            if burst >= BURST_STEPS:  # a burst's reading: its share (BURST_STEPS)
                self.share = step / resolution
            if step < resolution:
                offset = self.offset = offset + step - resolution
                # the durations do not count the stretch (see `stretched`)
                self.stretched += (resolution - step) * min(1.0, CLOCK_REF_S / resolution)
                step = resolution
        if resolution is not None and resolution > CLOCK_REF_S:
            offset = self.offset = offset + step - step * CLOCK_REF_S / resolution
        return moment - offset, gap

    def to_state(self) -> dict[str, Any]:
        """The clock's keys of its filter's state (each left out while it has nothing)."""
        return {**({"log_step": self.log_step} if self.log_step is not None else {}),
                **({"clock": [self.resolution, self.offset]}
                   if self.resolution is not None else {}),
                **({"off_grid": self.off_grid} if self.off_grid else {}),
                **({"stretched": self.stretched} if self.stretched else {}),
                **({"cadence": list(self.cadence)} if self.cadence is not None else {}),
                **({"burst": self.burst} if self.burst else {})}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "SeriesClock":
        """The clock of a filter's state; keys missing from older states read as fresh."""
        clock = cls()
        clock.log_step = state.get("log_step")
        if state.get("clock"):
            clock.resolution, clock.offset = state["clock"]
        clock.off_grid = state.get("off_grid", 0.0)
        clock.stretched = state.get("stretched", 0.0)
        clock.cadence = list(state["cadence"]) if state.get("cadence") else None
        if clock.cadence is not None and len(clock.cadence) < 3:  # a state from before it:
            clock.cadence.append(clock.cadence[0] * clock.cadence[1] / clock.scale)  # all taught
        clock.burst = state.get("burst", 0)
        return clock
