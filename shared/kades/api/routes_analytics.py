"""Analytics routes: sentiment and prediction (computed by the sentiment and temporal
capabilities' own modules) and custom metrics."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import flask

from kades.api.auth import Caller
from kades.api.openapi import Checked
from kades.api.params import TIMEFRAMES, jsonable
from kades.runtime.endpoint import json_response
from kades.runtime.function import Context
from kades.sentiment.aggregates import read_sentiment
from kades.storage import analysis
from kades.temporal.prediction import LAGS, MIN_STEPS, predict

HISTORY_AT_MOST = timedelta(days=90)  # the retention horizon (docs/operations.md, Retention)


def sentiment(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    address, timeframe = request.path["address"], request.query["timeframe"]
    return json_response(jsonable(read_sentiment(ctx.redis, address, timeframe)), 200)


def prediction(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    address, window = request.path["address"], request.query["prediction_window"]
    # as much history as a model of this window needs (MIN_STEPS + LAGS of its steps, and a
    # quarter more for the grid's edges and gaps: a 24 h window wants 55 days), a week at
    # least, never past what retention keeps: a week alone made every window of 4 h and more
    # (the default's 24 among them) persistence
    wanted = timedelta(hours=window) * (MIN_STEPS + LAGS) * 1.25
    since = datetime.now(timezone.utc) - min(max(TIMEFRAMES["7d"], wanted), HISTORY_AT_MOST)
    with ctx.db() as conn:  # in the quote most of its metrics are in (analysis.metric_quotes)
        quote = analysis.main_quote(analysis.metric_quotes(conn, address, since))
        history = [jsonable(row) for row in analysis.metric_series(conn, address, since, quote)]
    # prediction_window is in hours (1..168, up to a week ahead)
    return json_response(jsonable({"token": address, "prediction_window": window,
                                   **predict(history, window_minutes=window * 60)}), 200)


def custom(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    """Named metrics of one token over a timeframe, from what KADES has stored (the body is
    checked against openapi.yaml already: the metric names are its enum)."""
    token, metrics = request.body["token_address"], request.body["metrics"]
    timeframe = request.body["timeframe"]
    since = datetime.now(timezone.utc) - TIMEFRAMES[timeframe]
    with ctx.db() as conn:
        strongest = {name: analysis.strongest_anomaly(conn, token, since, words)
                     for name, words in ANOMALY_METRICS.items() if name in metrics}
        quote = analysis.main_quote(analysis.metric_quotes(conn, token, since))
        rows = analysis.metric_series(conn, token, since, quote)
    values = {name: _strongest(*strongest[name]) if name in strongest
              else _custom_metric(ctx, name, token, timeframe, rows)
              for name in dict.fromkeys(metrics)}
    return json_response(jsonable({"token": token, "timeframe": timeframe, "metrics": values}), 200)


# The metrics that are a kind of anomaly's strongest score: the words its types hold.
ANOMALY_METRICS = {"whale_concentration": ("whale",), "wash_volume_share": ("wash",),
                   "holder_concentration": ("holder", "concentration", "launch")}


def _strongest(top: dict | None, hits: int) -> dict:
    if top is None:
        return {"value": 0.0, "basis": "no such anomaly in the timeframe"}
    return {"value": top["score"], "basis": f"{hits} {top['anomaly_type']} anomalies",
            "details": top.get("details") or {}}


def _custom_metric(ctx, name, token, timeframe, rows) -> dict:
    liquidity = next((r["liquidity"] for r in reversed(rows) if r["liquidity"] is not None), None)
    if name == "liquidity_depth":
        return {"value": liquidity, "basis": "latest pool liquidity (quote units)"}
    if name == "price_impact":
        # price impact of a trade of 1% of the pool on a constant-product pool: ~2 * 1%
        return {"value": 0.0199 if liquidity else None,
                "basis": "constant-product impact of a trade of 1% of liquidity"}
    if name == "sentiment":
        return {"value": read_sentiment(ctx.redis, token, timeframe), "basis": "sentiment aggregate"}
    raise ValueError(f"no such metric {name!r}")  # openapi.yaml's enum names only those above
