"""`make bench` section: streaming cost per point of every temporal detector and of the
ensemble (as temporal-analysis runs it, behind its threshold filter), beside a plain rolling
z-score measured in the same run on the same points, and beside the ensemble's members stepped
one by one (`one_pass=False`, what the one pass of kades.temporal.fused replaces: the same
scores). Printed, never asserted. Times are this process's CPU time, best of REPEATS: on a
machine other sessions load, wall time moved 2x between runs (docs/performance.md).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "temporal"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: shared_material, for benchmark

from benchmark import RollingZScore  # noqa: E402

from kades.simulate.market import simulate_market  # noqa: E402
from kades.temporal.ensemble import MEMBERS, TemporalEnsemble  # noqa: E402
from kades.temporal.policy import new_monitor, step  # noqa: E402
from kades.temporal.threshold import ThresholdFilter  # noqa: E402

REPEATS = 7


def points(n_tokens: int = 4, minutes: float = 120) -> list[dict]:
    sim = simulate_market(seed=1, tokens=n_tokens, minutes=minutes)
    token = sim.ticks[0]["token"]
    return [{"time": 5.0 * i, "price": t["price"], "volume": t["volume"], "liquidity": t["liquidity"]}
            for i, t in enumerate(t for t in sim.ticks if t["token"] == token)]


def per_point_us(step, stream: list[dict]) -> float:
    """Best of REPEATS: CPU microseconds per point of `step(fresh_state)` over the stream."""
    best = float("inf")
    for _ in range(REPEATS):
        run = step()
        began = time.process_time()
        for x in stream:
            run(x)
        best = min(best, (time.process_time() - began) / len(stream))
    return 1e6 * best


def policy_step():
    """kades.temporal.policy as temporal-analysis runs it: ensemble, likelihood, filter."""
    monitor = new_monitor()
    return lambda x: step(monitor, x)


def streaming(detector_class):
    def make():
        detector = detector_class()

        def run(x):
            detector.score_one(x)
            detector.learn_one(x)
        return run
    return make


def vectorised_zscore_us(values: np.ndarray, window: int = 100) -> float:
    began = time.perf_counter()
    for _ in range(REPEATS):
        sums = np.cumsum(np.concatenate([[0.0], values]))
        squares = np.cumsum(np.concatenate([[0.0], values ** 2]))
        mean = (sums[window:] - sums[:-window]) / window
        std = np.sqrt(np.maximum((squares[window:] - squares[:-window]) / window - mean ** 2, 1e-18))
        _ = np.abs(values[window - 1:] - mean) / std
    return 1e6 * (time.perf_counter() - began) / REPEATS / len(values)


def main() -> int:
    stream = points()
    baseline = per_point_us(lambda: RollingZScore().process_one, stream)
    rows = [("rolling z-score (baseline)", baseline)]
    for member in MEMBERS:
        rows.append((member.__name__, per_point_us(streaming(member), stream)))
    rows.append(("ensemble (score + learn)", per_point_us(streaming(TemporalEnsemble), stream)))
    rows.append(("ensemble, members one by one", per_point_us(
        streaming(lambda: TemporalEnsemble(one_pass=False)), stream)))
    rows.append(("ensemble + threshold filter", per_point_us(
        lambda: ThresholdFilter(TemporalEnsemble()).process_one, stream)))
    rows.append(("alert policy (the function's)", per_point_us(policy_step, stream)))
    print(f"\ntemporal detectors, streaming, one core ({len(stream)} points of one token; "
          "ratio to the rolling z-score of the same run)")
    print(f"{'what':<34}{'µs/point':>10}{'ratio':>9}")
    for name, us in rows:
        print(f"{name:<34}{us:>10.2f}{us / baseline:>8.1f}x")
    values = np.array([x["price"] for x in stream] * 50)
    print(f"{'rolling z-score, numpy batch':<34}{vectorised_zscore_us(values):>10.3f}"
          f"{vectorised_zscore_us(values) / baseline:>8.2f}x")
    print("goal: ensemble <= 5 µs/point streaming (see docs/performance.md for where it stands)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
