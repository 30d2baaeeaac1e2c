"""GET /v1/anomalies: stored anomalies, newest first, keyset-paginated."""
from __future__ import annotations

import flask

from kades.api.auth import Caller
from kades.api.openapi import Checked, is_rfc3339, parse_rfc3339
from kades.api.params import jsonable
from kades.errors import Problem
from kades.runtime.endpoint import json_response
from kades.runtime.function import Context
from kades.storage import repository


def request_problems(ctx: Context, request: dict) -> list[Problem]:
    """What the document cannot say, listed with its problems: a window that ends before it
    starts."""
    start, end = request["query"].get("start_time"), request["query"].get("end_time")
    times = [value for value in (start, end) if isinstance(value, str) and is_rfc3339(value)]
    if len(times) == 2 and parse_rfc3339(start) > parse_rfc3339(end):
        return [Problem("start_time", "is after end_time")]
    return []


def list_anomalies(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    """The query is checked already: against openapi.yaml (limits, types, formats, cursor)
    and `request_problems`."""
    query = request.query
    start = parse_rfc3339(query["start_time"]) if "start_time" in query else None
    end = parse_rfc3339(query["end_time"]) if "end_time" in query else None
    with ctx.db() as conn:
        rows, next_cursor = repository.query_anomalies(
            conn, start_time=start, end_time=end, min_score=query.get("min_risk_score"),
            anomaly_type=query.get("type"), token=query.get("token"), limit=query["limit"],
            cursor=query.get("cursor"))
    return json_response({"anomalies": jsonable(rows), "next_cursor": next_cursor}, 200)
