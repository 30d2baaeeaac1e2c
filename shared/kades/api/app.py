"""The `api` function: the REST API under /v1, the WebSocket /v1/ws and the dashboard at /.

Order of a request: probes, OpenAPI document and dashboard files are public; every other
route needs an API key or a JWT (401), then passes the caller's rate limit (429; 503 when
Redis cannot be asked: the limiter fails closed; most requests are served from the tokens a
replica leased, kades.api.ratelimit.Leases), then runs. Errors are RFC 9457 problems
(`application/problem+json`, kades.errors.error_body) listing every problem of a request and
keeping v1's `error` member; a database or Redis outage answers 503. openapi.yaml describes
exactly these routes.
"""
from __future__ import annotations

import logging
import re
from typing import Callable

import flask
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, PathConverter, Rule

from kades import clients
from kades.api import (auth, dashboard, openapi, ratelimit, routes_alerts, routes_analytics,
                       routes_anomalies, routes_token, routes_webhooks, websocket)
from kades.api.params import read_json
from kades.errors import BadRequestError, Problem
from kades.events.envelope import holds_nul
from kades.logs import configure_logging, log
from kades.runtime.endpoint import error_response, internal_error, probe_response
from kades.runtime.function import Context

logger = logging.getLogger("kades.api")

ROUTES = Map([
    Rule("/v1/anomalies", endpoint="list_anomalies", methods=["GET"]),
    Rule("/v1/alerts", endpoint="list_alerts", methods=["GET"]),
    Rule("/v1/token/<address>/analysis", endpoint="token_analysis", methods=["GET"]),
    Rule("/v1/token/track", endpoint="track_token", methods=["POST"]),
    Rule("/v1/tokens/tracked", endpoint="tracked_tokens", methods=["GET"]),
    Rule("/v1/tokens/tracked/<address>", endpoint="untrack_token", methods=["DELETE"]),
    Rule("/v1/analytics/sentiment/<address>", endpoint="sentiment", methods=["GET"]),
    Rule("/v1/analytics/prediction/<address>", endpoint="prediction", methods=["GET"]),
    Rule("/v1/analytics/custom", endpoint="custom", methods=["POST"]),
    Rule("/v1/webhooks", endpoint="create_webhook", methods=["POST"]),
    Rule("/v1/webhooks", endpoint="list_webhooks", methods=["GET"]),
    Rule("/v1/webhooks/<webhook_id>", endpoint="delete_webhook", methods=["DELETE"]),
    Rule("/v1/ws", endpoint="websocket", methods=["GET"]),
    Rule("/v1/openapi.json", endpoint="openapi", methods=["GET"]),
], strict_slashes=False, merge_slashes=False)  # /v1//alerts: a 404, not a redirect

HANDLERS: dict[str, Callable[..., flask.Response]] = {
    "list_anomalies": routes_anomalies.list_anomalies,
    "list_alerts": routes_alerts.list_alerts,
    "token_analysis": routes_token.token_analysis,
    "track_token": routes_token.track_token,
    "tracked_tokens": routes_token.tracked_tokens,
    "untrack_token": routes_token.untrack_token,
    "sentiment": routes_analytics.sentiment,
    "prediction": routes_analytics.prediction,
    "custom": routes_analytics.custom,
    "create_webhook": routes_webhooks.create,
    "list_webhooks": routes_webhooks.list_all,
    "delete_webhook": routes_webhooks.delete,
}
# A route's checks that the document cannot state (ctx, the request as sent -> problems),
# listed with the document's own (openapi.RequestCheck)
MORE_CHECKS: dict[str, Callable[[Context, dict], list[Problem]]] = {
    "list_anomalies": routes_anomalies.request_problems,
    "create_webhook": routes_webhooks.create_problems,
    "delete_webhook": routes_webhooks.delete_problems,
}


def _openapi_response() -> flask.Response:
    return flask.Response(openapi.document_json(), status=200, mimetype="application/json")


def _template(rule: Rule) -> str:
    """The document's path of a route: /v1/token/<address>/analysis -> /v1/token/{address}/analysis."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)


def check_request(ctx: Context, rule: Rule, request: flask.Request,
                  values: dict) -> openapi.Checked:
    """The request checked against its operation in openapi.yaml and the route's own checks
    (400 naming every problem: a body that is no JSON, a U+0000 and the document's problems in
    one answer; a body too large or of another media type is refused first, 413 and 415).
    HEAD is GET without the body (RFC 9110 §9.3.2; werkzeug leaves the body out)."""
    method = "GET" if request.method == "HEAD" else request.method
    check = openapi.request_check(method, _template(rule))
    found: list[Problem] = []
    body, unreadable = None, False
    if check.has_body:
        try:
            body = read_json(request)
        except BadRequestError as error:
            if error.status != 400:
                raise
            found, unreadable = list(error.problems), True  # the query's named beside them
    # PostgreSQL's text cannot hold U+0000: a token=%00 reached a query and raised there (a 500)
    found += [Problem(name, "holds U+0000, which no stored text can hold")
              for name, value in [*values.items(), *request.args.items(multi=True)]
              if isinstance(value, str) and "\x00" in value]
    if body is not None and holds_nul(body):
        found.append(Problem("body", "a string holds U+0000, which no stored text can hold"))
    more = MORE_CHECKS.get(rule.endpoint)
    if not found:
        return check(values, request.args, body,
                     more=None if more is None else lambda sent: more(ctx, sent))
    try:  # the document's problems too; not the route's checks, which may query the database
        check(values, request.args, body)
    except BadRequestError as error:  # (a body that was no JSON is named once: "body")
        found += [problem for problem in error.problems
                  if not (unreadable and problem.field == "body")]
    raise BadRequestError("invalid request", sorted(dict.fromkeys(found), key=lambda p: p.field))


def route(ctx: Context, request: flask.Request) -> flask.Response:
    """Match, authenticate, rate-limit, check and run one request (probes already answered)."""
    rule, values = ROUTES.bind("api").match(request.path, method=request.method, return_rule=True)
    endpoint = rule.endpoint
    if endpoint == "openapi":
        return _openapi_response()
    if endpoint == "websocket":
        return websocket.serve(ctx, request)
    try:
        caller = auth.authenticate(ctx, request.headers)
    except auth.AuthenticationError as error:
        return auth.refusal(str(error))
    decision = ctx.local(ratelimit.leases).check(
        ctx.redis, caller.key_id, ratelimit.tier_limit(caller.tier, ctx.settings))
    if not decision.allowed:
        response = error_response(429, "rate_limited",
                                  f"over {decision.limit.rate_per_min} requests per minute "
                                  f"(burst {decision.limit.burst}) for tier {caller.tier}")
    else:
        try:
            response = HANDLERS[endpoint](ctx, caller, check_request(ctx, rule, request, values))
        except BadRequestError as error:  # counted against the limit, so it says so too
            response = error_response(error.status, error.code, error.message, error.problems)
    response.headers.update(decision.headers())
    return response


class _AnyPath(PathConverter):
    regex = r"[^/][\s\S]*?"  # the path converter's, but "." matches no newline


def route_every_path(app: flask.Flask) -> None:
    """Let every path reach the function, one holding a newline (%0A) too, and one under
    /static/: functions-framework's catch-all `/<path:path>` misses the first, Flask's static
    route takes the second, and Flask answered both with its own HTML 404, where the
    api checks the path and answers 400 or 404 as its document says. Called from
    functions/api/main.py, which functions-framework runs in the app's context."""
    app.url_map.converters["anypath"] = _AnyPath
    app.url_map.add(Rule("/<anypath:path>", endpoint="run"))
    # Flask's own /static/<filename> (functions-framework's empty static folder) answered its
    # HTML 404: such a path goes to the function too, which answers its problem body
    if "static" in app.view_functions:
        app.view_functions["static"] = lambda filename: app.view_functions["run"](
            f"static/{filename}")


def api_entry_point(ctx: Context | None = None) -> Callable[[flask.Request], flask.Response]:
    """The functions-framework HTTP target of the `api` function."""
    ctx = ctx or Context("api")
    configure_logging(ctx.settings.log_level)

    def entry_point(request: flask.Request) -> flask.Response:
        path = request.path[3:] if request.path.startswith("/v1/") else request.path
        probe = probe_response(path, ctx, uses_database=True)
        if probe is not None:
            return probe
        # (HEAD as GET: werkzeug leaves out the body; an uptime check's HEAD / was a 404)
        page = (dashboard.static_response(request.path) if request.method in ("GET", "HEAD")
                else None)
        if page is not None:
            return page
        try:
            return route(ctx, request)
        except NotFound:
            return error_response(404, "not_found", f"no route {request.path}")
        except MethodNotAllowed as error:
            allowed = ", ".join(sorted(error.valid_methods or ()))
            response = error_response(405, "method_not_allowed",
                                      f"{request.method} not allowed; use {allowed}")
            response.headers["Allow"] = allowed  # RFC 9110 §15.5.6
            return response
        except BadRequestError as error:  # 400, or 413 for PayloadTooLarge
            return error_response(error.status, error.code, error.message, error.problems)
        except clients.TEMPORARY_ERRORS as error:
            log(logger, logging.WARNING, "temporary failure", error=str(error))
            return error_response(503, "unavailable", f"temporary failure: {type(error).__name__}")
        except HTTPException as error:  # werkzeug's own: a client gone mid-body is a 400
            return error_response(error.code or 400, "bad_request", error.description or "")
        except Exception:  # noqa: BLE001 -- a bug: logged whole, answered as a JSON problem
            return internal_error(f"{request.method} {request.path}")

    return entry_point
