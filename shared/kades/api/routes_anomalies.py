"""GET /v1/anomalies: stored anomalies, newest first, keyset-paginated."""
from __future__ import annotations

import flask

from kades.api.auth import Caller
from kades.api.params import (jsonable, parse_cursor, parse_number, parse_time,
                              unknown_params)
from kades.errors import BadRequestError, Problem
from kades.runtime.endpoint import json_response
from kades.runtime.function import Context
from kades.storage import repository

MAX_PAGE = 1000


def list_anomalies(ctx: Context, request: flask.Request, caller: Caller) -> flask.Response:
    args = request.args
    problems: list[Problem] = unknown_params(
        args, {"start_time", "end_time", "min_risk_score", "limit", "type", "token", "cursor"})
    start = parse_time("start_time", args.get("start_time"), problems)
    end = parse_time("end_time", args.get("end_time"), problems)
    min_score = parse_number("min_risk_score", args.get("min_risk_score"), float, 0.0, 1.0, problems)
    limit = parse_number("limit", args.get("limit"), int, 1, MAX_PAGE, problems) or 100
    if start and end and start > end:
        problems.append(Problem("start_time", "is after end_time"))
    for name in ("type", "token"):
        if len(args.get(name, "")) > 128:
            problems.append(Problem(name, "at most 128 characters"))
    cursor = parse_cursor(args.get("cursor"), problems)
    if problems:
        raise BadRequestError("invalid query", problems)
    with ctx.db() as conn:
        rows, next_cursor = repository.query_anomalies(
            conn, start_time=start, end_time=end, min_score=min_score,
            anomaly_type=args.get("type"), token=args.get("token"), limit=limit, cursor=cursor)
    return json_response({"anomalies": jsonable(rows), "next_cursor": next_cursor}, 200)
