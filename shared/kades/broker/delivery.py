"""One delivery attempt over HTTP and what its response means, as Knative reads it.

Sources (knative/eventing): `pkg/kncloudevents/event_dispatcher.go` (a network error is
recorded as code 500 with body "dispatch error: ..."; the dead-letter sink gets
`knativeerrordest`, `knativeerrorcode` and `knativeerrordata` = base64 of the response body
cut to 1024 characters), `pkg/kncloudevents/retries.go` (retry on network errors, 5xx,
404, 408, 409, 429; never on other 4xx), `pkg/broker/filter/filter_handler.go` (delivery
in binary mode with `Prefer: reply`, without `knativebrokerttl`, unless the Trigger's
`delivery.format` is json: structured mode, to the dead-letter sink too; a 2xx with a
non-empty body that is not a CloudEvent is a failure reported as 502).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

from kades.broker.transport import POOL, Response
from kades.errors import InvalidEventError
from kades.events.envelope import (
    BATCH_TYPE, BROKER_SPECVERSIONS, STRUCTURED_TYPE, CloudEvent, decode, to_binary,
    to_structured)

ERROR_DATA_MAX_CHARS = 1024  # knativeerrordata, after base64
RETRYABLE_4XX = (404, 408, 409, 429)
NETWORK_ERROR_CODE = 500


@dataclass(frozen=True)
class Outcome:
    """`done` (2xx, empty), `reply` (2xx with an event), `refused` (2xx with an event the
    ingress refuses: dead-lettered at once, the ingress its destination), `retry` or `fail`
    (no retry)."""

    kind: str
    code: int
    body: bytes = b""
    reply: CloudEvent | None = None

    @property
    def failed(self) -> bool:
        return self.kind in ("retry", "fail", "refused")


def post(url: str, headers: dict[str, str], body: bytes, *, timeout_s: float | None) -> Response:
    """POST on the process's pool of kept-alive connections (`transport`, as Knative's
    dispatcher keeps them) and read the whole answer; raise OSError (incl. timeouts) on
    network errors. `timeout_s` None: wait as long as it takes (Knative without a delivery
    timeout)."""
    return POOL.post(url, headers, body, timeout_s=timeout_s)


def send(url: str, event: CloudEvent, *, timeout_s: float | None, prefer_reply: bool,
         token: str | None = None, structured: bool = False) -> Outcome:
    """Deliver `event` in binary mode (`structured`: in structured mode, a delivery.format of
    json) and classify the result. `token`: the sender identity Knative's dispatcher adds with
    authentication-oidc (`Authorization: Bearer`, for the subscriber's audience;
    kades.broker.tokens)."""
    headers, body = request_of(event, prefer_reply=prefer_reply, token=token,
                               structured=structured)
    try:
        response = post(url, headers, body, timeout_s=timeout_s)
    except OSError as error:
        return outcome_of(error, expect_reply=prefer_reply)
    return outcome_of(response, expect_reply=prefer_reply)


def request_of(event: CloudEvent, *, prefer_reply: bool, token: str | None = None,
               structured: bool = False) -> tuple[dict[str, str], bytes]:
    """The headers and body `send` posts."""
    headers, body = to_structured(event) if structured else to_binary(event)
    if prefer_reply:
        headers["prefer"] = "reply"
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers, body


def outcome_of(answer: Response | OSError, *, expect_reply: bool) -> Outcome:
    """What an answer means; a network error (OSError, timeouts included) is retried as
    Knative's dispatcher records it: code 500, "dispatch error: ..."."""
    if isinstance(answer, OSError):
        return Outcome("retry", NETWORK_ERROR_CODE, f"dispatch error: {answer}".encode())
    return classify(answer, expect_reply=expect_reply)


def classify(response: Response, *, expect_reply: bool = True) -> Outcome:
    status = response.status
    if not 200 <= status < 300:
        retry = status >= 500 or status in RETRYABLE_4XX
        return Outcome("retry" if retry else "fail", status, response.body)
    if not expect_reply:
        return Outcome("done", status)
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    looks_like_event = "ce-specversion" in response.headers or media in (STRUCTURED_TYPE, BATCH_TYPE)
    if not looks_like_event:
        if response.body:
            return Outcome("retry", 502, response.body)  # not a CloudEvent: broken reply
        return Outcome("done", status)
    try:
        events = decode(response.headers, response.body, specversions=BROKER_SPECVERSIONS,
                        raw_data=True)
    except InvalidEventError as error:
        if error.read is not None:  # read as an event, as Knative's filter reads it, and
            # sent on to the ingress, whose 400 is not retried (an unreadable reply is a 502)
            return Outcome("refused", 400, f"invalid reply event: {error.problems}".encode())
        return Outcome("retry", 502, f"invalid reply event: {error.problems}".encode())
    if media == BATCH_TYPE or len(events) != 1:  # Knative's filter cannot read one either
        return Outcome("retry", 502, b"a reply is one event, not a batch")
    return Outcome("reply", status, reply=events[0])


def error_extensions(dest: str, code: int, body: bytes) -> dict[str, str]:
    """The three extensions Knative adds to an event it dead-letters."""
    return {"knativeerrordest": dest, "knativeerrorcode": str(code),
            "knativeerrordata": base64.b64encode(body).decode()[:ERROR_DATA_MAX_CHARS]}
