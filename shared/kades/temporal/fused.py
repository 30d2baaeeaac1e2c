"""The ensemble's seven members stepped in one pass: the same arithmetic as each member's own
`score_parts` / `learn_one` / `advance_one`, operation for operation, so that the same floats
come out, without what stepping them one by one costs.

One by one, every member recomputes the point's log price, log volume, elapsed time and its
EWMA weights 1 - 0.5 ** (elapsed / half-life), builds a dictionary per point, and reads and
writes its state as attributes; `learn_one` then recomputes what `score_parts` just did. Here
a generator holds the whole state in its local variables between points (`stepper`): the
point's logs and weights are taken once (the weights of an elapsed time once per process:
ticks come at a few intervals), what scoring found is reused by learning the same point, and
`max(a, b)` is written `b if b > a else a` (the same value, ties and NaN alike, without a
call). The state goes back to the member objects on request (`SYNC`), so `to_state`,
`evidence` and pickling see one truth; TemporalEnsemble asks before each of them.

Only the default members in their default order take this path (`fits`), and only points it
can take exactly: a price whose level cannot be taken (a log of <= 0) or a NaN volume or
liquidity answers None, and the caller goes the members' own way, where the same error or
the same odd branch happens. tests/temporal/test_fused.py checks the two ways give the same
scores, states and alerts.

>>> from kades.temporal.ensemble import MEMBERS
>>> members = [member() for member in MEMBERS]
>>> step = stepper(members)
>>> step.send((LEARN, {"time": 0.0, "price": 1.0, "volume": 10.0}))
True
>>> members[2].volume_short          # not written back yet
0.0
>>> step.send((SYNC, None)), members[2].volume_short, members[0].last_log_price
(True, 2.302585092994046, 0.0)

The level-range member (DIRECT_MEMBER) is stepped here too; its scores come apart from the
others' (a third item of SCORE's answer), as TemporalEnsemble keeps them (`last_direct`).
"""
from __future__ import annotations

import math
from typing import Generator

try:
    import cython
except ImportError:  # not compiled: the annotations below are never evaluated
    pass

from kades.temporal.base import (MAX_GRID_STEP as _MAX_GRID, NORMAL_TAIL_Z,
                                 RESOLUTION_GROWTH as _GROWTH, update_resolution)
from kades.temporal.detector import ReturnSpikeDetector
from kades.temporal.levelrange import ACCEPT_SCORE, LevelRangeDetector
from kades.temporal.liquidity import EMPTY_POOL_LEVEL, LiquidityDropDetector
from kades.temporal.momentum import MomentumFeatures
from kades.temporal.multiwindow import MultiWindowReturnDetector
from kades.temporal.pump import DUMP_GRIDS, PumpDetector
from kades.temporal.volatility import NORMAL_TAIL_LOG_RATIO, VolatilityRegimeDetector

ORDER = (ReturnSpikeDetector, MultiWindowReturnDetector, PumpDetector, LiquidityDropDetector,
         VolatilityRegimeDetector, MomentumFeatures, LevelRangeDetector)
DIRECT_MEMBER = LevelRangeDetector.name  # its scores apart (TemporalEnsemble.last_direct)
DIRECT_HALF = 0.5  # from this score it is named for a kind, when over the others
SCORE, LEARN, ADVANCE, SYNC = range(4)   # what a (command, point) sent to a stepper asks
CACHED_INTERVALS = 512   # distinct elapsed times whose weights are kept, per parameter set
_WEIGHTS: dict[tuple, dict] = {}   # parameters -> {elapsed: weights}, shared by all steppers
# update_tail's quantile steps (kades.temporal.base), as it computes them
_UP, _DOWN = 0.99, 0.99 - 1.0
_log, _sqrt, _INF = math.log, math.sqrt, math.inf
_LONG = 2 ** 62  # counts the compiled pass holds in a C long (LP64), with room to count on
COMPILED = not __file__.endswith(".py")  # this source as Cython built it (shared/setup.py)


def fits(members: list) -> bool:
    """Whether `members` are the default ones in the default order, on the default interval
    floor, three windows and one clock (one last time), with no None they would sum
    (`_nones_unsummed`), and compiled, with the floats and ints C holds (`_c_typed`): what a
    stepper assumes."""
    return (len(members) == len(ORDER)
            and all(type(member) is kind for member, kind in zip(members, ORDER))
            and members[0].min_interval_s == 1.0
            and len(members[1].windows_s) == len(members[1].biases) == len(members[1].scales) == 3
            and len(members[1].averages) in (0, 3)
            and members[6].log_scale == members[1].log_scale
            and len({member.last_time for member in members}) == 1
            and _nones_unsummed(members)
            and (not COMPILED or _c_typed(members)))


def _c_typed(members: list) -> bool:
    """Whether the state and counts the compiled pass holds as C doubles and longs (its
    locals' annotations) are floats and ints, as the members write them: another type would
    come back converted ("0" in a state's JSON as "0.0", 7.5 seen as 7) or fail in C, where
    the members, and the source, keep it as it is."""
    rs, mw, pd, ld, vr, mf, lr = members
    return (all(type(value) is float for value in (
                rs.return_scale, rs.resolution, rs.tail, rs.volume_level, rs.volume_scale,
                mw.resolution, mw.tail, pd.price_scale, pd.volume_short, pd.volume_long,
                pd.volume_scale, pd.resolution, ld.scale, vr.short_variance, vr.long_variance,
                vr.resolution, vr.tail, mf.up, mf.down, mf.fast, mf.slow, mf.signal, lr.mean,
                lr.deviation, lr.step, lr.smooth, lr.resolution, lr.accepted))
            and all(type(value) is int and -_LONG <= value < _LONG for value in (
                rs.returns_seen, rs.volumes_seen, mw.seen, pd.seen, pd.volumes_seen, ld.seen,
                vr.seen, mf.seen, lr.seen, rs.grace_period, mw.grace_period, pd.grace_period,
                ld.grace_period, vr.grace_period, lr.grace_period))
            and all(value is None or type(value) is float for value in _optional(members))
            and all(type(value) is float for value in (*mw.averages, *mw.biases, *mw.scales)))


def _nones_unsummed(members: list) -> bool:
    """Whether no None of `_optional` (nor MW's averages, none before its first point) is
    one the members would take in a sum (a TypeError or an IndexError, in a state written
    elsewhere): the pass holds it as 0.0 beside a flag, and would sum."""
    rs, mw, pd, ld, vr, mf, lr = members
    return ((rs.last_log_price is not None or rs.returns_seen < rs.grace_period)
            and (len(mw.averages) == 3 or mw.seen < mw.grace_period)
            and (pd.price_average is not None or pd.seen < pd.grace_period)
            and (lr.first_time is None or rs.last_time is not None))


def _optional(members: list) -> tuple:
    """The state the members may hold as None (nothing seen yet), in the pass's order: the
    last time, RS's last log price, MW's last level, PD's average and last level, LD's
    average, VR's, MF's and LR's last levels, LR's first time."""
    rs, mw, pd, ld, vr, mf, lr = members
    return (rs.last_time, rs.last_log_price, mw.last_level, pd.price_average, pd.last_level,
            ld.average, vr.last_level, mf.last_level, lr.last_level, lr.first_time)


def _opt(held, value):
    """`value`, or None where the pass holds none (`_optional`; a C double is never None)."""
    return value if held else None


def _square(x):
    """x ** 2 as Python computes it, OverflowError and all (x untyped: not C's pow, whose
    overflow is a silent inf)."""
    return x ** 2


def _parameters(members: list) -> tuple:
    """What the weights of an elapsed time depend on: every member's half-lives and windows."""
    rs, mw, pd, ld, vr, mf, lr = members
    return ((rs.half_life_s, mw.half_life_s, pd.half_life_s, pd.price_window_s,
             pd.volume_window_s, pd.volume_baseline_s, ld.half_life_s, ld.window_s,
             vr.long_half_life_s, mf.rsi_half_life_s, mf.fast_s, mf.slow_s, mf.signal_s,
             lr.smooth_s, lr.baseline_s),
            mw.windows_s, vr.short_half_life_s, vr.min_points)


def _weights_of(members: list):
    """A function elapsed -> (EWMA weights, VR's short rate, sqrt(elapsed), MW's window
    weights, MW's sqrt(1 + elapsed / window), LR's fading 0.5 ** (elapsed / baseline)),
    remembered per distinct elapsed."""
    halves, windows, short_half, min_points = parameters = _parameters(members)
    table = _WEIGHTS.setdefault(parameters, {})

    def weights(elapsed: float) -> tuple:
        found = table.get(elapsed)
        if found is None:
            found = (tuple(1.0 - 0.5 ** (elapsed / half) for half in halves),
                     min(1 - 0.5 ** (elapsed / short_half), 1.0 / min_points), _sqrt(elapsed),
                     tuple(1.0 - 0.5 ** (elapsed / window) for window in windows),
                     tuple(_sqrt(1.0 + elapsed / window) for window in windows),
                     0.5 ** (elapsed / halves[-1]))
            if len(table) >= CACHED_INTERVALS:
                table.clear()
            table[elapsed] = found
        return found
    return weights


def stepper(members: list) -> Generator:
    """A primed generator over `members` (see `fits`). Send it (SCORE, x): the ensemble's
    (score per kind, member behind each kind that scored, DIRECT_MEMBER's scores) at x; (LEARN, x) or (ADVANCE, x):
    every member's learn_one(x) or advance_one(x), True; (SYNC, None): the state written back
    to the members, True. None when x must go the members' own way (nothing changed)."""
    step = _stepper(members)
    next(step)
    return step


def _stepper(members: list) -> Generator:  # noqa: C901 -- one frame is the point (see above)
    rs, mw, pd, ld, vr, mf, lr = members
    weights_at = _weights_of(members)
    known = _WEIGHTS[_parameters(members)]   # weights_at's table, looked up without a call
    log_scale = mw.log_scale
    # C types for the compiled build (setup.py: Cython, when a compiler is there); Python
    # never evaluates a local's annotation. A value the members may hold as None is a C double
    # beside a has_* flag (below).
    r_min_scale: float; r_grid: float; r_min_vscale: float; r_half2: float; r_clip: float
    m_floor: float; m_grid: float; m_clip: float; m_half2: float; m_trend: float
    p_min_scale: float; p_min_vscale: float; p_half2: float; p_grids: float
    l_min_scale: float; l_half2: float
    v_min_var: float; v_grid: float; v_short_half: float; v_half: float; v_half2: float
    v_clip2: float
    g_grace_s: float; g_half: float; g_ratio: float; g_clip: float; g_floor: float
    g_half2: float; g_accept: float
    r_grace: cython.long; m_grace: cython.long; p_grace: cython.long; l_grace: cython.long
    v_grace: cython.long; g_grace: cython.long
    r_returns: cython.long; r_volumes: cython.long; m_seen: cython.long; p_seen: cython.long
    p_volumes: cython.long; l_seen: cython.long; v_seen: cython.long; f_seen: cython.long
    g_seen: cython.long
    r_scale: float; r_res: float; r_tail: float; r_vlevel: float; r_vscale: float
    m_res: float; m_tail: float
    p_scale: float; p_short: float; p_long: float; p_vscale: float; p_res: float
    l_scale: float; v_short: float; v_long: float; v_res: float; v_tail: float
    f_up: float; f_down: float; f_fast: float; f_slow: float; f_signal: float
    g_mean: float; g_dev: float; g_step: float; g_smooth: float; g_res: float; g_acc: float
    r_move: float; r_z: float; v_next: float; g_next: float
    level: float; elapsed: float; v_rate: float; root: float; g_fade: float
    w_root0: float; w_root1: float; w_root2: float
    spike: float; crash: float; volume_spike: float; pump: float; dump: float; drop: float
    regime: float; spread: float; grid: float; z: float; score: float; excess: float
    a0: float; a1: float; a2: float; b0: float; b1: float; b2: float
    s0: float; s1: float; s2: float; best: float; best_size: float
    z_price: float; z_volume: float; short: float; rate: float; cap: float; floor: float
    ratio: float; scale: float; size: float; cut: float; grid_was: float; move: float
    grown: float; grid_step: float; decay: float; value: float; count: float
    deviation: float; log_return: float; gap: float; trend: float; average: float
    bias: float; judged: float
    k_rs: float; k_mw: float; k_pd: float; k_pw: float; k_pv: float; k_pb: float
    k_ld: float; k_lw: float; k_vr: float; k_rsi: float; k_fast: float; k_slow: float
    k_signal: float; k_smooth: float; k_base: float; w_avg0: float; w_avg1: float; w_avg2: float
    c_tail_ratio: float; c_tail_z: float; c_max_grid: float; c_growth: float; c_up: float
    c_down: float; c_inf: float; c_empty: float; c_direct_half: float
    largest: float; i: cython.Py_ssize_t; scored: cython.bint; w_elapsed: float
    last: float; r_log: float; m_level: float; p_average: float; p_last: float
    l_average: float; v_level: float; f_level: float; g_level: float; g_first: float
    log_volume: float; log_liquidity: float; level_was: float
    has_last: cython.bint; has_r_log: cython.bint; has_m_level: cython.bint
    has_p_average: cython.bint; has_p_last: cython.bint; has_l_average: cython.bint
    has_v_level: cython.bint; has_f_level: cython.bint; has_g_level: cython.bint
    has_g_first: cython.bint; has_log_volume: cython.bint; has_log_liquidity: cython.bint
    has_level_was: cython.bint; has_averages: cython.bint; clipping: cython.bint
    m_a0: float; m_a1: float; m_a2: float; m_b0: float; m_b1: float; m_b2: float
    m_s0: float; m_s1: float; m_s2: float; w_root: float; w_fade: float
    # the module's constants as C numbers (a global read is a Python float, boxed arithmetic)
    c_tail_ratio, c_tail_z, c_max_grid, c_growth, c_up, c_down, c_inf, c_empty, c_direct_half = (
        NORMAL_TAIL_LOG_RATIO, NORMAL_TAIL_Z, _MAX_GRID, _GROWTH, _UP, _DOWN, _INF,
        EMPTY_POOL_LEVEL, DIRECT_HALF)
    # parameters
    r_grace, r_min_scale, r_grid, r_min_vscale = (rs.grace_period, rs.min_return_scale,
                                                  rs.grid_steps, rs.min_volume_scale)
    r_half2, r_clip = rs.half_score_z ** 2, rs.winsorise_z
    m_grace, m_floor, m_grid, m_clip = mw.grace_period, mw.min_scale, mw.grid_steps, mw.winsorise_z
    m_half2, m_trend = mw.half_score_z * mw.half_score_z, mw.trend_weight
    p_grace, p_min_scale, p_min_vscale = pd.grace_period, pd.min_price_scale, pd.min_volume_scale
    p_half2, p_grids = pd.half_score_z * pd.half_score_z, DUMP_GRIDS
    l_grace, l_min_scale, l_half2 = ld.grace_period, ld.min_scale, ld.half_score_z * ld.half_score_z
    v_grace, v_min_var, v_grid, v_short_half = (vr.grace_period, vr.min_variance, vr.grid_steps,
                                                vr.short_half_life_s)
    v_half = math.log(vr.half_score_ratio)
    v_half2, v_clip2 = v_half * v_half, vr.clip_z ** 2
    g_grace, g_grace_s, g_half, g_ratio, g_clip, g_floor = (
        lr.grace_period, lr.grace_s, lr.half_score_z, lr.max_range_ratio, lr.winsorise_z,
        lr.min_scale)
    g_half2, g_accept, g_name = g_half * g_half, ACCEPT_SCORE, DIRECT_MEMBER
    # state; what a member may hold as None is a C double here, beside a flag saying it is
    # held (has_*): as an object, every sum it took part in was a boxed float
    (has_last, has_r_log, has_m_level, has_p_average, has_p_last, has_l_average, has_v_level,
     has_f_level, has_g_level, has_g_first) = (value is not None for value in _optional(members))
    (last, r_log, m_level, p_average, p_last, l_average, v_level, f_level, g_level, g_first) = (
        0.0 if value is None else value for value in _optional(members))
    (r_returns, r_volumes, r_scale, r_res, r_tail, r_vlevel, r_vscale) = (
        rs.returns_seen, rs.volumes_seen, rs.return_scale, rs.resolution,
        rs.tail, rs.volume_level, rs.volume_scale)
    m_seen, m_res, m_tail = mw.seen, mw.resolution, mw.tail
    # MW's three windows (fits): averages (none before the first point), biases, scales
    has_averages = len(mw.averages) == 3
    m_a0, m_a1, m_a2 = mw.averages if has_averages else (0.0, 0.0, 0.0)
    (m_b0, m_b1, m_b2), (m_s0, m_s1, m_s2) = mw.biases, mw.scales
    p_seen, p_volumes, p_scale, p_short, p_long, p_vscale, p_res = (
        pd.seen, pd.volumes_seen, pd.price_scale, pd.volume_short,
        pd.volume_long, pd.volume_scale, pd.resolution)
    l_seen, l_scale = ld.seen, ld.scale
    v_seen, v_short, v_long, v_res, v_tail = (vr.seen, vr.short_variance, vr.long_variance,
                                              vr.resolution, vr.tail)
    f_seen, f_up, f_down, f_fast, f_slow, f_signal = (
        mf.seen, mf.up, mf.down, mf.fast, mf.slow, mf.signal)
    g_seen, g_mean, g_dev, g_step, g_smooth, g_res, g_acc = (
        lr.seen, lr.mean, lr.deviation, lr.step, lr.smooth, lr.resolution, lr.accepted)
    # the point last scored (x and the values taken from it), while the state is still the one
    # it was scored on: its logs, elapsed time and weights are still in the locals
    scored = False
    s_x = s_t = s_price = s_volume = s_liquidity = None
    w_elapsed = 0.0  # the elapsed time whose weights the locals hold (none: it is >= 1)
    r_move = r_z = v_next = g_next = g_score = 0.0
    answer = None
    while True:
        command, x = yield answer
        answer = True
        if command == SYNC:
            (rs.returns_seen, rs.volumes_seen, rs.last_log_price, rs.return_scale, rs.resolution,
             rs.tail, rs.volume_level, rs.volume_scale) = (r_returns, r_volumes,
                                                           _opt(has_r_log, r_log), r_scale,
                                                           r_res, r_tail, r_vlevel, r_vscale)
            mw.seen, mw.last_level, mw.resolution, mw.tail = (m_seen, _opt(has_m_level, m_level),
                                                              m_res, m_tail)
            mw.averages = [m_a0, m_a1, m_a2] if has_averages else []
            mw.biases, mw.scales = [m_b0, m_b1, m_b2], [m_s0, m_s1, m_s2]
            (pd.seen, pd.volumes_seen, pd.price_average, pd.price_scale, pd.volume_short,
             pd.volume_long, pd.volume_scale, pd.last_level, pd.resolution) = (
                p_seen, p_volumes, _opt(has_p_average, p_average), p_scale, p_short, p_long,
                p_vscale, _opt(has_p_last, p_last), p_res)
            ld.seen, ld.average, ld.scale = l_seen, _opt(has_l_average, l_average), l_scale
            (vr.seen, vr.last_level, vr.short_variance, vr.long_variance, vr.resolution,
             vr.tail) = v_seen, _opt(has_v_level, v_level), v_short, v_long, v_res, v_tail
            (mf.seen, mf.last_level, mf.up, mf.down, mf.fast, mf.slow, mf.signal) = (
                f_seen, _opt(has_f_level, f_level), f_up, f_down, f_fast, f_slow, f_signal)
            (lr.seen, lr.first_time, lr.last_level, lr.mean, lr.deviation, lr.step, lr.smooth,
             lr.resolution, lr.accepted) = (g_seen, _opt(has_g_first, g_first),
                                            _opt(has_g_level, g_level), g_mean, g_dev, g_step,
                                            g_smooth, g_res, g_acc)
            when = _opt(has_last, last)  # one object, as the members share one time
            for member in members:
                member.last_time = when
            continue
        try:  # what x is: whatever goes wrong here, the members' own way meets it
            t = x["time"]
            if has_last and t <= last:  # not after the last point: no member moves
                if command == SCORE:
                    answer = ({"flash_crash": 0.0, "price_spike": 0.0, "liquidity_drop": 0.0,
                               "pump": 0.0, "dump": 0.0, "volume_spike": 0.0,
                               "volatility_regime": 0.0}, {},
                              {})
                continue
            price, volume, liquidity = x["price"], x.get("volume"), x.get("liquidity")
            if not (scored and s_x is x and s_t is t and s_price is price and s_volume is volume
                    and s_liquidity is liquidity):  # else: the locals hold what scoring took
                scored = False
                if not ((volume is None or volume == volume)  # NaN: the one value unequal
                        and (liquidity is None or liquidity == liquidity)):  # to itself
                    raise ValueError("a NaN volume or liquidity")
                level = _log(price) if log_scale else float(price)
                has_log_volume = volume is not None and volume > 0
                log_volume = _log(volume) if has_log_volume else 0.0
                has_log_liquidity = not (liquidity is None or not liquidity >= 0)  # liquidity_level
                log_liquidity = ((_log(liquidity) if liquidity > 0 else c_empty)
                                 if has_log_liquidity else 0.0)
                elapsed = t - last if has_last else 1.0
                elapsed = elapsed if elapsed > 1.0 else 1.0   # max(1.0, t - last)
                if elapsed != w_elapsed:  # ticks come at a few intervals: mostly the last one's
                    rates, v_rate, root, m_weights, m_roots, g_fade = (known.get(elapsed)
                                                                       or weights_at(elapsed))
                    w_root0, w_root1, w_root2 = m_roots
                    (k_rs, k_mw, k_pd, k_pw, k_pv, k_pb, k_ld, k_lw, k_vr, k_rsi, k_fast,
                     k_slow, k_signal, k_smooth, k_base) = rates  # _parameters' order
                    w_avg0, w_avg1, w_avg2 = m_weights
                    w_elapsed = elapsed
        except Exception:
            answer = None
            continue
        try:  # an error past here (an overflow) is the caller's, raised by it
            if command == SCORE:
                spike = crash = volume_spike = pump = dump = drop = regime = 0.0
                by = {}
                # ReturnSpikeDetector.score_parts
                if has_r_log:
                    spread = (r_min_scale if r_min_scale > r_scale else r_scale) * root
                    grid = r_grid * (c_max_grid if c_max_grid < r_res else r_res)  # min(r_res, ...)
                    r_move = abs(level - r_log)
                    r_z = r_move / (grid if grid > spread else spread)
                if r_returns >= r_grace:
                    log_return = level - r_log
                    z = r_z * c_tail_z / (c_tail_z if c_tail_z > r_tail else r_tail)
                    score = z * z / (z * z + r_half2)
                    if log_return > 0:
                        if score > 0.0:
                            spike, by["price_spike"] = score, "return_spike"
                    elif score > 0.0:
                        crash, by["flash_crash"] = score, "return_spike"
                    if has_log_volume and r_volumes >= r_grace // 2:
                        excess = log_volume - r_vlevel
                        z = (excess if excess > 0.0 else 0.0) / (
                            r_min_vscale if r_min_vscale > r_vscale else r_vscale)
                        score = z * z / (z * z + r_half2)
                        if score > 0.0:
                            volume_spike, by["volume_spike"] = score, "return_spike"
                # MultiWindowReturnDetector._score
                if m_seen >= m_grace:
                    # the three windows written out (no loop: ~8% of the pass); the z of
                    # the largest |z|, the first of equals, as max(zs, key=abs)
                    grid, a0, a1, a2, b0, b1, b2, s0, s1, s2 = (
                        m_grid * m_res, m_a0, m_a1, m_a2, m_b0, m_b1, m_b2, m_s0, m_s1, m_s2)
                    spread = (m_floor if m_floor > s0 else s0) * w_root0
                    best = (level - a0 - b0) / (grid if grid > spread else spread)
                    best_size = abs(best)
                    spread = (m_floor if m_floor > s1 else s1) * w_root1
                    z = (level - a1 - b1) / (grid if grid > spread else spread)
                    if abs(z) > best_size:
                        best, best_size = z, abs(z)
                    spread = (m_floor if m_floor > s2 else s2) * w_root2
                    z = (level - a2 - m_trend * (a1 - a2) - b2) / (grid if grid > spread else spread)
                    if abs(z) > best_size:
                        best = z
                    z = best * c_tail_z / (c_tail_z if c_tail_z > m_tail else m_tail)
                    size = abs(z)
                    score = size * size / (size * size + m_half2)
                    if z > 0 and score > spike:
                        spike, by["price_spike"] = score, "multi_window"
                    if z < 0 and score > crash:
                        crash, by["flash_crash"] = score, "multi_window"
                # PumpDetector._score
                if p_seen >= p_grace:
                    z_price = (level - p_average) / (p_min_scale if p_min_scale > p_scale else p_scale)
                    z_volume = 0.0
                    if has_log_volume and p_volumes >= p_grace // 2:
                        short = p_short + k_pv * (log_volume - p_short)
                        z_volume = (short - p_long) / (
                            p_min_vscale if p_min_vscale > p_vscale else p_vscale)
                    if z_price > 0 and z_volume > 0:
                        score = _sqrt(z_price * z_price / (z_price * z_price + p_half2)
                                      * (z_volume * z_volume / (z_volume * z_volume + p_half2)))
                        if score > 0.0:
                            pump, by["pump"] = score, "pump"
                    elif (z_price < 0 and z_volume > 0 and has_p_last and level < p_last
                          and p_average - level > p_grids * p_res):  # a dump (PumpDetector)
                        score = _sqrt(z_price * z_price / (z_price * z_price + p_half2)
                                      * (z_volume * z_volume / (z_volume * z_volume + p_half2)))
                        if score > 0.0:
                            dump, by["dump"] = score, "pump"
                # LiquidityDropDetector._score
                if l_seen >= l_grace and has_log_liquidity and has_l_average:
                    z = (l_average - log_liquidity) / (l_min_scale if l_min_scale > l_scale else l_scale)
                    score = z * z / (z * z + l_half2) if z > 0 else 0.0
                    if score > 0.0:
                        drop, by["liquidity_drop"] = score, "liquidity_drop"
                # VolatilityRegimeDetector._score (its _next_short is kept for learning)
                if has_v_level:
                    rate = (level - v_level) ** 2
                    if rate == c_inf:  # compiled: an overflow Python's ** raises (_square)
                        rate = _square(level - v_level)
                    rate /= elapsed
                    cap = v_clip2 * (v_min_var if v_min_var > v_long else v_long)
                    v_next = v_short + v_rate * ((cap if cap < rate else rate) - v_short)
                if v_seen >= v_grace:
                    grid = (v_grid * v_res) ** 2
                    if grid == c_inf:  # compiled: an overflow Python's ** raises (_square)
                        grid = _square(v_grid * v_res)
                    grid /= v_short_half
                    floor = v_min_var if v_min_var > v_long else v_long
                    ratio = v_next / (grid if grid > floor else floor)
                    z = (_log(ratio) * c_tail_ratio
                         / (c_tail_ratio if c_tail_ratio > v_tail else v_tail)
                         if ratio > 1 else 0.0)
                    score = z * z / (z * z + v_half2)
                    if score > 0.0:
                        regime, by["volatility_regime"] = score, "volatility_regime"
                # LevelRangeDetector._score (its smoothed level is kept for learning); warmed
                # up and the series mean-reverting (`mean_reverting`), else it scores 0
                direct = {}
                g_next = (level if not has_g_level
                          else g_smooth + k_smooth * (level - g_smooth))  # _smooth
                if (g_seen >= g_grace and has_g_first and last - g_first >= g_grace_s
                        and g_dev <= g_ratio * g_step):
                    scale = g_dev  # max(deviation, min_scale, resolution)
                    if g_floor > scale:
                        scale = g_floor
                    if g_res > scale:
                        scale = g_res
                    z = (g_next - g_mean) / scale
                    if g_acc and (g_acc > 0) == (z > 0):
                        cut = g_half / (2.0 * abs(g_acc))
                        z *= cut if cut < 1.0 else 1.0  # min(1.0, cut)
                    size = abs(z)
                    g_score = score = size * size / (size * size + g_half2)
                    if z > 0:
                        if score > 0.0:
                            direct["price_spike"] = score
                            if score >= c_direct_half and score > spike:
                                by["price_spike"] = g_name
                    elif z < 0 and score > 0.0:
                        direct["flash_crash"] = score
                        if score >= c_direct_half and score > crash:
                            by["flash_crash"] = g_name
                else:
                    g_score = 0.0
                answer = ({"flash_crash": crash, "price_spike": spike, "liquidity_drop": drop,
                           "pump": pump, "dump": dump, "volume_spike": volume_spike,
                           "volatility_regime": regime},
                          by, direct)
                scored, s_x, s_t, s_price, s_volume, s_liquidity = (True, x, t, price, volume,
                                                                     liquidity)
                continue

            learn = command == LEARN
            if not scored:  # not scored on this state: what scoring would have kept
                if has_r_log:
                    spread = (r_min_scale if r_min_scale > r_scale else r_scale) * root
                    grid = r_grid * (c_max_grid if c_max_grid < r_res else r_res)  # min(r_res, ...)
                    r_move = abs(level - r_log)
                    r_z = r_move / (grid if grid > spread else spread)
                if has_v_level:
                    rate = (level - v_level) ** 2
                    if rate == c_inf:  # compiled: an overflow Python's ** raises (_square)
                        rate = _square(level - v_level)
                    rate /= elapsed
                    cap = v_clip2 * (v_min_var if v_min_var > v_long else v_long)
                    v_next = v_short + v_rate * ((cap if cap < rate else rate) - v_short)
                g_next = (level if not has_g_level
                          else g_smooth + k_smooth * (level - g_smooth))
                g_score = None  # taken below if needed
            scored = False
            # The price grid's step (update_resolution) as MW learns it, on every point. RS,
            # VR and PD learn it too, from their own last step and level: when those are equal
            # to MW's, so is the step learned (a move of 0 leaves it).
            grid_was, level_was, has_level_was = m_res, m_level, has_m_level
            if has_m_level:
                move = level - m_level
                if move == 0.0:
                    grid_step = m_res
                else:
                    move, grown = abs(move), m_res * c_growth
                    grid_step = move if m_res <= 0 else (move if move < grown else grown)
            # ReturnSpikeDetector.learn_one / advance_one (the grid on every point)
            if has_r_log:
                r_res = (grid_step if r_res == grid_was and has_level_was and r_log == level_was
                         else update_resolution(r_res, level - r_log))
            if learn:
                decay = k_rs
                if has_r_log:
                    r_tail += 0.05 * (c_up if r_z > r_tail else c_down)
                    value = r_move / root  # abs(move) / sqrt(elapsed)
                    if r_returns >= 5:
                        cap = r_clip * r_scale
                        value = cap if cap < value else value
                    count = 1.0 / (r_returns + 1)
                    r_scale += (count if count > decay else decay) * (value - r_scale)
                    r_returns += 1
                if has_log_volume:
                    if r_volumes == 0:
                        r_vlevel = log_volume
                    else:
                        deviation = log_volume - r_vlevel
                        value = abs(deviation)
                        if r_volumes - 1 >= 5:
                            cap = r_clip * r_vscale
                            value = cap if cap < value else value
                        count = 1.0 / r_volumes
                        r_vscale += (count if count > decay else decay) * (value - r_vscale)
                        count = 1.0 / (r_volumes + 1)
                        r_vlevel += (count if count > decay else decay) * deviation
                    r_volumes += 1
            r_log, has_r_log = level, True
            # MultiWindowReturnDetector._learn
            if has_m_level:
                m_res = grid_step
            if not has_averages or not learn:
                m_a0 = m_a1 = m_a2 = level
                has_averages = True
            else:
                # one loop: each window's |z| for the tail (on the resolution just learned)
                # comes from its statistics before this point's update, as in _learn
                grid, largest = m_grid * m_res, 0.0  # largest: set at i == 0
                count = 1.0 / (m_seen + 1)
                rate = count if count > k_mw else k_mw
                clipping = m_seen >= 5
                trend = m_trend * (m_a1 - m_a2)  # the longest window's lag
                for i in range(3):
                    if i == 0:
                        average, bias, scale, w_root, w_fade = m_a0, m_b0, m_s0, w_root0, w_avg0
                    elif i == 1:
                        average, bias, scale, w_root, w_fade = m_a1, m_b1, m_s1, w_root1, w_avg1
                    else:
                        average, bias, scale, w_root, w_fade = m_a2, m_b2, m_s2, w_root2, w_avg2
                    spread = (m_floor if m_floor > scale else scale) * w_root
                    gap = level - average
                    judged = gap - trend if i == 2 else gap
                    deviation = judged - bias
                    value = abs(deviation)
                    size = value / (grid if grid > spread else spread)  # |deviation / spread|
                    if i == 0 or size > largest:  # the first, NaN too, then max
                        largest = size
                    if clipping:
                        cap = m_clip * scale
                        value = cap if cap < value else value
                    scale, bias, average = (scale + rate * (value - scale),
                                            bias + rate * (judged - bias), average + w_fade * gap)
                    if i == 0:
                        m_a0, m_b0, m_s0 = average, bias, scale
                    elif i == 1:
                        m_a1, m_b1, m_s1 = average, bias, scale
                    else:
                        m_a2, m_b2, m_s2 = average, bias, scale
                m_tail += 0.05 * (c_up if largest > m_tail else c_down)
                m_seen += 1
            m_level, has_m_level = level, True
            # PumpDetector._learn
            count = 1.0 / (p_seen + 1)
            rate = count if count > k_pd else k_pd
            if not has_p_average:
                p_average, has_p_average = level, True
            else:
                gap = level - p_average
                if learn:
                    value = abs(gap)
                    if p_seen >= 5:
                        cap = 4.0 * p_scale
                        value = cap if cap < value else value
                    p_scale += rate * (value - p_scale)
                    p_seen += 1
                p_average += k_pw * gap
            if has_p_last:  # as RS and VR: MW's step when they agree (see above)
                p_res = (grid_step if p_res == grid_was and has_level_was and p_last == level_was
                         else update_resolution(p_res, level - p_last))
            p_last, has_p_last = level, True
            if has_log_volume:
                if p_volumes == 0:
                    p_short = p_long = log_volume
                else:
                    p_short += k_pv * (log_volume - p_short)
                    if learn:
                        value = abs(p_short - p_long)
                        if p_volumes >= 5:
                            cap = 4.0 * p_vscale
                            value = cap if cap < value else value
                        p_vscale += rate * (value - p_vscale)
                        count = 1.0 / (p_volumes + 1)
                        p_long += (count if count > k_pb else k_pb) * (log_volume - p_long)
                p_volumes += 1
            # LiquidityDropDetector._learn
            if has_log_liquidity and not (log_liquidity == c_empty and not has_l_average):
                if (not has_l_average or not learn or log_liquidity == c_empty
                        or l_average == c_empty):
                    l_average, has_l_average = log_liquidity, True
                else:
                    gap = log_liquidity - l_average
                    value = abs(gap)
                    if l_seen >= 5:
                        cap = 4.0 * l_scale
                        value = cap if cap < value else value
                    count = 1.0 / (l_seen + 1)
                    l_scale += (count if count > k_ld else k_ld) * (value - l_scale)
                    l_average += k_lw * gap
                    l_seen += 1
            # VolatilityRegimeDetector._learn
            if has_v_level:
                move = level - v_level
                rate = move ** 2 / elapsed
                v_res = (grid_step if v_res == grid_was and has_level_was and v_level == level_was
                         else update_resolution(v_res, move))
                if learn:
                    grid = (v_grid * v_res) ** 2
                    if grid == c_inf:  # as in scoring
                        grid = _square(v_grid * v_res)
                    grid /= v_short_half
                    floor = v_min_var if v_min_var > v_long else v_long
                    ratio = v_next / (grid if grid > floor else floor)
                    v_tail += 0.003 * (c_up if (_log(ratio) if ratio > 1 else 0.0) > v_tail else c_down)
                    if v_seen >= 5:
                        cap = v_clip2 * v_long
                        rate = cap if cap < rate else rate
                    count = 1.0 / (v_seen + 1)
                    v_long += (count if count > k_vr else k_vr) * (rate - v_long)
                    v_seen += 1
                    if v_seen > 1:  # _next_short again, on the long variance just learned
                        rate = move ** 2 / elapsed
                        cap = v_clip2 * (v_min_var if v_min_var > v_long else v_long)
                        v_next = v_short + v_rate * ((cap if cap < rate else rate) - v_short)
                v_short = v_next if v_seen > 1 else v_long
            v_level, has_v_level = level, True
            # MomentumFeatures._learn
            if not has_f_level:
                f_fast = f_slow = level
            else:
                move = level - f_level
                f_up += k_rsi * ((0.0 if 0.0 > move else move) - f_up)
                f_down += k_rsi * ((0.0 if 0.0 > -move else -move) - f_down)
                f_fast += k_fast * (level - f_fast)
                f_slow += k_slow * (level - f_slow)
                f_signal += k_signal * (f_fast - f_slow - f_signal)
                f_seen += 1
            f_level, has_f_level = level, True
            # LevelRangeDetector._learn: a departure is accepted when flagged (advanced) or
            # when its score reaches an alert's (learned from: scored under it, nothing to do)
            g_start = not has_g_level or (g_res <= 0 and level == g_level)  # no move yet
            if g_start:
                g_mean = g_next = level
                g_first, has_g_first = float(t), True
                g_seen = 0
            elif not learn or g_score is None or g_score >= g_accept:
                if (g_seen >= g_grace and has_g_first and last - g_first >= g_grace_s
                        and g_dev <= g_ratio * g_step):
                    scale = g_dev  # max(deviation, min_scale, resolution)
                    if g_floor > scale:
                        scale = g_floor
                    if g_res > scale:
                        scale = g_res
                    if learn and g_score is None:  # not scored on this state: as _score
                        z = (g_next - g_mean) / scale
                        if g_acc and (g_acc > 0) == (z > 0):
                            cut = g_half / (2.0 * abs(g_acc))
                            z *= cut if cut < 1.0 else 1.0
                        size = abs(z)
                        g_score = size * size / (size * size + g_half2)
                    if not learn or g_score >= g_accept:
                        z = (level - g_mean) / scale
                        if abs(z) > abs(g_acc) or (z > 0) != (g_acc > 0):
                            g_acc = z
            if learn and not g_start:
                move = level - g_level
                if move != 0.0:  # update_resolution
                    move = abs(move)
                    if g_res <= 0:
                        g_res = move
                    else:
                        grown = g_res * c_growth
                        g_res = move if move < grown else grown
                count = 1.0 / (g_seen + 1)
                rate = count if count > k_base else k_base  # weight(...)
                value = abs(level - g_level)
                if g_seen >= 5:
                    cap = g_clip * g_step
                    value = cap if cap < value else value
                g_step += rate * (value - g_step)
                value = abs(level - g_mean)
                if g_seen >= 5:
                    cap = g_clip * g_dev
                    value = cap if cap < value else value
                g_dev += rate * (value - g_dev)
                g_mean += rate * (level - g_mean)
                g_seen += 1
            g_acc *= g_fade
            g_smooth, g_level, has_g_level = g_next, level, True
            last, has_last = float(t), True
        except Exception as error:
            if error.args == ("float division",):  # compiled: a C division by zero's
                error.args = ("float division by zero",)  # Python's, as the members say it
            answer = error
