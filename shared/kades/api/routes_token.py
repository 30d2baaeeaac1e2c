"""Token routes: the analysis of one token, tracking and untracking a token, the caller's
tracked tokens."""
from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timezone

import flask

from kades.api.auth import REVOKED, Caller, refusal
from kades.api.openapi import Checked
from kades.api.params import TIMEFRAMES, jsonable
from kades.events.catalogue import TOKEN_TRACKED, new_event
from kades.keys import API_ANALYSIS
from kades.runtime import sink
from kades.runtime.endpoint import error_response, json_response, json_text
from kades.runtime.function import Context
from kades.runtime.ttlcache import TtlCache
from kades.storage import analysis, apikeys, repository, tracking

ANALYSIS_CACHE_S = 5  # a dashboard polling every few seconds costs one query per token
LOCAL_CACHE_S = 1.0   # and within a replica, one Redis read per second per token


def local_analyses(ctx: Context) -> TtlCache:
    """The analyses this api process served last, one per Context (`ctx.local`)."""
    return TtlCache(ttl_s=LOCAL_CACHE_S)


def _change(first, last) -> float | None:
    """last / first - 1; None without both, or when it is not finite (5e-324 to 1e9)."""
    if not first or last is None:
        return None
    change = last / first - 1
    return round(change, 6) if math.isfinite(change) else None


def summarise_metrics(rows: list[dict], totals: dict) -> dict:
    """Price change over the window (its first and newest rows, which the thinned series
    keeps), the window's volume and that of its second half in time against its first (of
    every row: `totals`, analysis.metric_totals), and a liquidity score: log10 of the latest
    liquidity, 1e6 quote units or more scoring 1."""
    prices = [r["price"] for r in rows if r["price"] is not None]
    liquidity = next((r["liquidity"] for r in reversed(rows) if r["liquidity"] is not None), None)
    return {
        "price": prices[-1] if prices else None,
        "price_change": _change(prices[0], prices[-1]) if prices else None,
        "volume": round(totals["volume"], 6),
        "volume_change": (_change(totals["first_half"], totals["second_half"])
                          if totals["points"] > 1 else None),
        "liquidity": liquidity,
        "liquidity_score": (round(min(1.0, math.log10(1 + liquidity) / 6), 4)
                            if liquidity is not None else None),
        "points": totals["points"]}


def token_analysis(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    """Checked against openapi.yaml already: the address, the timeframe (default 24h), the
    quote (default: the one most of the window's metrics are priced in)."""
    address, timeframe = request.path["address"], request.query["timeframe"]
    asked = request.query.get("quote")
    cache_key = API_ANALYSIS.format(token=address, timeframe=timeframe) + (
        "" if asked is None else ":" + asked)
    local = ctx.local(local_analyses)
    cached = local.get(cache_key)
    if cached is None:
        cached = ctx.redis.get(cache_key)
        if cached is not None:
            local.put(cache_key, cached)
    if cached is not None:
        return flask.Response(cached, status=200, mimetype="application/json")
    now = datetime.now(timezone.utc)
    since = now - TIMEFRAMES[timeframe]
    with ctx.db() as conn:
        quotes = analysis.metric_quotes(conn, address, since)
        quote = asked if asked is not None else analysis.main_quote(quotes)
        totals = analysis.metric_totals(conn, address, since, since + (now - since) / 2, quote)
        risk = repository.latest_risk_score(conn, address)
        explanation = analysis.with_evidence(conn, address, risk["explanation"] if risk else [])
        anomalies, _ = repository.query_anomalies(conn, token=address, start_time=since, limit=100)
        metrics = analysis.metric_series(conn, address, since, quote)
        risks = analysis.risk_series(conn, address, since)
    body = json_text(jsonable({
        "token": address, "timeframe": timeframe,
        "risk_score": risk["score"] if risk else None,
        "risk_level": risk["level"] if risk else None,
        "components": risk["components"] if risk else {},
        "explanation": explanation,
        "anomalies": anomalies,
        "quote": quote, "quotes": quotes,
        "metrics": summarise_metrics(metrics, totals),
        "series": {"price": [[r["time"], r["price"]] for r in metrics if r["price"] is not None],
                   "risk": [[r["time"], r["score"]] for r in risks]}}))
    ctx.redis.set(cache_key, body, ex=ANALYSIS_CACHE_S)
    local.put(cache_key, body.encode())
    return flask.Response(body, status=200, mimetype="application/json")


def track_token(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    """The body is checked against openapi.yaml already, with its defaults filled in."""
    address = request.body["token_address"]
    params = request.body["tracking_parameters"]
    # (JSON Schema counts 30.0 an integer: said 30, as the event's id derives from its data)
    threshold, interval = params["alert_threshold"], int(params["update_interval"])
    limit = ctx.settings.max_tracked_per_key
    try:
        with ctx.db() as conn:
            if not apikeys.hold_live_key(conn, caller.key_id):  # revoked since it was verified
                return refusal(REVOKED)
            lowest = tracking.track_token(conn, key_id=caller.key_id, token=address,
                                          alert_threshold=float(threshold),
                                          update_interval=interval, limit=limit)
            tracking.publish_threshold(ctx.redis, address, lowest)
    except tracking.TrackingLimit as full:
        return error_response(409, "tracking_limit",
                              f"this key tracks {full.tracked} tokens, the most it may "
                              f"(KADES_MAX_TRACKED_PER_KEY={limit}); untrack one first")
    data = {"token_address": address, "tracked_by": caller.key_id,
            "tracking_parameters": {"alert_threshold": float(threshold), "update_interval": interval}}
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(data, sort_keys=True)))
    sink.send([new_event(TOKEN_TRACKED, ctx.source, data, subject=address, event_id=event_id)],
              ctx.settings.sink_url, token_file=ctx.settings.sink_token_file)
    return json_response({"status": "tracking", **data, "effective_alert_threshold": lowest,
                          "event_id": event_id}, 202)


def untrack_token(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    """Stop the caller's tracking of a token; 404 when the caller does not track it."""
    address = request.path["address"]
    with ctx.db() as conn:
        removed, lowest = tracking.untrack_token(conn, key_id=caller.key_id, token=address)
        if removed:
            tracking.publish_threshold(ctx.redis, address, lowest)
    if not removed:
        return error_response(404, "not_found", f"this key does not track {address}")
    return json_response({"status": "untracked", "token_address": address,
                          "effective_alert_threshold": lowest}, 200)


def tracked_tokens(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    """The caller's tracked tokens with their newest risk (the dashboard's list)."""
    since = datetime.now(timezone.utc) - TIMEFRAMES["24h"]
    with ctx.db() as conn:
        rows = tracking.tracked_tokens(conn, caller.key_id)
        risks = analysis.latest_risks(conn, [r["token"] for r in rows])
        riskiest = analysis.riskiest_tokens(conn, since)
    tokens = [{"token": r["token"], "alert_threshold": r["alert_threshold"],
               "update_interval": r["update_interval"],
               "risk_score": risks.get(r["token"], {}).get("score"),
               "risk_level": risks.get(r["token"], {}).get("level")} for r in rows]
    return json_response(jsonable({"tokens": tokens, "riskiest": riskiest}), 200)
