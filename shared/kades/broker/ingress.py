"""The broker ingress: `POST /<namespace>/<broker>` takes CloudEvents in, as Knative's does.

Answers (knative/eventing `pkg/broker/ingress/ingress_handler.go`): 202 once the event is
durably queued in the lane of every Trigger it matches (`routing`; none: accepted, dropped); 400 for an invalid event (every problem listed) or an exhausted TTL; 404
for an unknown broker; 405 for any other method. With sender identity on (`kades broker
--oidc`), a valid event is then checked as Knative checks it (`policy`): 401 without a valid
token for the Broker's audience, 403 from a sender its EventPolicies do not admit. CloudEvents 1.0 and 0.3 are taken (Knative's
Go SDK reads both) and a 0.3 event stays 0.3; the functions take 1.0 only, so one that
reaches them is refused there (400) and dead-lettered. Beyond Knative: batch mode (each event
queued, all or none), 413 above `max_event_bytes` before parsing, 503 while Redis is away.

`admit` is the ingress logic proper, shared with replies: `knativearrivaltime` is set to
now, `knativebrokerttl` is 255 when absent and otherwise counts down by one; at 0 the
event is refused, which ends reply loops.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import redis
from werkzeug.wrappers import Request, Response

from kades.broker.policy import Forbidden, SenderCheck
from kades.broker.queue import BrokerQueue
from kades.errors import InvalidEventError, Problem, TemporaryFailure, error_body
from kades.events.envelope import BROKER_SPECVERSIONS, CloudEvent, decode
from kades.logs import log
from kades.metrics import BROKER_INGRESS, render
from kades.runtime.oidc import Unauthorized

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
        except ValueError:
            raise InvalidEventError("invalid CloudEvent", [Problem(
                TTL, f"must be an integer, got {raw!r}")]) from None
        if ttl <= 0:
            raise InvalidEventError("event dropped: broker TTL exhausted", [Problem(
                TTL, f"TTL {raw} reached 0: the event went round through the broker too "
                     "often (a reply loop)")])
    attributes[TTL] = str(ttl)
    return CloudEvent(attributes, event.data, _has_data=event.has_data)


def _json(body: dict, status: int, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def _error(status: int, code: str, message: str, details: list[Problem] | None = None,
           headers: dict | None = None) -> Response:
    return _json(error_body(code, message, details), status, headers)


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
        queue = self.queues.get(path)
        if queue is None:
            return _error(404, "not_found", f"no broker at {path}; brokers: {sorted(self.queues)}")
        response = self._ingest(queue, request, self.senders.get(path))
        BROKER_INGRESS.labels(broker=path, status=str(response.status_code)).inc()
        return response

    def _probe(self, path: str, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _error(405, "method_not_allowed", "use GET", headers={"Allow": "GET"})
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

    def _ingest(self, queue: BrokerQueue, request: Request,
                senders: SenderCheck | None) -> Response:
        if request.method != "POST":
            return _error(405, "method_not_allowed", "the broker ingress takes POST only",
                          headers={"Allow": "POST"})
        too_large = _error(413, "too_large", f"an event is at most {self.max_event_bytes} bytes",
                           headers={"Connection": "close"})
        if (request.content_length or 0) > self.max_event_bytes:
            return too_large
        body = request.stream.read(self.max_event_bytes + 1)
        if len(body) > self.max_event_bytes:
            return too_large
        try:
            events = decode(request.headers, body, specversions=BROKER_SPECVERSIONS)
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
            return _json(error.as_body(), 400)
        try:
            queue.enqueue(admitted)
        except redis.RedisError as error:
            log(logger, logging.WARNING, "redis unavailable, event refused", error=str(error))
            return _error(503, "unavailable", "the broker queue (Redis) is not available; retry",
                          headers={"Retry-After": "1"})
        return Response(status=202)

    @staticmethod
    def _refused(senders: SenderCheck, request: Request, events: list) -> Response | None:
        """401 or 403 (Knative's VerifyRequest), 503 when the issuer's keys are away."""
        try:
            senders.check(request.headers.get("Authorization"), events)
        except Unauthorized as error:
            return _error(401, "unauthorized", str(error), headers={"WWW-Authenticate": "Bearer"})
        except Forbidden as error:
            return _error(403, "forbidden", str(error))
        except TemporaryFailure as error:
            return _error(503, "unavailable", str(error), headers={"Retry-After": "1"})
        return None
