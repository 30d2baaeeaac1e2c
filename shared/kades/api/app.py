"""The `api` function: the REST API under /v1 (functions-framework HTTP signature).

Errors use the one error body of KADES: `{"error": {"code", "message", "details"}}`;
every problem of a request is listed, and a database or Redis outage answers 503.
The OpenAPI document (docs/openapi.yaml) describes exactly these routes.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

import flask
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from kades import clients
from kades.errors import BadRequestError, Problem
from kades.logs import configure_logging, log
from kades.runtime.endpoint import error_response, json_response, probe_response
from kades.runtime.function import Context
from kades.storage import repository

logger = logging.getLogger("kades.api")
MAX_PAGE = 1000

ROUTES = Map([
    Rule("/v1/anomalies", endpoint="list_anomalies", methods=["GET"]),
])


def _parse_time(name: str, raw: str | None, problems: list[Problem]) -> datetime | None:
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        problems.append(Problem(name, f"not an ISO 8601 / RFC 3339 time: {raw!r}"))
        return None
    if parsed.tzinfo is None:
        problems.append(Problem(name, "give a time zone (e.g. Z)"))
        return None
    return parsed


def _parse_number(name: str, raw: str | None, kind: type, low: float, high: float,
                  problems: list[Problem]):
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError:
        problems.append(Problem(name, f"not a{'n integer' if kind is int else ' number'}: {raw!r}"))
        return None
    if not low <= value <= high:
        problems.append(Problem(name, f"must be between {low} and {high}"))
        return None
    return value


def list_anomalies(ctx: Context, request: flask.Request) -> flask.Response:
    args = request.args
    problems: list[Problem] = []
    known = {"start_time", "end_time", "min_risk_score", "limit", "type", "token", "cursor"}
    problems += [Problem(name, "unknown query parameter") for name in args if name not in known]
    start = _parse_time("start_time", args.get("start_time"), problems)
    end = _parse_time("end_time", args.get("end_time"), problems)
    min_score = _parse_number("min_risk_score", args.get("min_risk_score"), float, 0.0, 1.0, problems)
    limit = _parse_number("limit", args.get("limit"), int, 1, MAX_PAGE, problems) or 100
    if start and end and start > end:
        problems.append(Problem("start_time", "is after end_time"))
    cursor = args.get("cursor")
    if cursor is not None:
        try:
            repository.decode_cursor(cursor)
        except ValueError:
            problems.append(Problem("cursor", "not a next_cursor this API gave out"))
    if problems:
        raise BadRequestError("invalid query", problems)
    with ctx.db() as conn:
        rows, next_cursor = repository.query_anomalies(
            conn, start_time=start, end_time=end, min_score=min_score,
            anomaly_type=args.get("type"), token=args.get("token"), limit=limit,
            cursor=cursor)
    return json_response({"anomalies": [_jsonable(row) for row in rows],
                          "next_cursor": next_cursor}, 200)


def _jsonable(row: dict) -> dict:
    return {key: value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
            for key, value in row.items()}


HANDLERS: dict[str, Callable[[Context, flask.Request], flask.Response]] = {
    "list_anomalies": list_anomalies,
}


def api_entry_point(ctx: Context | None = None) -> Callable[[flask.Request], flask.Response]:
    """The functions-framework HTTP target of the `api` function."""
    ctx = ctx or Context("api")
    configure_logging(ctx.settings.log_level)

    def entry_point(request: flask.Request) -> flask.Response:
        path = request.path[3:] if request.path.startswith("/v1/") else request.path
        probe = probe_response(path, ctx, uses_database=True)
        if probe is not None:
            return probe
        try:
            endpoint, _ = ROUTES.bind("api").match(request.path, method=request.method)
            return HANDLERS[endpoint](ctx, request)
        except NotFound:
            return error_response(404, "not_found", f"no route {request.path}")
        except MethodNotAllowed as error:
            return error_response(405, "method_not_allowed",
                                  f"{request.method} not allowed; use {', '.join(error.valid_methods)}")
        except BadRequestError as error:
            return error_response(400, error.code, error.message, error.problems)
        except clients.TEMPORARY_ERRORS as error:
            log(logger, logging.WARNING, "temporary failure", error=str(error))
            return error_response(503, "unavailable", f"temporary failure: {type(error).__name__}")

    return entry_point
