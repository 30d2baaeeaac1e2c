"""Errors split by what should happen next: a bad request is never retried, a temporary fault is."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where (`field`) and what (`message`)."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def error_body(code: str, message: str, problems: list[Problem] | None = None) -> dict:
    """The one error body of every KADES HTTP answer: `{"error": {code, message, details}}`."""
    return {"error": {"code": code, "message": message,
                      "details": [p.as_dict() for p in problems or []]}}


class KadesError(Exception):
    """Base of every error KADES raises on purpose."""


class BadRequestError(KadesError, ValueError):
    """The caller sent something we will never accept: answer 400, collect every problem."""

    code = "bad_request"

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])

    def as_body(self) -> dict:
        return error_body(self.code, self.message, self.problems)


class InvalidEventError(BadRequestError):
    """A CloudEvent (or its data) breaks the spec or the KADES contract."""

    code = "invalid_event"


class TemporaryFailure(KadesError, RuntimeError):
    """A dependency (Redis, the database, the broker) is away: answer 503 so the sender retries."""
