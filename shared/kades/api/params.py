"""Request reading: the body (size, JSON) and answers as JSON.
The checks the OpenAPI document states are kades.api.openapi.request_check's."""
from __future__ import annotations

from datetime import datetime, timedelta

import flask

from kades.errors import BadRequestError, Problem
from kades.events.catalogue import MAX_DATA_DEPTH
from kades.events.envelope import deeper_than, parse_json
from kades.runtime.endpoint import answer_leaves

MAX_BODY_BYTES = 64 * 1024
# The durations of the document's `timeframe` values (its enum is what callers may send).
TIMEFRAMES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


class PayloadTooLarge(BadRequestError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(BadRequestError):
    code = "unsupported_media_type"
    status = 415


def read_json(request: flask.Request):
    """The JSON body of a request, 413 when too large, 415 when sent as another media type,
    400 when not JSON (its schema checks the rest)."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body over {MAX_BODY_BYTES} bytes")
    raw = request.stream.read(MAX_BODY_BYTES + 1)  # bounded: a chunked body has no length
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body over {MAX_BODY_BYTES} bytes")
    if raw and not _json_media(request.mimetype):
        raise UnsupportedMediaType("send the body as application/json", [Problem(
            "Content-Type", f"{request.mimetype or 'none'}; this route takes application/json")])
    try:
        body = parse_json(raw or b"null")
    except ValueError as error:
        raise BadRequestError("body is not JSON", [Problem("body", str(error))]) from None
    if deeper_than(body, MAX_DATA_DEPTH):  # what is stored is held to the event contract's bound
        raise BadRequestError("body nested too deeply",
                              [Problem("body", f"nested deeper than {MAX_DATA_DEPTH} levels")])
    return body


def _json_media(mimetype: str) -> bool:
    """application/json, or a JSON structured syntax (RFC 6839: application/problem+json);
    not an absent type, which a CloudEvent's data may have (envelope.is_json_type)."""
    kind, _, subtype = mimetype.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def jsonable(value):
    """Datetimes as RFC 3339 (Z), in an answer's own values (endpoint.answer_leaves: stored
    JSON below holds none)."""
    return answer_leaves(value, _rfc3339)


def _rfc3339(value):
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
