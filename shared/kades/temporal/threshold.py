"""ThresholdFilter: turns a detector's scores into flags, and keeps flagged ticks out of what
the detector learns (else every spike would widen the scale and hide the next one).

>>> from kades.temporal.detector import ReturnSpikeDetector
>>> import random
>>> rng = random.Random(3)
>>> monitor = ThresholdFilter(ReturnSpikeDetector(grace_period=20), threshold=0.5)
>>> price, flags = 2.0, []
>>> for second in range(0, 900, 5):
...     price *= 1 + rng.gauss(0, 0.002) - (0.3 if second == 600 else 0)
...     flags += monitor.process_one({"time": second, "price": price, "volume": 500.0})
>>> [(flag["time"], flag["anomaly_type"]) for flag in flags]
[(600, 'flash_crash')]
"""
from __future__ import annotations

import math
from typing import Any

from kades.temporal.clock import SeriesClock
from kades.temporal.detector import ReturnSpikeDetector
from kades.temporal.ensemble import KIND_ORDER
from kades.temporal.likelihood import AnomalyLikelihood
from kades.temporal.young import DRAINED, NAME as YOUNG, YoungSeries


ESCALATION_ODDS = 4.0
# An escalation is news once the series' last alert is ESCALATION_SPACING_S old (on the
# durations' clock): within a minute a stronger reading is the same move printing its next
# trades. At 1-second ticks, what the function gets, a pump lit its kinds in turn a few
# seconds apart (a price spike, then the pump 1 s later; a volatility regime at 0.63, then
# 0.93 4 s on), each four times the odds of the one before: 10 of the in-sample tapes'
# 61 false alerts were such a second alert 1-13 s after the first, where the 1-minute
# bars the budget was set on make one bar and one alert (those bars' figures do not move).
# Not for a pull (ESCALATES_AT_ONCE): a creator dumping and then pulling the pool is two
# acts, and a drain 52 s after a crash was a real pool's pull, lost at 60 s without it.
# A pull starting within another kind's episode is news even when it is not four times the
# odds of that alert: after a dump alerted at 1.0 nothing could be, and the pool drained
# seconds later was never alerted (tests/temporal/test_escalation_spacing.py). So is a pool
# drained (to a tenth of the last liquidity seen, and of the last alert's: young.DRAINED)
# inside a run of pulls: a dump that took a sixth of the pool scored its pull 1.0 already,
# and the rest pulled was not news; the dust left bouncing after it, once more at most. Such
# a pull is the alert's kind even where another kind scores as high (a rug whose price and
# pool fall on one tick was a flash crash, muted by the spacing). The spacing is in real
# time: on the durations' clock a thin token's "minute" lasted several.
ESCALATION_SPACING_S = 60.0
# The spacing holds no fall after a rise's alert (REVERSES: kind -> the alerts' kinds it
# reverses): a crash 25 s after a price spike's alert is the move undone, not the spike
# printing on (a demo token's +2 % spike alerted, then its -31 % crash, scored 0.99, was
# muted). It must still be far stronger (ESCALATION_ODDS). Not a rebound after a crash's
# alert: a flash crash undone within the minute is that crash.
REVERSES = {"flash_crash": {"price_spike", "pump"}, "dump": {"price_spike", "pump"}}
COOLDOWN_S = 600.0  # ThresholdFilter's cooldown_s unless given (the alert policy's)
# REPEAT: a kind the last alert covered (or flagged since) that starts a new run less than
# cooldown_s after that alert, in real time, is the same event printing on, not news, unless
# four times the odds of its last flag (ESCALATION_ODDS); not a pull, as above (two acts,
# and a pull minutes after a dump that took a sixth of the pool could no longer escalate:
# the dump's own pull scored 1.0). The alert is kept for this after its episode ended, so
# a third burst within cooldown_s is not news either. At 1-second ticks a thin
# token's move comes in bursts minutes apart, a reading or two under the threshold between
# them, and each burst started a run and alerted again: 6 of the in-sample tapes' 52 false
# alerts were such a repeat 3-9 minutes on (a pump, a price spike, a volatility regime after
# the price spike that covered it, flash crashes), 46 now, the same pumps caught. The held-out
# tapes' false alerts do not change (docs/temporal.md, "A kind alerted again minutes later").
# In real time: on the durations' clock a burst's minutes last many (kades.temporal.clock).
ESCALATES_AT_ONCE = frozenset({"liquidity_drop"})
DRAINED_SHARE = math.exp(DRAINED)  # a pool drained: its liquidity to a tenth or less
QUIET_STEPS = 1.25
# AFTERMATH: a run is one event until a reading under the threshold ends it. A pump that is
# a burst of trades on a thin token (clock.BURST_STEPS) fills the volatility member's short
# average, which spans 10 readings: 20 minutes at 2-minute random gaps, over an hour at
# 10-minute ones, where the episode (episode_s) lasts a few readings. Its run ended at the
# first step longer than quiet_s, with no reading under the threshold between, and was
# flagged again once its cooldown was over as it faded out: 14 and 5 alerts in the 180
# trades after 36 pumps (12 seeds), 0 and 1 now. So a run over the threshold at the reading
# before goes on across a long step (not after a gap: a reading after hours is news), and a
# run under its highest score since its last flag (`run_peak`) is not flagged again when its
# cooldown is over. The episode still ends at a long step, and once ended stays so (before,
# its end always came with an alert): a kind starting a run after it, a dump after the
# pump, alerts as before. Only a stretch's score goes on across a long step (CARRIED_KINDS:
# the volatility member's short average, over for its 10 readings after one burst, and the
# pump's price over its average on heavy volume); the other kinds score the reading's own
# move, and one over the threshold after a long step is a new move: carried on too, a crash
# on a thin token's next trade 20-40 minutes after another fell in the first one's
# cooldown (600 s on a clock slowed ~5 times at 10-minute gaps) and was lost even when
# larger (second crashes alerted 10/21 and 13/21; 21/21 before the rule and now).
CARRIED_KINDS = frozenset({"volatility_regime", "pump"})
# On a slowed clock, an event is kept out of the likelihood's long normal while its kind's
# events are rare (likelihood.RARE_SHARE): a spike every 100 points of an hourly or 5-minute
# KPI alerts each time, not only the first. Not on ticks: a lone tick is one trade on a price
# grid, and the pump tapes' blips (one in 40 to 1000 points) must become their normal; kept
# out, the in-sample tapes' false alerts went from 40 to 50. Nor for a volatility regime: it
# is a stretch's score, and an isolated spike's echo in it is what becoming the normal is
# for (kept out too, the in-sample web KPIs' false alerts went from 5 to 8).
RARE_KINDS = frozenset(KIND_ORDER) - {"volatility_regime"}
# RUNAWAY: a run longer than relearn_after_s is a new normal and is learned again, but not
# its points that carry the price on away: a new extreme of the run (its highest or lowest
# price) while most of its points were (RUNAWAY_SHARE). A pump is a monotone rise, not a
# new normal: on a thin token traded at random 2-minute gaps a slow pump (20 trades, +2 %
# each) was relearned after its fifth trade, the detectors' scales took its moves, and a
# pump 0.5-2 hours after it was caught 0/16 (4-8 hours after: 11/16); now 10/16 and 16/16,
# the calm and the policy's figures in make eval unchanged. A new level or regime reaches few
# new extremes (a walk's share of them falls under 2/3 within 10 points or so) and is
# learned as before. The price: a steady trend of hours stays news longer (+-0.3-1 % a
# minute for 3 hours on a calm walk, 3 seeds: 13-15 alerts, 8-11 before).
RUNAWAY_SHARE = 2.0 / 3.0
# An alert that recurs daily is the series' rhythm, not news (a KPI that steps up at 08:00
# and down at 20:00 alerted at both, every day): a flag of a kind raised at the same time of
# day on RECUR_DAYS of the RECUR_LOOKBACK days before is kept quiet. Only for series with
# steps of RECUR_MAX_STEP_S or less: on daily bars every point is at the same time of day.
# A weekly rhythm likewise (weekday and weekend levels alerted every Saturday and Monday):
# a flag at the same time of week on RECUR_WEEKS of the RECUR_WEEKS_LOOKBACK weeks before.
# Both weeks: with one, a series alerting once a day at random times had a flag hidden by
# chance 1 time in 12 at 5-minute steps and 1 in 3 at hourly ones (tolerance two steps).
RECUR_DAYS, RECUR_LOOKBACK = 2, 3
RECUR_WEEKS, RECUR_WEEKS_LOOKBACK = 2, 2
RECUR_TOLERANCE_S = 1800.0
RECUR_MAX_STEP_S = 3600.0
RECUR_KEPT = 48  # the latest flags remembered
RECUR_ESCALATION = 2.0  # a flag this many times larger than the rhythm's is news
DAY_S = 86400.0
WEEK_DAYS = 7
# A stuck feed: the same reading (price, volume and liquidity all equal to the last point's)
# repeated for over STUCK_S on the detectors' clock and STUCK_POINTS times, say a sensor
# that stopped (a feed repeating the last close with volume 0 never gets here:
# policy.no_trade leaves such rows out). Each repeat taught the scales a move
# of 0, so over a day they fell to their floors, and when the noise resumed every ordinary
# move scored 1, was flagged, and so was never learned (a calm 1-minute series stuck for a
# day and a half: 12-16 alerts in the six hours after). A stuck stretch is a gap in the
# news: as after a gap (clock.GAP_FACTOR), its repeats advance the levels without teaching
# the scales; the first new reading is scored and learned as any other. The likelihood still
# learns every point: it counts how often events come in points, and without the repeats a
# flat sensor's one-unit blips came so often that 20-unit spikes among them were missed.
# Shorter runs are learned as ever, and so is a series' first STUCK_WARMUP points: it has
# no scales to keep yet. 20 minutes: the return scale's half-life is 15, and at an hour it
# had fallen 16-fold before the repeats stopped teaching it (4-6 alerts after the
# recovery); at 10 minutes an in-sample web KPI (5-minute points, values repeated up to 28
# times) gained an alert.
STUCK_S = 1200.0
STUCK_POINTS = 5
STUCK_WARMUP = 60   # the members' longest grace period
# A price flat from the series' start (for over STUCK_S and STUCK_POINTS) has no scales to
# keep: it taught them a move of 0 and the likelihood a normal of 0, and once it moved every
# ordinary move was flagged, never learned, and crashes were lost in the one long episode.
# Its first move is judged as ever (a move from a constant is news: a depeg from 1.0000),
# then the detectors and the likelihood start afresh from it (`flat_start`, `_restart`).
# Followed over a series' first FLAT_MOVES moves, not only its first: one odd price in the
# flat stretch (x1.001, at its first tick or mid-way) ended the rule, the detectors learned
# the flat stretch, and once the price moved every move was flagged (4 days, 2 seeds, walk
# and level: 3-10/16 crashes caught, 114-785 other alerts, the level-range member's
# nearly all). Now 16/16, 2-5 other alerts. A move after a flat stretch restarts them only
# when larger than FLAT_GROWTH times every move before it (the odd price), or the first
# such move after it (the walk's first move may be smaller than the odd price): a quantised
# line (a bid-ask bounce, a tick every 20 minutes to 2 hours) restarted at each of its
# first moves, and each was flagged again (1-2 -> 4-6 alerts; following the flat start
# after every restart, unbounded, 2 -> 59).
FLAT_MOVES = 5
FLAT_GROWTH = 1.0


def _odds(score: float) -> float:
    return score / max(1.0 - score, 1e-12)


def _size(details: dict[str, Any]) -> float:
    """How large a flagged move was: |log(1 + move)| (a x15 batch is 2.7, its usual x1.5
    0.41, an 80 % drop 1.6); 0 when the evidence gives no move."""
    move = details.get("move")
    return abs(math.log1p(move)) if isinstance(move, (int, float)) and move > -1 else 0.0


def _cut_to_a_tenth(before: float, after: float) -> bool:
    """Whether liquidity went from `before` to DRAINED_SHARE of it or less (NaN, negative or
    infinite `before`: no)."""
    return 0 < before < math.inf and 0 <= after <= before * DRAINED_SHARE


def _rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


class ThresholdFilter:
    """Flags each anomaly type whose score reaches `threshold`.

    Parameters:
        threshold: the score (0..1) from which a tick is anomalous.
        cooldown_s: a run of anomalous ticks of one type is flagged once when it starts and
            again every `cooldown_s` while it lasts (one volume spike is one anomaly, not
            twelve); every tick of the run stays unlearned. A new run of a kind the last
            alert covered, within `cooldown_s` of that alert, is not flagged unless far
            stronger or a pull (REPEAT).
        quiet_s: a run ends only after its kind stayed under the threshold this long, so a
            score flapping around the threshold (a move fading out) stays one run. Within a
            run, a point is flagged again when it is far stronger than the run's last flag
            (twice the deviation: four times the odds s / (1 - s)), say a crash right after a
            small drop. A long step ends no run of a stretch's score (CARRIED_KINDS), and a
            run fading out is not flagged again when its cooldown is over (AFTERMATH).
        relearn_after_s: a run of anomalous ticks longer than this is a new normal (a new
            volume regime): the detector learns from it again, but not from the points
            that carry the price on away (a pump: RUNAWAY).
        likelihood: an AnomalyLikelihood that turns the detector's raw scores into surprise
            before they meet the threshold (None: the raw scores themselves).
        episode_s: one event lights up several kinds in turn (a pump: price spike, pump,
            volatility): while some kind stays over the threshold (gaps of at most quiet_s),
            no flag of any kind for this long after the last flag, unless far stronger than
            it (as above; once an episode, and not within ESCALATION_SPACING_S of it but for
            a pull); the kinds it covered count as flagged. 0: each kind on its own.
        young_points: for a series' first this many points, while the detectors warm up,
            its large moves are judged against the moves before them (kades.temporal.young;
            0: not at all).

    The durations are on the detectors' clock, which a coarse series slows, less the short
    steps it stretches (kades.temporal.clock); a flag's time and evidence are in real time.
    Compiled, the class is an extension type: every attribute it sets is declared in
    threshold.pxd.
    """

    def __init__(self, detector, *, threshold: float = 0.5,
                 cooldown_s: float = COOLDOWN_S, quiet_s: float = 120.0,
                 relearn_after_s: float = 600.0, likelihood: AnomalyLikelihood | None = None,
                 episode_s: float = 0.0, young_points: int = 0):
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.detector = detector
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.quiet_s = quiet_s
        self.relearn_after_s = relearn_after_s
        self.last_flag_time: dict[str, float] = {}
        self.last_over_time: dict[str, float] = {}  # when each kind was last over the threshold
        self.last_flag_score: dict[str, float] = {}
        self.run_peak: dict[str, float] = {}  # each run's highest score since its last flag
        self.anomalous_since: float | None = None
        # [lowest price, highest price, new extremes, points] of the current run (RUNAWAY)
        self.run_range: list | None = None
        self.likelihood = likelihood
        self.episode_s = episode_s
        # (time, score, escalated, real time, liquidity) of the last alert ("time": the
        # durations' clock; a state from before the last two has three)
        self.last_alert: tuple | None = None
        # (time on the durations' clock, real time) of the last alert, kept after its episode
        # ended (REPEAT)
        self.alerted: tuple | None = None
        self.last_parts: dict[str, float] = {}  # the scores of the last point processed
        self.last_raw: dict[str, float] = {}    # the same before the likelihood
        self.clock = SeriesClock()              # the detectors' time (kades.temporal.clock)
        self.recent_flags: list[list] = []      # [real time, kind, size] of recent flags (RECUR_DAYS)
        # the last reading and its run (STUCK_S): [price, volume, liquidity, detectors' time
        # of its first point, repeats since, whether the run is stuck]
        self.reading: list | None = None
        # [price, detectors' time, points, moves before, their largest size, whether a flat
        # stretch came since the last restart] while the price has not moved since the first
        # point or one of its first FLAT_MOVES moves (a flat start, above); None after, or
        # for a state from before it
        self.flat_start: list | None = None
        self.fresh_params: tuple | None = None  # (detector class, its params, likelihood's)
        self.young_points = young_points
        # a young series' moves (young_points, kades.temporal.young); None once grown up, on
        # linear scale, or for a state from before it
        self.young = self._new_young()
        self.young_won: set[str] = set()  # the kinds the young rule scored at the last point
        self.liquidity_seen = None  # the last liquidity a point gave (_drains)
        # a chain series' pools, [slot, liquidity] of each one's newest state taken: what its
        # ticks' liquidity is summed from (kades.temporal.pools, by temporal-analysis)
        self.pools: dict[str, list] = {}

    @property
    def last_time(self) -> float | None:
        """The real time of the last point taken (the detectors' clock may run slower)."""
        last = self.detector.last_time
        return None if last is None else last + self.clock.offset

    def process_one(self, x: dict) -> list[dict[str, Any]]:
        """Score x, learn from it unless anomalous; the flag it raises, if any.

        At most one flag per point: the strongest kind over the threshold that is not in
        its cooldown (the other kinds over it are named in its details and count as flagged).
        A flag is {time, anomaly_type, score, details}, `time` as given in x.
        """
        moment = x["time"]
        clock = self.clock
        last = self.detector.last_time
        # the reading before on the durations' clock (`now` below, taken before this point
        # stretches): a run over the threshold there goes on across a long step (AFTERMATH)
        before = None if last is None else last - clock.stretched
        model, after_gap = clock.model_time(moment, last)
        if after_gap:
            before = None
        liquidity = x.get("liquidity")
        drained = False
        if liquidity is not None:  # (per point: the common case is a tick with one)
            drained = self._drains(liquidity)
            self.liquidity_seen = liquidity
        stuck = self._stuck(x, model)
        restart = ((self.flat_start is not None or last is None)
                   and self._leaves_flat_start(x, model))  # per point: two reads, as a rule
        if clock.slowed != 1.0 and hasattr(self.detector, "rescale_time"):
            self.detector.rescale_time(clock.slowed, clock.taught_s)  # a new cadence (clock)
        if model != moment:
            x = {**x, "time": model}
        flags = self._judge(x, moment, model, after_gap, stuck, before, drained)
        young = self.young
        if young is not None:  # x's moves join its scales unless x was anomalous
            young.learn(x, flagged=self.anomalous_since is not None)
            if young.points >= self.young_points:
                self.young = None
        if restart:
            self._restart(x)
        return flags

    def _judge(self, x: dict, moment: float, model: float, after_gap: bool, stuck: bool,
               before: float | None, drained: bool = False) -> list[dict[str, Any]]:
        """process_one's flag for x, on the detectors' clock (`model`; `moment`: real;
        `before`: the reading before on the durations' clock, None after a gap; `drained`:
        x drains the pool, _drains)."""
        clock = self.clock
        now = model - clock.stretched  # the durations' clock
        raw = self.last_raw = self.detector.score_parts(x)
        # the likelihood learns every point, anomalies too: a long event becomes the normal
        # (fewer alerts); its evidence in a flag's details is judged after learning it. On a
        # slowed clock, rare events stay out of its normal (RARE_KINDS); a burst's reading
        # counts as its share of one (clock.BURST_STEPS)
        rare_out = RARE_KINDS if clock.scale > 1.0 else ()
        parts = self.last_parts = (self.likelihood.score_learn(raw, rare_out=rare_out,
                                                               share=clock.share)
                                   if self.likelihood else raw)
        # the scores of members judged against the series' own range meet the threshold as
        # they are (TemporalEnsemble.last_direct; the likelihood would learn a slow drift's
        # rising score as the normal)
        direct = getattr(self.detector, "last_direct", None)
        if direct:
            won = None
            for kind, score in direct.items():
                if score > parts[kind]:
                    if parts is raw:
                        parts = self.last_parts = dict(raw)
                    parts[kind] = score
                    won = (won or set()) | {kind}
            # the member named for a kind is the one whose score it now holds: the ensemble
            # names the direct member against the raw scores, the threshold meets surprise
            self.detector.name_direct(x, won or ())
        young_won = self.young_won = set()  # the kinds the young rule's score holds (_details)
        if self.young is not None:  # a young series' large moves (kades.temporal.young)
            for kind, score in self.young.score(x).items():
                if kind in parts and score > parts[kind]:  # the kinds its detector scores
                    if parts is raw:
                        parts = self.last_parts = dict(raw)
                    parts[kind] = score
                    young_won.add(kind)
                    if hasattr(self.detector, "last_by"):  # (reset by each score_parts)
                        self.detector.last_by = {**self.detector.last_by, kind: YOUNG}
        threshold = self.threshold
        for score in parts.values():
            if score >= threshold:
                break
        else:  # nothing over the threshold: the common case
            self.anomalous_since = None
            if after_gap or stuck or clock.held:  # a held burst teaches no scale (clock)
                self.detector.advance_one(x)
            else:
                self.detector.learn_one(x)
            return []
        over = {kind: score for kind, score in parts.items() if score >= threshold}
        if self.anomalous_since is None:
            self.anomalous_since = now
            self.run_range = None  # the run's first point starts its range (_runs_away)
        peak = self.run_peak
        fresh = [kind for kind in over if (self._starts_run(kind, now, before)
                                           and not self._repeats_last_alert(kind, moment))
                 or (now - self.last_flag_time.get(kind, now) >= self.cooldown_s
                     and over[kind] >= peak.get(kind, 0.0))  # a fading run is old news
                 or _odds(over[kind]) >= ESCALATION_ODDS * _odds(self.last_flag_score.get(kind, 1.0))
                 or (drained and kind in ESCALATES_AT_ONCE)]
        in_episode = self._in_episode(now)
        if not in_episode:  # an episode that ended stays ended (a run may go on: AFTERMATH)
            self.last_alert = None
        # a pull starting within another kind's episode is news (ESCALATES_AT_ONCE)
        pulled = [kind for kind in ESCALATES_AT_ONCE if kind in over and in_episode
                  and (self._drains_since_alert(x) if drained else self._starts_run(kind, now, before))]
        for kind in over:
            self.last_over_time[kind] = now
            if over[kind] > peak.get(kind, 0.0):
                peak[kind] = over[kind]
        flags = []
        if fresh:
            kind = max([k for k in fresh if k in pulled] or fresh, key=lambda k: (over[k], -_rank(k)))
            escalation = in_episode and (kind in pulled or self._escalates(over[kind], kind, now, moment))
            for covered in over:
                self.last_flag_time[covered] = now
                self.last_flag_score[covered] = peak[covered] = over[covered]
            if escalation or not in_episode:
                self.last_alert = (now, over[kind], escalation, moment, x.get("liquidity"), kind)
                self.alerted = (now, moment)
                details = self._details(x, kind, over)
                if not self._recurs(moment, kind, _size(details)):
                    flags.append({"time": moment, "anomaly_type": kind,
                                  "score": round(over[kind], 4), "details": details})
        # a long run is a new normal, but not while it carries the price on away (RUNAWAY;
        # _runs_away follows every point of the run, so it comes first)
        if not self._runs_away(x) and now - self.anomalous_since >= self.relearn_after_s:
            self.detector.learn_one(x)
        else:
            self.detector.advance_one(x)
        return flags

    def _runs_away(self, x: dict) -> bool:
        """Whether x, a point of the run, carries its price on away (RUNAWAY): a new
        extreme of the run while RUNAWAY_SHARE of its points were; follows the run's range."""
        price, span = x["price"], self.run_range
        if span is None:
            self.run_range = [price, price, 1, 1]
            return True
        new = price > span[1] or price < span[0]
        if new:
            span[0], span[1] = min(span[0], price), max(span[1], price)
            span[2] += 1
        span[3] += 1
        return new and span[2] >= RUNAWAY_SHARE * span[3]

    def _leaves_flat_start(self, x: dict, model: float) -> bool:
        """Whether x, one of the series' first FLAT_MOVES moves, comes after a price flat for
        over STUCK_S and STUCK_POINTS since the last restart and is larger than FLAT_GROWTH
        times every move before it (a flat start, above); follows the flat start."""
        flat, last = self.flat_start, self.detector.last_time
        if flat is None:
            if last is None:  # the series' first point
                self.flat_start = [x["price"], model, 1, 0, 0.0, 0]
            return False
        if model <= last:  # a point not after the last one moves nothing (scored 0, unlearned)
            return False
        price, before = x["price"], flat[0]
        if price == before:
            flat[2] += 1
            return False
        # its size: relative on log scale; on linear scale (a signed series) in its own unit,
        # as a relative size is 1 for every move from or to 0 and 2 at most
        size = (abs(price - before) / max(abs(price), abs(before))
                if getattr(self.detector, "log_scale", True) else abs(price - before))
        moves, largest, after_flat = (flat[3] + 1, flat[4], flat[5]) if len(flat) > 5 else (
            FLAT_MOVES, 0.0, 0)  # (a state from before the count: its first move, as then)
        after_flat = after_flat or (flat[2] >= STUCK_POINTS and model - flat[1] > STUCK_S)
        restart = bool(after_flat and size > FLAT_GROWTH * largest
                       and self.fresh_params is not None)  # (None: no way to build them afresh)
        self.flat_start = ([price, model, 1, moves, max(largest, size), int(after_flat and not restart)]
                           if moves < FLAT_MOVES else None)
        return restart

    def _restart(self, x: dict) -> None:
        """Fresh detectors and likelihood, which learn from x (on the detectors' clock) on."""
        detector_class, detector_params, likelihood_params = self.fresh_params
        judged, self.detector = self.detector, detector_class.from_state(None, **detector_params)
        if likelihood_params is not None:
            self.likelihood = AnomalyLikelihood.from_state(None, **likelihood_params)
        self.detector.learn_one(x)
        self.young = self._new_young()
        if self.young is not None:
            self.young.learn(x, flagged=False)
        for name in ("last_by", "last_direct"):  # x's verdict names the member that judged it
            if hasattr(judged, name):
                setattr(self.detector, name, getattr(judged, name))

    def _new_young(self) -> YoungSeries | None:
        """A fresh young series' rule, if this filter judges them (young_points, log scale)."""
        if self.young_points and getattr(self.detector, "log_scale", True):
            return YoungSeries()
        return None

    def _drains(self, liquidity: float) -> bool:
        """Whether a point's `liquidity` is the last one seen cut by DRAINED or more (to a
        tenth): a pool drained is news even inside a run of pulls alerted at 1.0 (a dump that
        took a sixth of it, then the rest pulled: ESCALATES_AT_ONCE). A point without
        liquidity between them changes nothing."""
        before = self.liquidity_seen
        return before is not None and _cut_to_a_tenth(before, liquidity)

    def _drains_since_alert(self, x: dict) -> bool:
        """Whether x's liquidity is a tenth or less of the last alert's too (or that alert
        named none): a drained pool's dust falling again is not news again."""
        last = self.last_alert
        said = last[4] if last is not None and len(last) > 4 else None
        return said is None or _cut_to_a_tenth(said, x["liquidity"])

    def _stuck(self, x: dict, model: float) -> bool:
        """Whether x repeats a stuck reading (STUCK_S); learns the run of readings from it.
        `model`: x's time on the detectors' clock."""
        run, last = self.reading, self.detector.last_time
        if run is not None and last is not None and model <= last:
            return False  # a point not after the last one moves nothing
        if not self.holds(x) or x.get("volume") != run[1]:
            self.reading = [x["price"], x.get("volume"), x.get("liquidity"), model, 0, False]
            return False
        run[4] += 1
        if not run[5] and run[4] >= STUCK_POINTS and model - run[3] > STUCK_S:
            run[5] = self._warmed_up()
        return run[5]

    def holds(self, x: dict) -> bool:
        """Whether x has the price and liquidity of the last point taken (`reading`): with
        its volume, a stuck reading (_stuck); with volume 0, a bar without a trade
        (policy.no_trade)."""
        run = self.reading  # (per point: the common case, a new price, reads it alone)
        return run is not None and x["price"] == run[0] and x.get("liquidity") == run[2]

    def _warmed_up(self) -> bool:
        """Whether the series has scales to keep: STUCK_WARMUP points in the likelihood's
        normal (or, without one, the detector warmed up)."""
        if self.likelihood:
            return self.likelihood.seen > STUCK_WARMUP
        return getattr(self.detector, "warmed_up", True)

    def _recurs(self, moment: float, kind: str, size: float) -> bool:
        """Whether a flag of `kind` and `size` (_size) at real time `moment` recurs daily or
        weekly: one of its kind, at least half as large, came at this time of day (within
        RECUR_TOLERANCE_S, or two steps) on RECUR_DAYS of the RECUR_LOOKBACK days before,
        or at this time of week on RECUR_WEEKS of the RECUR_WEEKS_LOOKBACK weeks before.
        Remembers it either way."""
        resolution = self.clock.resolution
        if resolution is None or resolution > RECUR_MAX_STEP_S:
            return False
        tolerance = max(RECUR_TOLERANCE_S, 2 * resolution)
        recent = [flag for flag in self.recent_flags
                  if moment - flag[0] <= RECUR_WEEKS_LOOKBACK * WEEK_DAYS * DAY_S + tolerance]
        days = {round((moment - then) / DAY_S) for then, was, their in recent
                if was == kind and RECUR_ESCALATION * their >= size
                and abs((moment - then) - DAY_S * round((moment - then) / DAY_S)) <= tolerance}
        recent.append([moment, kind, size])
        self.recent_flags = recent[-RECUR_KEPT:]  # the state is read and written every tick
        daily = sum(1 <= day <= RECUR_LOOKBACK for day in days)
        weekly = sum(day // WEEK_DAYS <= RECUR_WEEKS_LOOKBACK and day % WEEK_DAYS == 0
                     for day in days if day > 0)
        return daily >= RECUR_DAYS or weekly >= RECUR_WEEKS

    def _in_episode(self, moment: float) -> bool:
        """Whether the last flag's episode still runs: flagged less than episode_s ago and
        some kind over the threshold ever since, with gaps of at most quiet_s."""
        if not self.episode_s or self.last_alert is None or not self.last_over_time:
            return False
        return (moment - self.last_alert[0] < self.episode_s
                and moment - max(self.last_over_time.values()) <= self._quiet_s())

    def _repeats_last_alert(self, kind: str, moment: float) -> bool:
        """Whether a run of `kind` starting at `moment` (real time) repeats the last alert
        (REPEAT): a kind that alert covered, or flagged since, less than cooldown_s after it;
        never a pull (ESCALATES_AT_ONCE)."""
        last = self.alerted
        return (last is not None and kind not in ESCALATES_AT_ONCE
                and moment - last[1] < self.cooldown_s
                and self.last_flag_time.get(kind, -math.inf) >= last[0])

    def _escalates(self, score: float, kind: str, now: float, moment: float) -> bool:
        """Whether a flag of `kind` and `score` at `now` (the durations' clock; `moment`: real)
        is news within the episode: far stronger than its last alert, once (a pump building
        up scores 0.57, 0.87, 0.99, 1.0 in a few readings, each four times the odds of the one
        before: one escalation, not three), and that alert ESCALATION_SPACING_S old in real
        time (on the durations' clock for a state from before) unless a pull or a fall after
        a rise's alert (REVERSES)."""
        last = self.last_alert
        waited = moment - last[3] if len(last) > 3 else now - last[0]
        # (a state from before the kind was kept: no reversal)
        reverses = len(last) > 5 and last[5] in REVERSES.get(kind, ())
        return (not (len(last) > 2 and last[2]) and _odds(score) >= ESCALATION_ODDS * _odds(last[1])
                and (waited >= ESCALATION_SPACING_S or kind in ESCALATES_AT_ONCE or reverses))

    def _starts_run(self, kind: str, moment: float, before: float | None = None) -> bool:
        """Whether `kind` over the threshold at `moment` starts a run: it was last over
        more than quiet_s ago, and, for a stretch's score (CARRIED_KINDS), not at the
        reading `before` (AFTERMATH)."""
        last = self.last_over_time.get(kind)
        return (last is None or (moment - last > self._quiet_s()
                                 and (last != before or kind not in CARRIED_KINDS))
                or kind not in self.last_flag_time)

    def _quiet_s(self) -> float:
        """quiet_s, or on a slowed clock QUIET_STEPS typical steps if longer: when the
        resolution is shorter than a typical step (the shortest of jittered steps, before
        clock.RANDOM_SHARE took them as random; the median of random ones), a typical step
        outlasted quiet_s, so each anomalous point started a run of its own and alerted."""
        scale = self.clock.scale
        if scale == 1.0:
            return self.quiet_s
        return max(self.quiet_s, QUIET_STEPS * math.exp(self.clock.log_step) / scale)

    def _details(self, x: dict, kind: str, over: dict[str, float]) -> dict[str, Any]:
        """The evidence: the window, the move, the baseline it was compared with."""
        if kind in self.young_won:  # the young series' rule, not a member (kades.temporal.young)
            details = {"detector": YOUNG, **self.young.evidence(kind), "price": x["price"]}
        else:
            details = self._member_details(x, kind)
        if len(over) > 1:
            details["also"] = {k: round(s, 4) for k, s in sorted(over.items()) if k != kind}
        return details

    def _member_details(self, x: dict, kind: str) -> dict[str, Any]:
        """_details of a kind the detector's member scored, with the likelihood's evidence."""
        describe = getattr(self.detector, "describe", None)
        named = getattr(self.detector, "last_by", None)
        details = (describe(x, kind, member=named.get(kind)) if describe and named is not None
                   else describe(x, kind) if describe else
                   {"detector": self.detector.name, **self.detector.evidence(x)})
        details["price"] = x["price"]
        scale = self.clock.scale
        if scale != 1.0:  # windows in real seconds
            for key in [k for k in details if k == "window_s" or k.endswith("_window_s")]:
                details[key] = round(details[key] * scale, 3)
        direct = getattr(self.detector, "last_direct", None)
        if direct and details.get("detector") in getattr(self.detector, "direct_members", ()):
            # scored as it is, no likelihood
            details["raw_score"] = round(direct[kind], 4)
        elif self.likelihood:
            details["raw_score"] = round(self.last_raw[kind], 4)
            details.update(self.likelihood.evidence(kind))
        return details

    def to_state(self) -> dict[str, Any]:
        return {"detector": self.detector.to_state(), "last_flag_time": dict(self.last_flag_time),
                "anomalous_since": self.anomalous_since,
                **({"run_range": list(self.run_range)}
                   if self.run_range is not None and self.anomalous_since is not None else {}),
                "last_over_time": dict(self.last_over_time),
                "last_flag_score": dict(self.last_flag_score),
                **({"run_peak": dict(self.run_peak)} if self.run_peak else {}),
                **({"last_alert": list(self.last_alert)} if self.last_alert else {}),
                **({"alerted": list(self.alerted)} if self.alerted else {}),
                **self.clock.to_state(),
                **({"recent_flags": self.recent_flags} if self.recent_flags else {}),
                **({"reading": self.reading} if self.reading is not None else {}),
                **({"liquidity_seen": self.liquidity_seen}
                   if self.liquidity_seen is not None else {}),
                **({"flat_start": list(self.flat_start)} if self.flat_start is not None else {}),
                **({"pools": dict(self.pools)} if self.pools else {}),  # (its lists not changed)
                **({"young": self.young.to_state()} if self.young is not None else {}),
                **({"likelihood": self.likelihood.to_state()} if self.likelihood else {})}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, *, detector_params: dict | None = None,
                   detector_class: type = ReturnSpikeDetector,
                   likelihood_params: dict | None = None, **params: Any) -> "ThresholdFilter":
        """A filter with `params` around a `detector_class` with `detector_params`, carrying on
        from `state` (None: a fresh one); with `likelihood_params` (a dict, maybe empty) an
        AnomalyLikelihood with them, fresh when the state holds none of its version."""
        state = state or {}
        detector = detector_class.from_state(state.get("detector"), **(detector_params or {}))
        if likelihood_params is not None:
            params["likelihood"] = AnomalyLikelihood.from_state(state.get("likelihood"),
                                                                **likelihood_params)
        monitor = cls(detector, **params)
        monitor.last_flag_time = dict(state.get("last_flag_time", {}))
        monitor.anomalous_since = state.get("anomalous_since")
        monitor.run_range = list(state["run_range"]) if state.get("run_range") else None
        monitor.last_over_time = dict(state.get("last_over_time", {}))
        monitor.last_flag_score = dict(state.get("last_flag_score", {}))
        monitor.run_peak = dict(state.get("run_peak", {}))
        monitor.last_alert = tuple(state["last_alert"]) if state.get("last_alert") else None
        alerted = state.get("alerted")
        if not alerted and monitor.last_alert and len(monitor.last_alert) > 3:  # from before it
            alerted = (monitor.last_alert[0], monitor.last_alert[3])
        monitor.alerted = tuple(alerted) if alerted else None
        monitor.recent_flags = [list(flag) for flag in state.get("recent_flags", [])]
        monitor.reading = list(state["reading"]) if state.get("reading") else None
        monitor.liquidity_seen = state.get("liquidity_seen",  # (a state from before it)
                                           monitor.reading[2] if monitor.reading else None)
        monitor.clock = SeriesClock.from_state(state)
        monitor.flat_start = list(state["flat_start"]) if state.get("flat_start") else None
        monitor.pools = dict(state.get("pools", {}))
        if state and monitor.young is not None:  # grown up, or from before the young rule
            monitor.young = YoungSeries.from_state(state["young"]) if "young" in state else None
        monitor.fresh_params = (detector_class, dict(detector_params or {}),
                                None if likelihood_params is None else dict(likelihood_params))
        return monitor
