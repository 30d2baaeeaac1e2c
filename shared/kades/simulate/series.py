"""Seeded univariate series of many kinds with labelled anomalies, for judging detectors.

Kinds of series: `noisy` (noise around a slowly wandering level), `seasonal` (a daily-like
cycle), `trending` (a steady climb), `spiky` (heavy-tailed noise: big normal moves),
`flat_then_step` (a nearly constant value that steps once — the step is a labelled
level shift). Injected anomalies, sized against the series' own noise: `flash_crash`
(a fast fall, half recovered), `spike` (one or two points far up), `level_shift` (a lasting
step), `volatility_change` (the noise grows several times for a while). Values stay
positive, as prices do; labels give each anomaly's [start, end] in epoch seconds.

>>> series = simulate_series("seasonal", seed=3)
>>> len(series.times), len(series.labels), series.labels[0]["kind"] in ANOMALY_KINDS
(2000, 3, True)
>>> simulate_series("seasonal", seed=3).values == series.values
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SERIES_KINDS = ("noisy", "seasonal", "trending", "spiky", "flat_then_step")
ANOMALY_KINDS = ("flash_crash", "spike", "level_shift", "volatility_change")
START_S = 1_704_067_200.0  # 2024-01-01T00:00:00Z


@dataclass(frozen=True)
class Series:
    kind: str
    seed: int
    times: list[float]    # epoch seconds, increasing
    values: list[float]   # positive
    labels: list[dict]    # {kind, start, end} in epoch seconds


def _base(kind: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(log level without noise, unit noise, noise size) of a series kind."""
    steps = np.arange(n)
    sigma = float(rng.uniform(0.003, 0.012))
    if kind == "noisy":
        level = np.cumsum(rng.normal(0, sigma / 10, n))
        noise = rng.standard_normal(n)
    elif kind == "seasonal":
        period = int(rng.integers(100, 300))
        level = 6 * sigma * np.sin(2 * np.pi * steps / period + rng.uniform(0, 2 * np.pi))
        noise = rng.standard_normal(n)
    elif kind == "trending":
        level = np.linspace(0, float(rng.uniform(0.2, 0.6)), n)
        noise = rng.standard_normal(n)
    elif kind == "spiky":
        level = np.cumsum(rng.normal(0, sigma / 10, n))
        noise = rng.standard_t(3, n) / math.sqrt(3)  # unit variance, heavy tails
    elif kind == "flat_then_step":
        sigma = 0.0005
        level = np.zeros(n)
        noise = rng.standard_normal(n)
    else:
        raise ValueError(f"unknown series kind {kind!r}; known: {', '.join(SERIES_KINDS)}")
    return level, noise, sigma


def _inject(kind: str, first: int, level: np.ndarray, noise_scale: np.ndarray, sigma: float,
            rng: np.random.Generator) -> int:
    """Add one anomaly starting at `first`; its last point."""
    size = max(12 * sigma, 0.04)
    n = len(level)
    if kind == "flash_crash":
        ramp = int(rng.integers(1, 5))
        recovery = int(rng.integers(10, 30))
        drop = -size * rng.uniform(1.0, 2.0)
        shape = np.concatenate([np.linspace(drop / ramp, drop, ramp),
                                np.linspace(drop, drop / 2, recovery)])
        stop = min(n, first + len(shape))
        level[first:stop] += shape[:stop - first]
        level[stop:] += drop / 2
        return stop - 1
    if kind == "spike":
        width = int(rng.integers(1, 3))
        level[first:first + width] += size * rng.uniform(1.0, 2.0)
        return first + width - 1
    if kind == "level_shift":
        level[first:] += size * rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 1.5)
        return min(n - 1, first + 10)
    if kind == "volatility_change":
        length = int(rng.integers(80, 150))
        noise_scale[first:first + length] *= rng.uniform(4.0, 6.0)
        return min(n - 1, first + length - 1)
    raise ValueError(f"unknown anomaly kind {kind!r}")


def simulate_series(kind: str, *, seed: int, points: int = 2000, step_s: float = 60.0,
                    anomalies: int = 3, jitter: bool = False) -> Series:
    """A `kind` series of `points` values every `step_s` seconds (irregular with `jitter`),
    with `anomalies` labelled anomalies after the first 20% (a detector's warm-up)."""
    if points < 200 or step_s <= 0 or anomalies < 0:
        raise ValueError("points >= 200, step_s > 0 and anomalies >= 0 are required")
    rng = np.random.default_rng([seed, SERIES_KINDS.index(kind) if kind in SERIES_KINDS else 99])
    level, noise, sigma = _base(kind, rng, points)
    noise_scale = np.full(points, sigma)
    plan: list[tuple[int, str]] = []
    if kind == "flat_then_step":
        plan.append((int(points * rng.uniform(0.45, 0.55)), "level_shift"))
    first_allowed, segment = int(points * 0.2), int(points * 0.8) // max(anomalies, 1)
    for k in range(anomalies):
        start = first_allowed + k * segment + int(rng.integers(0, max(1, segment - 160)))
        if any(abs(start - other) < 40 for other, _ in plan):
            start += 80
        plan.append((start, ANOMALY_KINDS[int(rng.integers(0, len(ANOMALY_KINDS)))]))
    times = START_S + step_s * np.arange(points, dtype=float)
    if jitter:
        times = START_S + np.cumsum(rng.uniform(0.2, 1.8, points) * step_s)
    labels = []
    for first, anomaly in sorted(plan):
        if first >= points - 20:
            continue
        last = _inject(anomaly, first, level, noise_scale, sigma, rng)
        labels.append({"kind": anomaly, "start": float(times[first]), "end": float(times[last])})
    values = 100.0 * np.exp(level + noise * noise_scale)
    return Series(kind=kind, seed=seed, times=[float(t) for t in times],
                  values=[float(f"{v:.10g}") for v in values], labels=labels)
