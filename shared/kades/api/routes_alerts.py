"""GET /v1/alerts: the alerts raised lately, newest first, keyset-paginated (the dashboard's
feed on load; the WebSocket brings the ones that follow)."""
from __future__ import annotations

import flask

from kades.api.auth import Caller
from kades.api.params import (address_problem, jsonable, parse_cursor, parse_number,
                              parse_time, unknown_params)
from kades.errors import BadRequestError, Problem
from kades.runtime.endpoint import json_response
from kades.runtime.function import Context
from kades.storage import alerts

MAX_PAGE = 200
DEFAULT_PAGE = 50


def list_alerts(ctx: Context, request: flask.Request, caller: Caller) -> flask.Response:
    args = request.args
    problems: list[Problem] = unknown_params(args, {"token", "start_time", "limit", "cursor"})
    token = args.get("token")
    if token is not None and (problem := address_problem("token", token)):
        problems.append(problem)
    start = parse_time("start_time", args.get("start_time"), problems)
    limit = parse_number("limit", args.get("limit"), int, 1, MAX_PAGE, problems) or DEFAULT_PAGE
    cursor = parse_cursor(args.get("cursor"), problems)
    if problems:
        raise BadRequestError("invalid query", problems)
    with ctx.db() as conn:
        rows, next_cursor = alerts.recent_alerts(conn, token=token, start_time=start,
                                                 limit=limit, cursor=cursor)
    return json_response({"alerts": jsonable(rows), "next_cursor": next_cursor}, 200)
