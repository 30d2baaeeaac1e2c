"""The broker ingress: `POST /<namespace>/<broker>` takes CloudEvents in, as Knative's does.

Answers (knative/eventing `pkg/broker/ingress/ingress_handler.go`): 202 once the event is
durably queued in the lane of every Trigger it matches (`routing`; none: accepted, dropped); 400 for an invalid event (every problem listed) or an exhausted TTL; 404
for an unknown broker; 405 for any other method. With sender identity on (`kades broker
--oidc`), a valid event is then checked as Knative checks it (`policy`): 401 without a valid
token for the Broker's audience, 403 from a sender its EventPolicies do not admit. CloudEvents 1.0 and 0.3 are taken (Knative's
Go SDK reads both) and a 0.3 event stays 0.3; the functions take 1.0 only, so one that
reaches them is refused there (400) and dead-lettered. A batch (`application/cloudevents-batch
+json`) is a 400, as there: send each event on its own. Header names with an underscore are not
read (`ce_id` is not `ce-id`). Data is passed on unread, as there: a binary body as the bytes
that came, JSON or not. Beyond Knative: 413 above `max_event_bytes` before parsing, 415 for a structured
event format other than JSON (the CloudEvents HTTP binding's answer), 503 while Redis is
away. Every error is an RFC 9457 problem (`application/problem+json`, made by
`kades.errors.error_body` as every KADES answer's) naming each problem in `errors`.

`admit` is the ingress logic proper, shared with replies: `knativearrivaltime` is set to
now, `knativebrokerttl` is 255 when absent and otherwise counts down by one; at 0 the
event is refused, which ends reply loops.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import quote

import redis

from kades.broker.policy import Forbidden, SenderCheck
from kades.broker.queue import BrokerQueue
from kades.errors import PROBLEM_JSON, InvalidEventError, Problem, TemporaryFailure, error_body
from kades.events.catalogue import MAX_EVENT_BYTES
from kades.events.envelope import BATCH_TYPE, BROKER_SPECVERSIONS, STRUCTURED_TYPE, CloudEvent, decode
from kades.logs import log
from kades.metrics import BROKER_INGRESS, render
from kades.runtime.oidc import Unauthorized

# The largest event the ingress takes: what the prod Kafka Broker's topic takes
# (knative/overlays/prod/kafka-broker-config.yaml's max.message.bytes, twice KADES's own event
# limit; tests/events/test_event_limits.py). The development broker took the functions' 16
# MiB, so an event between 512 KiB and 16 MiB passed here and failed on the cluster.
BROKER_MAX_EVENT_BYTES = 2 * MAX_EVENT_BYTES
DEFAULT_TTL = 255
TTL = "knativebrokerttl"
ARRIVAL_TIME = "knativearrivaltime"
logger = logging.getLogger("kades.broker.ingress")


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def admit(event: CloudEvent, *, arrival_time: str | None = None) -> CloudEvent:
    """The event as the broker queues it; raise InvalidEventError when its TTL is used up."""
    attributes = dict(event.attributes)
    attributes[ARRIVAL_TIME] = arrival_time or now_rfc3339()
    raw = attributes.get(TTL)
    if raw is None:
        ttl = DEFAULT_TTL
    else:
        try:
            ttl = max(0, int(raw) - 1)
        except ValueError:  # Knative's TTLDefaulter: one it cannot read is set anew
            ttl = DEFAULT_TTL
        if ttl <= 0:
            raise InvalidEventError("event dropped: broker TTL exhausted", [Problem(
                TTL, f"TTL {raw} reached 0: the event went round through the broker too "
                     "often (a reply loop)")])
    attributes[TTL] = str(ttl)
    return CloudEvent(attributes, event.data, _has_data=event.has_data)


class _Headers(dict):
    """Request headers by lower-case name; `get` takes any case."""

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)


class Request:
    """What the ingress reads of a WSGI request: werkzeug's Request objects and their
    lazily built properties cost about 5 % of the broker's CPU per event (docs/performance.md)."""

    def __init__(self, environ: dict):
        self.method = environ["REQUEST_METHOD"]
        # WSGI passes the path as latin-1 text of its bytes; read it as UTF-8, as werkzeug does.
        self.path = (environ.get("PATH_INFO") or "/").encode("latin-1").decode("utf-8", "replace")
        self.query = environ.get("QUERY_STRING") or ""
        self.headers = _Headers((key[5:].lower().replace("_", "-"), value)
                                for key, value in environ.items() if key.startswith("HTTP_"))
        if environ.get("CONTENT_TYPE"):
            self.headers["content-type"] = environ["CONTENT_TYPE"]
        try:
            self.content_length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            self.content_length = 0
        self.stream = environ["wsgi.input"]


class Response:
    """An answer of the ingress, as WSGI sends it."""

    def __init__(self, body: str | bytes = b"", *, status: int, headers: dict | None = None,
                 mimetype: str | None = None, content_type: str | None = None):
        self.body = body.encode() if isinstance(body, str) else body
        self.status_code = status
        self.headers = [("Content-Length", str(len(self.body)))]
        if mimetype or content_type:
            self.headers.append(("Content-Type", content_type or mimetype))
        self.headers += list((headers or {}).items())

    def __call__(self, environ, start_response):
        start_response(f"{self.status_code} {HTTPStatus(self.status_code).phrase}", self.headers)
        return [self.body]


def _json(body: dict, status: int, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def problem(request: Request, status: int, code: str, message: str, problems: list[Problem],
            headers: dict | None = None) -> Response:
    """An RFC 9457 problem answer; its `instance` is the request's path (percent-encoded)."""
    body = error_body(code, message, problems, status=status, instance=quote(request.path))
    return Response(json.dumps(body), status=status, headers=headers, mimetype=PROBLEM_JSON)


def unsupported_format(content_type: str) -> str | None:
    """The media type of a structured event in a format the broker does not read (not
    JSON), else None: the HTTP binding (§3.2) answers those 415."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media.startswith("application/cloudevents") and media not in (STRUCTURED_TYPE, BATCH_TYPE):
        return media
    return None


class IngressApp:
    """WSGI app of the ingress, plus GET /health, /ready (Redis ping) and /metrics.
    `senders`: broker path -> the check of its senders (sender identity on), else none."""

    def __init__(self, queues: dict[str, BrokerQueue], client: redis.Redis, *,
                 max_event_bytes: int, senders: dict[str, SenderCheck] | None = None):
        self.queues = queues  # broker path -> its queue
        self.redis = client
        self.max_event_bytes = max_event_bytes
        self.senders = senders or {}

    def __call__(self, environ, start_response):
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path in ("/health", "/ready", "/metrics"):
            return self._probe(path, request)
        # As Knative's ingress (pkg/broker/ingress): OPTIONS is the CloudEvents webhook
        # handshake; the request URI, query string and all, is /<namespace>/<broker> with at
        # most one trailing slash; the event is checked before its broker is looked up.
        if request.method == "OPTIONS":
            return Response(b"", status=200, headers={
                "Allow": "POST, OPTIONS", "WebHook-Allowed-Origin": "*", "WebHook-Allowed-Rate": "*"})
        if request.method != "POST":
            return problem(request, 405, "method_not_allowed", "the broker ingress takes POST only",
                           [Problem("method", f"{request.method} is not POST")],
                           headers={"Allow": "POST, OPTIONS"})
        uri = request.path + (f"?{request.query}" if request.query else "")
        if uri == "/":
            return problem(request, 404, "not_found", "no broker at /", [Problem(
                "path", f"POST to /<namespace>/<broker>; brokers: {sorted(self.queues)}")])
        uri = uri.removesuffix("/")
        if len(uri.split("/")) != 3:
            return problem(request, 400, "bad_request", f"malformed broker URI {uri}", [Problem(
                "path", f"POST to /<namespace>/<broker>; brokers: {sorted(self.queues)}")])
        response = self._ingest(self.queues.get(uri), request, self.senders.get(uri), uri)
        BROKER_INGRESS.labels(broker=uri if uri in self.queues else "unknown",
                              status=str(response.status_code)).inc()
        return response

    def _probe(self, path: str, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return problem(request, 405, "method_not_allowed", "use GET", [Problem(
                "method", f"{path} answers GET and HEAD, not {request.method}")],
                headers={"Allow": "GET, HEAD"})
        if path == "/health":
            return _json({"status": "ok"}, 200)
        if path == "/metrics":
            payload, content_type = render()
            return Response(payload, status=200, content_type=content_type)
        try:
            self.redis.ping()
        except redis.RedisError as error:
            return _json({"status": "unavailable", "checks": {"redis": str(error)}}, 503)
        return _json({"status": "ready", "checks": {"redis": "ok"}}, 200)

    def _too_large(self, request: Request, size: str) -> Response:
        return problem(request, 413, "payload_too_large",
                       f"an event is at most {self.max_event_bytes} bytes",
                       [Problem("body", f"{size} bytes, over {self.max_event_bytes}")],
                       headers={"Connection": "close"})

    def _ingest(self, queue: BrokerQueue | None, request: Request,
                senders: SenderCheck | None, uri: str) -> Response:
        if (request.content_length or 0) > self.max_event_bytes:
            return self._too_large(request, str(request.content_length))
        body = request.stream.read(self.max_event_bytes + 1)
        if len(body) > self.max_event_bytes:
            return self._too_large(request, "more than " + str(self.max_event_bytes))
        media = unsupported_format(request.headers.get("Content-Type", ""))
        if media is not None:
            return problem(request, 415, "unsupported_media_type",
                           "the broker reads CloudEvents in the JSON format only", [Problem(
                               "content-type", f"{media} is not {STRUCTURED_TYPE} "
                                               "(send binary mode or JSON)")])
        if request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower() == BATCH_TYPE:
            # Knative's ingress reads one event per request (sdk-go's ToEvent refuses a batch)
            return problem(request, 400, "invalid_event", "the Broker takes one event per request",
                           [Problem("content-type", f"{BATCH_TYPE}: send each event in binary "
                                                    "or structured mode")])
        try:
            # the data passed on unread, as Knative's ingress does (no JSON check: 202)
            events = decode(request.headers, body, specversions=BROKER_SPECVERSIONS,
                            raw_data=True)
            if queue is None:
                return problem(request, 404, "not_found", f"no broker at {uri}", [Problem(
                    "path", f"no broker at {uri}; brokers: {sorted(self.queues)}")])
            if senders is not None and (refused := self._refused(senders, request, events)):
                return refused
            admitted, problems = [], []
            for index, event in enumerate(events):
                try:
                    admitted.append(admit(event))
                except InvalidEventError as error:
                    prefix = f"[{index}]." if len(events) > 1 else ""
                    problems += [Problem(prefix + p.field, p.message) for p in error.problems]
            if problems:
                raise InvalidEventError("event refused by the broker", problems)
        except InvalidEventError as error:
            return problem(request, 400, error.code, error.message, error.problems)
        try:
            queue.enqueue(admitted)
        except redis.RedisError as error:
            log(logger, logging.WARNING, "redis unavailable, event refused", error=str(error))
            return problem(request, 503, "unavailable",
                           "the broker queue (Redis) is not available; retry",
                           [Problem("redis", type(error).__name__)], headers={"Retry-After": "1"})
        return Response(status=202)

    @staticmethod
    def _refused(senders: SenderCheck, request: Request, events: list) -> Response | None:
        """401 or 403 (Knative's VerifyRequest), 503 when the issuer's keys are away."""
        try:
            senders.check(request.headers.get("Authorization"), events)
        except Unauthorized as error:
            return problem(request, 401, "unauthorized", str(error),
                           [Problem("authorization", str(error))],
                           headers={"WWW-Authenticate": "Bearer"})
        except Forbidden as error:
            return problem(request, 403, "forbidden", str(error), [Problem("sender", str(error))])
        except TemporaryFailure as error:
            return problem(request, 503, "unavailable", str(error),
                           [Problem("authorization", "the issuer's keys cannot be fetched")],
                           headers={"Retry-After": "1"})
        return None
