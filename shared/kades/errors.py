"""Errors split by what should happen next: a bad request is never retried, a temporary fault is."""
from __future__ import annotations

from dataclasses import dataclass

# RFC 9457 §3: the media type of a problem details object.
PROBLEM_JSON = "application/problem+json"
# Problem types are URNs (RFC 9457 §3.1.1 allows any URI; a URN never pretends to resolve).
PROBLEM_TYPE = "urn:kades:problem:{code}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where (`field`) and what (`message`)."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def error_body(code: str, message: str, problems: list[Problem] | None = None, *,
               status: int | None = None, instance: str | None = None) -> dict:
    """The one error body of every KADES HTTP answer: an RFC 9457 problem details object
    (`type`, `title`, `status`, `detail`, `instance`, and the extension `errors` listing every
    problem), which also carries v1's `{"error": {code, message, details}}` for its clients."""
    listed = [p.as_dict() for p in problems or []]
    # The title names the type (the same for every occurrence, §3.1.3); `detail` this one.
    body: dict = {"type": PROBLEM_TYPE.format(code=code),
                  "title": code.replace("_", " ").capitalize(), "detail": message}
    if status is not None:
        body["status"] = status
    if instance is not None:
        body["instance"] = instance
    body["errors"] = listed
    body["error"] = {"code": code, "message": message, "details": listed}
    return body


class KadesError(Exception):
    """Base of every error KADES raises on purpose."""


class BadRequestError(KadesError, ValueError):
    """The caller sent something we will never accept: answer 400, collect every problem."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])

    def as_body(self) -> dict:
        return error_body(self.code, self.message, self.problems, status=self.status)


class InvalidEventError(BadRequestError):
    """A CloudEvent (or its data) breaks the spec or the KADES contract. `read`: what could be
    read of an event whose attributes are wrong (its attributes as strings and its data), so
    that its data's problems are named in the same answer (kades.runtime.endpoint); for a
    batch, `items`: (prefix, event) of every item that could be read, valid or not."""

    code = "invalid_event"

    def __init__(self, message: str, problems: list[Problem] | None = None, *, read=None,
                 items: tuple = ()):
        super().__init__(message, problems)
        self.read, self.items = read, items


class TemporaryFailure(KadesError, RuntimeError):
    """A dependency (Redis, the database, the broker) is away: answer 503 so the sender retries."""
