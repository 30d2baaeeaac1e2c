"""GET /v1/anomalies: stored anomalies, newest first, keyset-paginated."""
from __future__ import annotations

import flask

from kades.api.auth import Caller
from kades.api.openapi import Checked, parse_rfc3339
from kades.api.params import jsonable
from kades.errors import BadRequestError, Problem
from kades.runtime.endpoint import json_response
from kades.runtime.function import Context
from kades.storage import repository


def list_anomalies(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    """The query is checked against openapi.yaml already (limits, types, formats, cursor)."""
    query = request.query
    start = parse_rfc3339(query["start_time"]) if "start_time" in query else None
    end = parse_rfc3339(query["end_time"]) if "end_time" in query else None
    if start and end and start > end:
        raise BadRequestError("invalid request", [Problem("start_time", "is after end_time")])
    with ctx.db() as conn:
        rows, next_cursor = repository.query_anomalies(
            conn, start_time=start, end_time=end, min_score=query.get("min_risk_score"),
            anomaly_type=query.get("type"), token=query.get("token"), limit=query["limit"],
            cursor=query.get("cursor"))
    return json_response({"anomalies": jsonable(rows), "next_cursor": next_cursor}, 200)
