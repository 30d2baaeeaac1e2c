"""Short-horizon price forecast of one token, with its honest error beside persistence.

The history is resampled on a grid of `window_minutes` (the last price at or before each
grid point, the volume traded in each step). A ridge regression on lagged log returns and
log volume changes predicts the next step's log return. It is judged on held-out data (the
last 30% of the steps, never seen in fitting) against the naive persistence forecast
("the price stays where it is"): the MAE ratio (below 0.98 it beats persistence; closer to 1
is noise) and the directional accuracy. The interval comes from the held-out errors' 10th and 90th percentiles.
When the model does not beat persistence, the forecast IS persistence, and `model.note`
says so. Ridge in closed form with numpy: no scikit-learn import on the cold path.

>>> import math
>>> history = [{"time": 60.0 * i, "price": math.exp(0.001 * i + 0.02 * math.sin(i / 3))}
...            for i in range(600)]
>>> result = predict(history, window_minutes=5)
>>> result["model"]["beats_persistence"], result["interval"]["low"] <= result["forecast"]["price"]
(True, True)
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np

from kades.errors import BadRequestError, Problem

LAGS = 4
MIN_STEPS = 40          # grid steps needed to fit and judge a model at all
HELD_OUT = 0.3
RIDGE_ALPHA = 1.0       # on standardised features
INTERVAL = (0.1, 0.9)
MAX_WINDOW_MINUTES = 7 * 24 * 60  # the API asks up to a week ahead
BEAT_MARGIN = 0.98      # MAE ratio below which the model is said to beat persistence (not noise)


def _epoch(value) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("time without a UTC offset")
    return moment.timestamp()


def _clean(history: list[dict], window_minutes: int) -> list[tuple[float, float, float]]:
    problems = []
    if (not isinstance(window_minutes, int) or isinstance(window_minutes, bool)
            or not 1 <= window_minutes <= MAX_WINDOW_MINUTES):
        problems.append(Problem("window_minutes",
                                f"must be an integer from 1 to {MAX_WINDOW_MINUTES}"))
    points = []
    for index, tick in enumerate(history):
        try:
            moment = _epoch(tick["time"])
            price = float(tick["price"])
            volume = float(tick.get("volume") or 0.0)
            if not (price > 0 and math.isfinite(price)) or volume < 0:
                raise ValueError("price must be > 0 and volume >= 0")
            points.append((moment, price, volume))
        except (KeyError, TypeError, ValueError) as error:
            problems.append(Problem(f"history[{index}]", str(error)))
    if problems:
        raise BadRequestError("cannot forecast from this history", problems)
    return sorted(points)


def _grid(points: list[tuple[float, float, float]], step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(log price, log(1 + volume)) at each grid point from the first tick to the last."""
    times = np.array([p[0] for p in points])
    grid = np.arange(times[0] + step_s, times[-1] + 1e-9, step_s)
    last = np.searchsorted(times, grid, side="right") - 1
    log_price = np.log(np.array([p[1] for p in points]))[last]
    cumulative = np.concatenate([[0.0], np.cumsum([p[2] for p in points])])
    volume = np.diff(np.concatenate([[0.0], cumulative[last + 1]]))
    return log_price, np.log1p(volume)


def _features(returns: np.ndarray, volumes: np.ndarray) -> np.ndarray:
    """Row t: the LAGS returns up to step t and the last volume changes (to predict t+1)."""
    n = len(returns)
    columns = [returns[LAGS - 1 - k:n - k] for k in range(LAGS)]
    columns += [np.diff(volumes)[LAGS - 2 - k:n - 1 - k] for k in range(2)]
    return np.column_stack(columns)


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-12
    z = (x - mean) / std
    offset = y.mean()
    coef = np.linalg.solve(z.T @ z + RIDGE_ALPHA * np.eye(z.shape[1]), z.T @ (y - offset))
    return coef, mean, std, offset


def _apply(model, x: np.ndarray) -> np.ndarray:
    coef, mean, std, offset = model
    return ((x - mean) / std) @ coef + offset


def predict(history: list[dict], *, window_minutes: int) -> dict:
    """Forecast the price `window_minutes` after the last tick of `history` (one token's
    ticks: {time: RFC 3339 or epoch s, price > 0, volume >= 0 optional}, any order).
    BadRequestError names every bad tick."""
    points = _clean(history, window_minutes)
    step_s = 60.0 * window_minutes
    last_time, last_price = points[-1][0] if points else 0.0, points[-1][1] if points else None
    result = {"horizon_minutes": window_minutes, "last_price": last_price,
              "as_of": datetime.fromtimestamp(last_time, timezone.utc).isoformat().replace("+00:00", "Z")
              if points else None}
    log_price, log_volume = _grid(points, step_s) if len(points) >= 2 else (np.array([]), np.array([]))
    returns = np.diff(log_price)
    samples = len(returns) - LAGS
    if samples < MIN_STEPS:
        return {**result, "forecast": {"price": last_price, "log_return": 0.0}, "interval": None,
                "model": {"kind": "persistence", "beats_persistence": False, "samples": max(samples, 0),
                          "note": f"history too short: {max(samples, 0)} steps of {window_minutes} min, "
                                  f"{MIN_STEPS} needed; the forecast is the last price"}}
    x = _features(returns, log_volume[1:])[:-1]
    y = returns[LAGS:]
    split = int(len(y) * (1 - HELD_OUT))
    model = _fit(x[:split], y[:split])
    errors = y[split:] - _apply(model, x[split:])
    mae_ratio = float(np.mean(np.abs(errors)) / max(np.mean(np.abs(y[split:])), 1e-15))
    moved = y[split:] != 0
    direction = float(np.mean(np.sign(_apply(model, x[split:]))[moved] == np.sign(y[split:])[moved])) \
        if moved.any() else None
    beats = mae_ratio < BEAT_MARGIN
    low_q, high_q = np.quantile(errors if beats else y[split:], INTERVAL)
    latest = _features(returns, log_volume[1:])[-1:]
    forecast = float(_apply(_fit(x, y), latest)[0]) if beats else 0.0
    return {**result,
            "forecast": {"price": last_price * math.exp(forecast), "log_return": forecast},
            "interval": {"low": last_price * math.exp(forecast + low_q),
                         "high": last_price * math.exp(forecast + high_q),
                         "confidence": INTERVAL[1] - INTERVAL[0]},
            "model": {"kind": "ridge on lagged returns and volume" if beats else "persistence",
                      "samples": int(split), "held_out": int(len(y) - split),
                      "mae_ratio_vs_persistence": round(mae_ratio, 4),
                      "directional_accuracy": None if direction is None else round(direction, 4),
                      "beats_persistence": beats,
                      "note": "beats persistence on held-out data" if beats else
                              "does not beat persistence on held-out data: the forecast is the last price"}}
