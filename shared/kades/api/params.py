"""Request parsing: every problem of a request is collected and reported at once (400)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import flask

from kades.errors import BadRequestError, Problem
from kades.events.envelope import parse_json
from kades.storage.repository import decode_cursor

MAX_BODY_BYTES = 64 * 1024
TIMEFRAMES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
# Solana addresses: base58 (no 0, O, I, l), 32 to 44 characters.
_ADDRESS = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")


class PayloadTooLarge(BadRequestError):
    code = "payload_too_large"


def address_problem(name: str, value) -> Problem | None:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        return Problem(name, "not a Solana address (base58, 32 to 44 characters)")
    return None


def unknown_params(args, known: set[str]) -> list[Problem]:
    return [Problem(name, "unknown query parameter") for name in args if name not in known]


def parse_time(name: str, raw: str | None, problems: list[Problem]) -> datetime | None:
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


def parse_number(name: str, raw: str | None, kind: type, low: float, high: float,
                 problems: list[Problem]):
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError:
        problems.append(Problem(name, f"not a{'n integer' if kind is int else ' number'}: {raw!r}"))
        return None
    if value != value or not low <= value <= high:  # NaN compares false to everything
        problems.append(Problem(name, f"must be between {low} and {high}"))
        return None
    return value


def parse_cursor(raw: str | None, problems: list[Problem]) -> str | None:
    """A page cursor as this API gave it out (`next_cursor`), checked."""
    if raw is None:
        return None
    try:
        decode_cursor(raw)
    except ValueError:
        problems.append(Problem("cursor", "not a next_cursor this API gave out"))
        return None
    return raw


def parse_timeframe(raw: str | None, problems: list[Problem], default: str = "24h") -> str:
    """The timeframe asked for, `default` when none was; an empty one is a problem."""
    value = default if raw is None else raw
    if value not in TIMEFRAMES:
        problems.append(Problem("timeframe", f"one of {', '.join(TIMEFRAMES)}"))
        return default
    return value


def read_json_object(request: flask.Request) -> dict:
    """The JSON object body of a request; 413 when too large, 400 when not an object."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body over {MAX_BODY_BYTES} bytes")
    raw = request.stream.read(MAX_BODY_BYTES + 1)  # bounded: a chunked body has no length
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body over {MAX_BODY_BYTES} bytes")
    try:
        body = parse_json(raw or b"null")
    except ValueError as error:
        raise BadRequestError("body is not JSON", [Problem("body", str(error))]) from None
    if not isinstance(body, dict):
        raise BadRequestError("body must be a JSON object", [Problem("body", "not an object")])
    return body


def jsonable(value):
    """Datetimes as RFC 3339 (Z), recursively."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
