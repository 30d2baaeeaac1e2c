"""The one HTTP entry point of every KADES function (functions-framework's HTTP signature).

Why not `@functions_framework.cloud_event`: it always answers `200 OK` with a text body,
which Knative's Broker takes for a broken reply (502, retried, then dead-lettered). Here a
function answers 202 with an empty body, or 200 with its reply CloudEvent in binary mode.

Besides events (POST /), every function serves GET /health, /ready and /metrics.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from typing import Callable
from urllib.parse import quote

import flask

from kades import clients
from kades.errors import (PROBLEM_JSON, BadRequestError, InvalidEventError, Problem,
                          TemporaryFailure, error_body)
from kades.events.catalogue import data_problems
from kades.events.chunking import EventTooLarge, check_sizes
from kades.events.envelope import (CloudEvent, control_problems, decode, holds_nul,
                                   to_binary)
from kades.logs import configure_logging, current_event_id, log
from kades.metrics import (DUPLICATES, EMITTED, EVENTS, HANDLER_SECONDS, IN_FLIGHT, event_type,
                           render)
from kades.runtime import dedup, keep, oidc, sink
from kades.runtime.function import ANY_TYPE, Context, Function, as_event_list
from kades.runtime.state import answered_by_outbox
from kades.storage.migrate import schema_problem

logger = logging.getLogger("kades.runtime")


def json_response(body: dict, status: int, headers: dict | None = None) -> flask.Response:
    return flask.Response(json_text(body), status=status, headers=headers,
                          mimetype="application/json")


def json_text(body) -> str:
    """`body` as JSON (RFC 8259), which has no NaN or Infinity: a float that is not finite
    (a ratio of stored extremes: 1e9 / 5e-324) is written null, not as a word no JSON parser
    reads."""
    try:
        return json.dumps(body, allow_nan=False)
    except ValueError:  # rare: only then is the answer walked
        return json.dumps(answer_leaves(body, _finite), allow_nan=False)


# How deep an answer's own values sit (an object, its list of rows, a row, a row's object):
# below that is stored JSON (details, components), passed on as it is. A row stored before
# MAX_DATA_DEPTH, hundreds of levels deep, made a walk of the whole answer recurse out.
ANSWER_DEPTH = 6


def answer_leaves(value, convert, _depth: int = 0):
    """`value` with `convert` applied to every leaf, in objects and lists down to ANSWER_DEPTH
    levels (deeper ones are passed on as they are)."""
    if not isinstance(value, (dict, list, tuple)):
        return convert(value)
    if _depth >= ANSWER_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: answer_leaves(v, convert, _depth + 1) for k, v in value.items()}
    return [answer_leaves(v, convert, _depth + 1) for v in value]


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def error_response(status: int, code: str, message: str,
                   details: list[Problem] | None = None) -> flask.Response:
    """An RFC 9457 problem (application/problem+json); its `instance` is the request's path,
    percent-encoded again (a URI reference)."""
    instance = quote(flask.request.path) if flask.has_request_context() else None
    body = error_body(code, message, details, status=status, instance=instance)
    headers = {"Retry-After": "1"} if status == 503 else None
    return flask.Response(json.dumps(body), status=status, headers=headers, mimetype=PROBLEM_JSON)


def internal_error(where: str) -> flask.Response:
    """The answer to a bug (an exception nothing expected), from inside its `except`: the
    traceback logged, a 500 the Broker retries, its body a problem as every other error's
    (Flask's own was HTML, which API callers and dead-letter readers cannot parse)."""
    logger.exception(f"unhandled error in {where}")
    return error_response(500, "internal_error", "internal error; the traceback is logged")


def probe_response(path: str, ctx: Context, *, uses_database: bool) -> flask.Response | None:
    """Answer /health, /ready and /metrics; None for any other path."""
    if path == "/health":
        return json_response({"status": "ok", "function": ctx.name}, 200)
    if path == "/ready":
        by = time.monotonic() + READY_S
        checks = {"redis": _check(lambda: ctx.redis.ping() and None)}  # redis_timeout_s at most
        if uses_database:
            budget = min(DATABASE_PROBE_S, max(DATABASE_PROBE_MIN_S, by - time.monotonic()))
            checks["database"] = _check(lambda: _schema_ready(ctx, budget))
        ready = all(v == "ok" for v in checks.values())
        response = json_response({"status": "ready" if ready else "unavailable",
                                  "checks": checks}, 200 if ready else 503)
        if not ready:
            response.headers["Retry-After"] = "1"  # as every 503
        return response
    if path == "/metrics":
        payload, content_type = render()
        return flask.Response(payload, status=200, content_type=content_type)
    return None


# /ready answers within the kubelet's probe timeout (manifests.PROBE_TIMEOUT_S, 3 s): the
# database gets up to DATABASE_PROBE_S of what the Redis ping (up to redis_timeout_s) left of
# READY_S, and DATABASE_PROBE_MIN_S at least.
READY_S, DATABASE_PROBE_S, DATABASE_PROBE_MIN_S = 2.5, 2.0, 0.5


def _schema_ready(ctx: Context, budget_s: float = DATABASE_PROBE_S) -> str | None:
    """The database reachable and migrated: Knative routes nothing to a replica until then.
    Applied with the functions, the migration Job may land minutes after them, and each
    event meanwhile met missing tables (a 500) until it was dead-lettered. Once migrated, a
    process asks only SELECT 1, and not even that while the handlers hold every connection
    of its pool: the probe waited in line for one (up to the pool's timeout, past the
    probe's own), so a replica at its busiest was judged unready and taken out of service."""
    if ctx.local(_Migrated).seen:
        stats = clients.db_pool(ctx.settings).get_stats()
        if stats["pool_size"] >= stats["pool_max"] and not stats["pool_available"]:
            return None  # busy, not away: every connection is at a handler's work
    # within the kubelet's timeout: a stopped database held each probe's thread for as long
    # as it was stopped, every 5 s another
    with clients.answer_by(time.monotonic() + budget_s), ctx.db(timeout=budget_s) as conn:
        if ctx.local(_Migrated).seen:
            conn.execute("SELECT 1")
            return None
        problem = schema_problem(conn)
    ctx.local(_Migrated).seen = problem is None
    return problem


class _Migrated:
    """Per Context: whether the schema was seen migrated (it is never unmigrated after)."""

    def __init__(self, ctx: Context | None = None):
        self.seen = False


def _check(probe: Callable[[], str | None]) -> str:
    try:
        problem = probe()
    except clients.TEMPORARY_ERRORS as error:
        return f"unavailable: {type(error).__name__}"
    return "ok" if problem is None else f"unavailable: {problem}"


def http_function(function: Function, ctx: Context | None = None) -> Callable[[flask.Request], flask.Response]:
    """The functions-framework HTTP target for `function` (see functions/*/main.py)."""
    # Before the settings are read (Context): what reading them reports is a JSON line too.
    configure_logging(ctx.settings.log_level if ctx else None)
    ctx = ctx or Context(function.name)
    verifier = oidc.Verifier.from_settings(ctx.settings)  # None: authentication-oidc is off

    def entry_point(request: flask.Request) -> flask.Response:
        probe = probe_response(request.path, ctx, uses_database=function.uses_database)
        if probe is not None:
            return probe if request.method in ("GET", "HEAD") else error_response(
                405, "method_not_allowed", "use GET")
        if request.path != "/":
            return error_response(404, "not_found", f"no route {request.path}")
        if request.method != "POST":
            return error_response(405, "method_not_allowed", "events are POSTed to /")
        refused = sender_refused(verifier, request.headers.get("Authorization"))
        if refused is not None:
            return refused
        limit = ctx.settings.max_event_bytes
        # what a function that keeps oversized bodies reads of one, counting and hashing it
        ceiling = limit if function.keep_too_large is None else keep.READ_CEILING * limit
        if (request.content_length or 0) > ceiling:
            return too_large(ceiling)
        body = request.stream.read(limit + 1)  # bounded: a chunked body has no Content-Length
        oversized = None
        if len(body) > limit:
            if function.keep_too_large is None:
                return too_large(limit)
            oversized = keep.read_oversized(request.stream, body, limit, ceiling)
            if oversized is None:
                return too_large(ceiling)
            if request.content_length is not None and oversized.size < request.content_length:
                # the sender stopped early (gunicorn returns what came): keeping this would
                # answer the Broker's retry of the whole body as a duplicate
                return error_response(503, "unavailable", f"body ended after {oversized.size} "
                                      f"of {request.content_length} bytes")
        try:
            if oversized is not None:
                return _keep_too_large(function, ctx, request.headers, oversized)
            return handle_request(function, ctx, request.headers, body)
        except Exception:  # noqa: BLE001 -- a bug: logged whole and answered 500 (retried)
            return internal_error(function.name)

    entry_point.context = ctx  # a wrapper (alerts.function.with_delivery_worker) shares it
    return entry_point


def too_large(limit: int) -> flask.Response:
    # Made only when needed: building a problem answer for every event cost ~5 % of
    # alert-dispatch's CPU.
    return error_response(413, "payload_too_large", f"body over {limit} bytes")


def sender_refused(verifier: oidc.Verifier | None, authorization: str | None) -> flask.Response | None:
    """401 unless the request carries the Broker's token for this function (when required),
    403 when the token's sender is not one this function takes events from."""
    if verifier is None:
        return None
    try:
        verifier.verify(authorization)
    except oidc.Unauthorized as error:
        log(logger, logging.WARNING, "sender refused", reason=str(error))
        response = error_response(401, "unauthorized", str(error))
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    except oidc.Forbidden as error:
        log(logger, logging.WARNING, "sender refused", reason=str(error))
        return error_response(403, "forbidden", str(error))
    except clients.TEMPORARY_ERRORS as error:  # the issuer's keys are away: the Broker retries
        log(logger, logging.WARNING, "temporary failure", error=str(error))
        return error_response(503, "unavailable", str(error))
    return None


def _refused_in_batch(ctx: Context, error: BadRequestError, index: int,
                      replies: list[CloudEvent]) -> None:
    """A batch's event `index` refused by its handler: its problems name it (`[index].field`,
    as check_consumable's do), and the replies of the events before it, handled and marked
    done already, go to the sink before the 400 (they were dropped, and a resend of the
    batch finds those events done)."""
    error.problems = [Problem(f"[{index}].{p.field}", p.message) for p in error.problems] or [
        Problem(f"[{index}]", error.message)]
    if replies:
        sink.send(replies, ctx.settings.sink_url, token_file=ctx.settings.sink_token_file)


def handle_request(function: Function, ctx: Context, headers, body: bytes) -> flask.Response:
    """Decode, validate and handle every event of one request; map failures to statuses."""
    sink.trace_context.set(sink.trace_headers(headers))  # for what the handler sends on
    try:
        try:
            events = decode(headers, body, specversions=function.specversions)
        except InvalidEventError as error:  # its other problems named in the same answer
            named = {p.field for p in error.problems}
            error.problems += [p for prefix, item in [("", error.read), *error.items]
                               for p in read_problems(function, item, prefix, named)]
            raise
        check_consumable(function, events, body=body)
        replies: list[CloudEvent] = []
        for index, event in enumerate(events):
            try:
                replies.extend(handle_event(function, ctx, event))
            except BadRequestError as error:
                if len(events) > 1:
                    _refused_in_batch(ctx, error, index, replies)
                raise
        if len(events) > 1 and replies:
            sink.send(replies, ctx.settings.sink_url, token_file=ctx.settings.sink_token_file)
    except BadRequestError as error:
        if function.keep_undecodable is not None:
            kept = _keep_undecodable(function, ctx, headers, body, error)
            if kept is not None:
                return kept
        EVENTS.labels(function.name, "-", "rejected").inc()
        log(logger, logging.INFO, "rejected", code=error.code, problems=len(error.problems))
        return error_response(400, error.code, error.message, error.problems)
    except clients.TEMPORARY_ERRORS as error:
        log(logger, logging.WARNING, "temporary failure", error=str(error))
        return error_response(503, "unavailable", f"temporary failure: {type(error).__name__}")
    except EventTooLarge as error:  # a handler's bug, logged by check_size: retried, then dead-lettered
        return error_response(500, "event_too_large", str(error))
    if len(events) == 1 and replies:
        # Binary-mode reply; the Broker takes it in again. Further events went to the sink.
        headers_out, payload = to_binary(replies[0])
        return flask.Response(payload, status=200, headers=headers_out)
    return flask.Response(b"", status=202)


def _keep_undecodable(function: Function, ctx: Context, headers, body: bytes,
                      error: BadRequestError) -> flask.Response | None:
    """202 when the function kept the request (or a retry of it before), 503 when it could
    not now, None: refuse it."""
    return _kept(function, ctx, headers, hashlib.sha256(body).hexdigest(),
                 lambda: function.keep_undecodable(ctx, headers, body, error),
                 "kept_undecodable", code=error.code, problems=len(error.problems))


def _keep_too_large(function: Function, ctx: Context, headers,
                    body: keep.Oversized) -> flask.Response:
    """202 when the function kept what it could of a body over the limit (or of a retry of
    it before), 503 when it could not now, 413 when it refuses it."""
    return _kept(function, ctx, headers, body.sha256,
                 lambda: function.keep_too_large(ctx, headers, body),
                 "kept_too_large", size=body.size) or too_large(ctx.settings.max_event_bytes)


def _kept(function: Function, ctx: Context, headers, body_sha256: str,
          keeping: Callable[[], bool], outcome: str, **details) -> flask.Response | None:
    """Keep a request without decoding it, once (keep.keep_once): 202, 503 when it cannot be
    now, None when the function refuses it."""
    try:
        if not keep.keep_once(function, ctx, headers, body_sha256, keeping, outcome, **details):
            return None
    except clients.TEMPORARY_ERRORS as failure:
        log(logger, logging.WARNING, "temporary failure", error=str(failure))
        return error_response(503, "unavailable", f"temporary failure: {type(failure).__name__}")
    return flask.Response(b"", status=202)


# An event's source and id are part of the unique keys of the rows it stores, and a
# PostgreSQL index row holds ~2.7 kB: a 3,000-character id raised ProgramLimitExceeded (an
# OperationalError, so a 503) on every retry until the event was dead-lettered.
MAX_KEY_BYTES = 1024


def check_consumable(function: Function, events: list[CloudEvent], *,
                     body: bytes | None = None) -> None:
    """Every problem of every event of the request, before anything is handled. `body`: the
    request's, to skip looking for U+0000 in data that cannot hold one (no \\u0000 in it),
    and for control characters likewise (catalogue.data_problems)."""
    if body is not None and b'"data_base64"' in body:
        body = None  # data decoded from base64: what it holds is not in the body's text
    problems = [problem for index, event in enumerate(events)
                for problem in consumable_problems(
                    function, event, f"[{index}]." if len(events) > 1 else "", body=body)]
    if problems:
        raise InvalidEventError("event rejected", problems)


def consumable_problems(function: Function, event: CloudEvent, prefix: str = "", *,
                        body: bytes | None = None, data: bool = True) -> list[Problem]:
    """What this function refuses in one event: a type it does not consume, control
    characters, a key part too long, U+0000 in the data, and (with `data`) the data's schema
    problems. An attribute missing is no problem here (decode names it)."""
    if function.consumes == ANY_TYPE:
        return []  # the dead-letter sink keeps whatever it is sent
    if event.get("type") not in function.consumes:
        return [Problem(prefix + "type", f"{function.name} does not consume "
                                         f"{event.get('type')!r}; it consumes {list(function.consumes)}")]
    problems = [Problem(prefix + p.field, p.message) for p in control_problems(event.attributes)]
    problems += [Problem(prefix + name, f"over {MAX_KEY_BYTES} bytes: it is part of the stored "
                                        "rows' unique keys")
                 for name in ("source", "id")
                 if isinstance(event.get(name), str) and len(event.get(name).encode()) > MAX_KEY_BYTES]
    if not data:
        return problems
    if (body is None or b"\\u0000" in body) and _holds_nul(event.data):
        problems.append(Problem(prefix + "data", "a string holds U+0000, which no stored "
                                                 "text can hold"))
    return problems + [Problem(prefix + p.field, p.message) for p in data_problems(event, body=body)]


def read_problems(function: Function, read: CloudEvent | None, prefix: str,
                  named: set[str]) -> list[Problem]:
    """The problems of an event whose attributes were refused (`InvalidEventError.read`), where
    decode named none of them: a bad `ce-time` hid a bad body, a type not consumed or an id
    with a line feed until the time was mended. (Its data not asked where it could not be
    read: "None is not of type 'object'" beside "the body is not JSON" said nothing more.)"""
    if read is None:
        return []
    data = not named & {prefix + "data", prefix + "data_base64"}
    return [p for p in consumable_problems(function, read, prefix, data=data)
            if p.field not in named]


def _holds_nul(data) -> bool:
    try:
        return holds_nul(data)
    except RecursionError:  # as deep as decoding allows, deeper than this walk: not stored
        return True


def handle_event(function: Function, ctx: Context, event: CloudEvent) -> list[CloudEvent]:
    """Handle one valid event once; return what the caller should reply.

    With a single event the first reply goes back in the HTTP answer and the rest to the
    sink; with a batch every reply goes to the sink (one HTTP answer cannot hold them).
    """
    token = current_event_id.set(event.id)
    in_flight = IN_FLIGHT.labels(function.name)
    kind = event_type(event.type)  # a bounded label: the dead-letter sink takes any type
    in_flight.inc()
    started = time.perf_counter()
    try:
        if function.idempotent:
            replies, again = _handle_idempotent(function, ctx, event)
            if again:
                DUPLICATES.labels(function.name).inc()
                EVENTS.labels(function.name, kind, "duplicate").inc()
                log(logger, logging.INFO, "duplicate answered again", type=event.type,
                    source=event.source)
                return replies[:1]
        else:
            try:
                claim = dedup.claim(ctx.redis, function.name, event, function.identity,
                                    **dedup.claim_options(ctx))
                if claim.in_progress:
                    EVENTS.labels(function.name, kind, "in_progress").inc()
                    raise TemporaryFailure("the same event is being handled by another request")
                if claim.done_replies is not None:
                    DUPLICATES.labels(function.name).inc()
                    EVENTS.labels(function.name, kind, "duplicate").inc()
                    log(logger, logging.INFO, "duplicate dropped", type=event.type,
                        source=event.source)
                    return claim.done_replies[:1]
                replies = _handle_claimed(function, ctx, event, claim)
            except dedup.ClaimLost:
                EVENTS.labels(function.name, kind, "claim_lost").inc()
                raise
            except (dedup.PrimaryChanged, dedup.NotReplicated):
                EVENTS.labels(function.name, kind, "not_replicated").inc()
                raise
        elapsed = time.perf_counter() - started
        HANDLER_SECONDS.labels(function.name, kind).observe(elapsed)
        EVENTS.labels(function.name, kind, "handled").inc()
        log(logger, logging.INFO, "handled", type=event.type, replies=len(replies),
            duration_ms=round(elapsed * 1000, 3))
        return replies[:1]
    finally:
        in_flight.dec()
        current_event_id.reset(token)


def _handle_idempotent(function: Function, ctx: Context,
                       event: CloudEvent) -> tuple[list[CloudEvent], bool]:
    """A handler whose every effect and reply is the same whichever delivery of the event
    makes it (`Function.idempotent`): run without claim nor done mark, two Redis round trips
    fewer. A redelivery, even one running at the same time, runs it again to no further
    effect and replies the same events; so the replies beyond the first need no keeping
    before they are sent (`dedup.first_sent`), and are sent again (the first delivery may
    have failed before it sent them). (replies, whether the handler's state update was
    answered by an earlier delivery's outbox: a duplicate)."""
    unset = answered_by_outbox.set(False)
    try:
        replies = as_event_list(function.handle(event, ctx))
        again = answered_by_outbox.get()
    finally:
        answered_by_outbox.reset(unset)
    check_sizes(replies[:1])  # the rest by sink.send, before it sends any
    if len(replies) > 1:
        sink.send(replies[1:], ctx.settings.sink_url, token_file=ctx.settings.sink_token_file)
        for reply in replies[1:]:
            EMITTED.labels(function.name, event_type(reply.type)).inc()
    return replies, again


def _handle_claimed(function: Function, ctx: Context, event: CloudEvent,
                    claim: dedup.Claim) -> list[CloudEvent]:
    """Run the handler while its claim is renewed; mark it done only if the claim is still
    ours (dedup.ClaimLost, a 503, if another replica took it over after our lease ran out)."""
    with dedup.renewed(ctx.redis, claim) as lease:
        try:
            replies = as_event_list(function.handle(event, ctx))
            # An event over the limit is refused whole, never cut: the reply here, the rest
            # by sink.send before it sends any.
            check_sizes(replies[:1])
            lease.check()  # taken over meanwhile: the new owner's results are the ones kept
            if len(replies) > 1:  # some go out before the answer: a retry must send the same
                # kept as long as a done mark: a dead-lettered event replayed days later
                # (`kades dlq replay`) sends the same; gone once the event is done
                replies = dedup.first_sent(ctx.redis, claim, replies, ctx.settings.dedup_ttl_s)
                extra = replies[1:]
                sink.send(extra, ctx.settings.sink_url, token_file=ctx.settings.sink_token_file)
                for reply in extra:
                    EMITTED.labels(function.name, event_type(reply.type)).inc()
        except BaseException:
            dedup.release(ctx.redis, claim)
            raise
        dedup.complete(ctx.redis, claim, replies[:1], ctx.settings.dedup_ttl_s,
                       sent=len(replies) > 1)
    return replies
