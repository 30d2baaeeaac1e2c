"""Send events to the sink (the Broker ingress, as Knative's SinkBinding injects K_SINK).

With a token file (KADES_SINK_TOKEN_FILE) every event carries `Authorization: Bearer` with
the token for the Broker's audience, as the Broker's EventPolicy requires once Knative's
authentication-oidc is on (kades.runtime.tokenfile). Events sent while handling a request
carry its W3C trace context (`traceparent`, `tracestate`), as Knative's Broker sends it, so a
trace goes on through the events a function emits (`trace_context`)."""
from __future__ import annotations

import contextvars
import re
from typing import Mapping

import httpx

from kades import clients
from kades.errors import TemporaryFailure
from kades.events.chunking import check_sizes
from kades.events.envelope import CloudEvent, to_binary
from kades.runtime import faults, tokenfile
from kades.settings import settings


# W3C Trace Context: version-traceid-parentid-flags, lowercase hex; tracestate bounded.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_MAX_TRACESTATE = 512
trace_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
    "trace_context", default={})


def trace_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request's trace context to pass on: a well-formed `traceparent` (and its
    `tracestate`), else nothing (a malformed one would break the next hop's trace).

    >>> parent = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    >>> trace_headers({"traceparent": parent, "tracestate": "k=v"}) == {
    ...     "traceparent": parent, "tracestate": "k=v"}
    True
    >>> trace_headers({"traceparent": "nonsense", "tracestate": "k=v"})
    {}
    """
    parent = (headers.get("traceparent") or "").strip()
    if not _TRACEPARENT.fullmatch(parent):
        return {}
    state = (headers.get("tracestate") or "").strip()
    return {"traceparent": parent,
            **({"tracestate": state} if state and len(state) <= _MAX_TRACESTATE else {})}


# What a sink answers about the event itself, which no retry changes: invalid (400), too
# large (413), a media type it does not take (415, 422). Another 4xx is about the sender or
# the sink: a 404 (the Broker not made yet, or made again), a 401 or 403 (a token or an
# EventPolicy to put right), a 409 (Knative's own dispatcher retries 404 and 409).
REFUSES_THE_EVENT = frozenset({400, 413, 415, 422})


class SinkRefused(TemporaryFailure):
    """The sink answered and refused the event (a 4xx other than 408 and 429): to a function
    as temporary as any failure (its Broker retries, then dead-letters), but to a command
    line the sink's verdict, not the sink away; `about_the_event` when no sending of the
    same event could ever change it (REFUSES_THE_EVENT)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status
        self.about_the_event = status in REFUSES_THE_EVENT


def send(events: list[CloudEvent], sink_url: str, *, token_file: str | None = None) -> None:
    """POST each event in binary mode; any failure is temporary (the caller answers 503).
    `token_file`: the sender's token for the Broker (None: KADES_SINK_TOKEN_FILE; "": none)."""
    check_sizes(events)  # over the limit: refused (EventTooLarge, logged) before any is sent
    faults.point("before_sink")  # tests only (KADES_FAULT_POINTS): a step of the handler
    client = clients.http_client()
    token_file = settings().sink_token_file if token_file is None else token_file
    for event in events:
        headers, body = to_binary(event)
        headers.update(tokenfile.authorization(token_file))  # per event: the file rotates
        headers.update(trace_context.get())
        try:
            response = client.post(sink_url, headers=headers, content=body)
        except httpx.HTTPError as error:
            raise TemporaryFailure(f"sink {sink_url} unreachable: {error}") from error
        if response.status_code >= 300:
            status = response.status_code
            said = f"sink {sink_url} answered {status} to event {event.id!r}: {response.text[:200]}"
            if 400 <= status < 500 and status not in (408, 429):
                raise SinkRefused(said, status)
            raise TemporaryFailure(said)
    faults.point("after_sink")
