"""CloudEvents 1.0 over HTTP: strict decoding and encoding in binary, structured and batch mode.

Strict because Knative's ingress is: an event the Python SDK would accept but the Broker
rejects must fail here, with every problem reported at once (not only the first).
Spec references: CloudEvents 1.0.2 core (§3.1 context attributes, §3.1.1 naming), HTTP
protocol binding (§3.1 binary, §3.2 structured, §3.3 batched), JSON format (§3.1 data).
Decoding takes 1.0 only unless told (`specversions`); the broker ingress and the functions
also take 0.3, as Knative's Broker does (its Go SDK reads both) and passes such an event on
unchanged.
"""
from __future__ import annotations

import base64
import json
import math
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

import orjson

from kades.errors import InvalidEventError, Problem
from kades.jsontext import orjson_may_misread

SPECVERSION = "1.0"
# What Knative's Broker ingress accepts (cloudevents/sdk-go v2 decodes 0.3 and 1.0).
BROKER_SPECVERSIONS = ("1.0", "0.3")
STRUCTURED_TYPE = "application/cloudevents+json"
BATCH_TYPE = "application/cloudevents-batch+json"
REQUIRED = ("specversion", "id", "source", "type")
OPTIONAL = ("datacontenttype", "dataschema", "subject", "time")
_EXTENSION_NAME = re.compile(r"^[a-z0-9]+$")  # core §3.1.1
# RFC 2045 token characters for media type and subtype; parameters separated by spaces and
# tabs only, quoted values without control characters, nothing after the end (`$` let a
# newline through): the value becomes a delivery's Content-Type header, and a CR or LF in it
# wrote header lines of the sender's into the request (Go's net/http refuses to send one).
_MEDIA_TYPE = re.compile(
    r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    r"([ \t]*;[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+=(\"[^\"\x00-\x1f\x7f]*\"|[!#$%&'*+.^_`|~0-9A-Za-z-]+))*"
    r"[ \t]*\Z")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass
class CloudEvent:
    """One event: context attributes (extensions as strings) and data.

    `data` is the decoded JSON value when the content type is JSON, raw bytes otherwise,
    None when the event has no data.
    """

    attributes: dict[str, str]
    data: Any = None
    _has_data: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self._has_data = self._has_data or self.data is not None

    def __getitem__(self, name: str) -> str:
        return self.attributes[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attributes.get(name, default)

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def source(self) -> str:
        return self.attributes["source"]

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def subject(self) -> str | None:
        return self.attributes.get("subject")

    @property
    def has_data(self) -> bool:
        return self._has_data


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # what CloudEvents Strings may not hold


def _finite(text: str) -> float:
    """A JSON number with a fraction or exponent, refused where no double holds it: 1e400
    read as inf was written on as Infinity (the broker's queue, a reply), which no JSON
    reader takes back, and the event was dead-lettered as unreadable, never replayed."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"a number beyond what a double holds: {text[:40]}")
    return value


# Nesting parse_json takes, on every path: decoding in C recursed out of Python's stack at a
# depth that depended on the caller's (the stdlib's json, ~900 under Flask), orjson stops at
# 1024, and what the caller does next (a walk, a write as JSON) recursed out of it too.
MAX_JSON_DEPTH = 512


# The most levels orjson reads (its recursion limit, 1024 in the versions locked). orjson
# reads a text inside _PADDING arrays: if it is deeper than MAX_JSON_DEPTH, orjson refuses it,
# with no walk of what it read (a 2,000-record block: 1.3 ms). tests/events/test_envelope.py
# fails when orjson reads deeper (the bound would not hold) or less deep (every text nested
# to the bound would go to the stdlib).
ORJSON_DEPTH = 1024
_PADDING = ORJSON_DEPTH - MAX_JSON_DEPTH


def parse_json(raw: bytes | str):
    """Strict JSON (RFC 8259), which Python's json module is not: UTF-8 only, no NaN or
    Infinity, no number beyond a double (1e400), no lone surrogates (they could not be
    encoded again), nesting to MAX_JSON_DEPTH. Every refusal is a ValueError.

    Bytes are read by orjson, which refuses all of these itself, at a quarter of the stdlib's
    time (a 500-tick event: 0.11 ms against 0.48, docs/performance.md), unless they may hold a
    number orjson reads otherwise: an int past 64 bits, read as a float, or more digits than
    it reads (kades.jsontext.orjson_may_misread). What it refuses the stdlib reads again: it
    names the problem, or reads what orjson does not (such an int)."""
    if isinstance(raw, (bytes, bytearray)) and not orjson_may_misread(raw):
        value = _orjson_within_depth(raw)
        if value is not _UNREAD:
            return value
    text = bytes(raw).decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    try:
        value = json.loads(text, parse_constant=_no_constants, parse_float=_finite)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text):  # a pair is one character after parsing; a lone one is not
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a \\u escape names a lone UTF-16 surrogate") from None
    if deeper_than(value, MAX_JSON_DEPTH):
        raise ValueError("JSON nested too deeply")
    return value


_UNREAD = object()


def _orjson_within_depth(raw: bytes | bytearray):
    """orjson's reading of `raw` inside _PADDING arrays, those arrays taken off again; _UNREAD
    when orjson refuses it, or when the arrays are not each one of one item (a text such as
    `1],[2` would close them and open others: it is no JSON, and the stdlib says why)."""
    try:
        value = orjson.loads(b"[" * _PADDING + raw + b"]" * _PADDING)
    except orjson.JSONDecodeError:
        return _UNREAD
    for _ in range(_PADDING):
        if type(value) is not list or len(value) != 1:
            return _UNREAD
        value = value[0]
    return value


def deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays in `value` nest more than `limit` levels ({} or [] is one).
    A loop, not recursion: what it is asked about may be as deep as decoding allowed. It
    holds one iterator a level, not every container met: a 16 MiB array of 5.6 million `{}`
    made a stack of 5.6 million entries, 300 MB more in the function for one request."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return False
    if limit < 1:
        return True
    stack = [iter(value.values() if kind is dict else value)]
    while stack:
        for child in stack[-1]:
            kind = type(child)
            if kind is dict or kind is list:
                if len(stack) >= limit:  # the child is at level len(stack) + 1
                    return True
                stack.append(iter(child.values() if kind is dict else child))
                break
        else:
            stack.pop()
    return False


def holds_nul(value: Any) -> bool:
    """Whether a string in `value` (keys too) holds U+0000, which PostgreSQL's text and jsonb
    cannot store. Not a decoding error: Knative passes such events on, and the dead-letter
    sink keeps them; the functions that store what they read refuse them (check_consumable)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(holds_nul(v) for v in value)


def control_problems(attrs: Mapping[str, Any]) -> list[Problem]:
    """Attributes holding a control character, which a CloudEvents String may not (type
    system). Knative's ingress passes them; the functions refuse them (check_consumable)."""
    return [Problem(name, "holds a control character, which a CloudEvents String may not "
                          "(type system)")
            for name, value in attrs.items() if isinstance(value, str) and _CONTROL.search(value)]


def is_json_type(content_type: str | None) -> bool:
    """JSON format §3.1: absent, application/json, text/json or any */*+json is JSON."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


# --- validation ---------------------------------------------------------------------------

def attribute_problems(attrs: Mapping[str, Any], prefix: str = "", *,
                       specversions: tuple[str, ...] = (SPECVERSION,)) -> list[Problem]:
    """Every way these context attributes break CloudEvents 1.0 (empty list when valid).

    0.3 (when in `specversions`) names two attributes otherwise: `schemaurl` for `dataschema`
    and `datacontentencoding`; both are valid extension names, so they pass as such."""
    problems: list[Problem] = []

    def bad(name: str, message: str) -> None:
        problems.append(Problem(prefix + name, message))

    version = attrs.get("specversion")
    if version is None:
        bad("specversion", "required attribute is missing")
    elif version not in specversions:
        accepted = " or ".join(repr(v) for v in specversions)
        bad("specversion", f"unsupported specversion {version!r}; only {accepted} is accepted")
    for name in ("id", "source", "type"):
        value = attrs.get(name)
        if value is None:
            bad(name, "required attribute is missing")
        elif not isinstance(value, str) or not value.strip():  # sdk-go trims id and type
            bad(name, "must be a non-empty string (not only white space)")
    source = attrs.get("source")
    if isinstance(source, str) and source and any(c.isspace() for c in source):
        bad("source", "must be a URI-reference (no white space)")
    content_type = attrs.get("datacontenttype")
    if content_type is not None and (not isinstance(content_type, str)
                                     or not _MEDIA_TYPE.match(content_type)):
        bad("datacontenttype", f"not an RFC 2046 media type: {content_type!r}")
    schema = attrs.get("dataschema")
    if schema is not None and (not isinstance(schema, str) or not _URI_SCHEME.match(schema)):
        bad("dataschema", "must be an absolute URI")
    subject = attrs.get("subject")
    if subject is not None and (not isinstance(subject, str) or not subject.strip()):
        bad("subject", "must be a non-empty string when present (not only white space)")
    time = attrs.get("time")
    if time is not None and not _valid_time(time):
        bad("time", f"not an RFC 3339 timestamp: {time!r}")
    for name, value in attrs.items():
        if name in REQUIRED or name in OPTIONAL:
            continue
        if not _EXTENSION_NAME.match(name):
            bad(name, "extension names use only lower-case letters a-z and digits 0-9")
        elif value is None or isinstance(value, (dict, list, float)):
            bad(name, "extension values are strings, integers or booleans")
        elif isinstance(value, int) and not isinstance(value, bool) and not -2**31 <= value < 2**31:
            bad(name, "integer extension values are signed 32-bit (core §3.1.2)")
    return problems


def _valid_time(value: Any) -> bool:
    if not isinstance(value, str) or not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T").replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- decoding -----------------------------------------------------------------------------

def decode(headers: Mapping[str, str], body: bytes, *,
           specversions: tuple[str, ...] = (SPECVERSION,), raw_data: bool = False
           ) -> list[CloudEvent]:
    """Decode an HTTP request into events, whatever its mode; raise InvalidEventError.

    Binary and structured mode give one event, batch mode a list (possibly empty).
    `raw_data`: data that came as bytes (binary mode's body, `data_base64`) stays the bytes
    that came, whatever its content type: a Broker passes data on unread (the development
    broker's ingress, deliveries and replies).
    """
    media = _media_type(headers.get("content-type") or headers.get("Content-Type") or "")
    if media == STRUCTURED_TYPE:
        return [from_structured(_parse_json_body(body), specversions=specversions,
                                raw_data=raw_data)]
    if media == BATCH_TYPE:
        return from_batch(_parse_json_body(body), specversions=specversions)
    return [from_binary(headers, body, specversions=specversions, raw_data=raw_data)]


def _parse_json_body(body: bytes) -> Any:
    try:
        return parse_json(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidEventError("body is not valid JSON",
                                [Problem("body", f"invalid JSON: {error}")]) from None


def _utf8(value: str) -> str:
    """A header value as its sender wrote it: servers give header bytes as latin-1 (PEP 3333,
    kades.broker.http1), so UTF-8 sent as it is, not percent-encoded, read "/sé" as "/sÃ©"
    (a source, and with it the event's identity, changed). Go's HTTP keeps a header's bytes
    as they came, so Knative's ingress has them as UTF-8; so does this. UnicodeError when
    they are not UTF-8."""
    return value if value.isascii() else value.encode("latin-1").decode("utf-8")


def from_binary(headers: Mapping[str, str], body: bytes, *,
                specversions: tuple[str, ...] = (SPECVERSION,), raw_data: bool = False
                ) -> CloudEvent:
    """HTTP binding §3.1: attributes in `ce-` headers, data is the body."""
    attrs: dict[str, Any] = {}
    problems: list[Problem] = []
    unreadable: set[str] = set()  # named once: not also "missing"
    for raw_name, raw_value in headers.items():
        name = raw_name.lower()
        if not name.startswith("ce-"):
            continue
        attr = name[3:]
        try:  # §3.1.3.2: values are percent-encoded
            attrs[attr] = urllib.parse.unquote(_utf8(raw_value), errors="strict")
        except UnicodeError:
            problems.append(Problem(attr, "header value is not percent-encoded UTF-8"))
            unreadable.add(attr)
    content_type = headers.get("content-type") or headers.get("Content-Type")
    if "specversion" not in attrs and not problems:
        raise InvalidEventError("not a CloudEvent", [Problem(
            "ce-specversion", "missing: send binary mode (ce-* headers) or a "
            f"structured ({STRUCTURED_TYPE}) or batch ({BATCH_TYPE}) body")])
    if "datacontenttype" in attrs:
        problems.append(Problem("datacontenttype", "binary mode carries it in Content-Type, "
                                                   "not in a ce- header"))
    if content_type:
        attrs["datacontenttype"] = content_type
    problems.extend(p for p in attribute_problems(attrs, specversions=specversions)
                    if p.field not in unreadable)
    data: Any = None
    if body:
        if is_json_type(content_type) and not raw_data:
            try:
                data = parse_json(body)
            except (UnicodeDecodeError, ValueError) as error:
                problems.append(Problem("data", f"Content-Type is JSON but the body is not: {error}"))
        else:
            data = bytes(body)
    event = CloudEvent({k: _as_string(v) for k, v in attrs.items()}, data, _has_data=bool(body))
    if problems:
        raise InvalidEventError("invalid CloudEvent", problems, read=event)
    return event


def from_structured(document: Any, prefix: str = "", *,
                    specversions: tuple[str, ...] = (SPECVERSION,), raw_data: bool = False
                    ) -> CloudEvent:
    """JSON format §3: one JSON object with attributes, `data` or `data_base64`."""
    if not isinstance(document, dict):  # ("[2]", not "[2].": the item itself)
        raise InvalidEventError("invalid CloudEvent", [Problem(
            prefix.rstrip(".") or "body", "a structured event is a JSON object")])
    # JSON format §2.3 (v1.0.2): an attribute whose value is null is unset.
    attrs = {k: v for k, v in document.items()
             if k not in ("data", "data_base64") and v is not None}
    problems = attribute_problems(attrs, prefix, specversions=specversions)
    has_data = "data" in document
    data = document.get("data")
    if (attrs.get("specversion") == "0.3" and "data" in document
            and attrs.get("datacontentencoding") == "base64"):
        # 0.3's way of carrying bytes in JSON: kept as the bytes (delivered as the raw body
        # in binary mode, as data_base64 when stored), so the encoding attribute goes.
        attrs.pop("datacontentencoding")
        document = {**document, "data_base64": data}
        document.pop("data", None)
        has_data, data = False, None
    if "data_base64" in document:
        if has_data:
            problems.append(Problem(prefix + "data_base64", "'data' and 'data_base64' are exclusive"))
        else:
            try:
                data = base64.b64decode(document["data_base64"], validate=True)
                has_data = True
            except (TypeError, ValueError):
                problems.append(Problem(prefix + "data_base64", "not valid base64"))
            content_type = attrs.get("datacontenttype")
            if (has_data and isinstance(data, bytes) and not raw_data
                    and (content_type is None or isinstance(content_type, str))
                    and is_json_type(content_type)):
                try:
                    data = parse_json(data)
                except (UnicodeDecodeError, ValueError) as error:
                    problems.append(Problem(prefix + "data_base64", f"JSON content type but not JSON: {error}"))
    event = CloudEvent({k: _as_string(v) for k, v in attrs.items()}, data, _has_data=has_data)
    if problems:
        raise InvalidEventError("invalid CloudEvent", problems, read=event)
    return event


def from_batch(document: Any, *,
               specversions: tuple[str, ...] = (SPECVERSION,)) -> list[CloudEvent]:
    """HTTP binding §3.3: a JSON array of structured events; every problem of every item."""
    if not isinstance(document, list):
        raise InvalidEventError("invalid batch", [Problem("body", "a batch is a JSON array")])
    events, problems, items = [], [], []
    for index, item in enumerate(document):
        prefix = f"[{index}]."
        try:
            events.append(from_structured(item, prefix=prefix, specversions=specversions))
            items.append((prefix, events[-1]))
        except InvalidEventError as error:
            problems.extend(error.problems)
            if error.read is not None:
                items.append((prefix, error.read))
    if problems:  # the items read are given too: their data's problems named in the answer
        raise InvalidEventError("invalid CloudEvent batch", problems, items=tuple(items))
    return events


# --- encoding -----------------------------------------------------------------------------

def _data_bytes(event: CloudEvent) -> bytes:
    if not event.has_data:
        return b""
    if isinstance(event.data, (bytes, bytearray)):
        return bytes(event.data)
    return json.dumps(event.data, separators=(",", ":"), ensure_ascii=False).encode()


def to_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """HTTP headers and body of the event in binary mode (how Knative delivers)."""
    headers = {}
    for name, value in event.attributes.items():
        if name == "datacontenttype":
            continue
        # HTTP binding §3.1.3.2: printable ASCII as it is, but space, '"' and '%' encoded (a
        # leading or trailing space was lost: HTTP trims header values, and httpx refused one)
        headers[f"ce-{name}"] = urllib.parse.quote(value, safe="!#$&'()*+,/:;=?@[]^_`{|}~-.")
    content_type = event.attributes.get("datacontenttype")
    if event.has_data:
        headers["content-type"] = content_type or "application/json"
    elif content_type is not None and _media_type(content_type) not in (STRUCTURED_TYPE, BATCH_TYPE):
        # as sdk-go writes it, with or without data; not one naming structured mode, which
        # would have its empty body read as a structured event (no JSON)
        headers["content-type"] = content_type
    return headers, _data_bytes(event)


def _media_type(content_type: str) -> str:
    """A Content-Type's media type, without parameters, in lower case: what selects the mode."""
    return content_type.split(";", 1)[0].strip().lower()


def to_dict(event: CloudEvent) -> dict[str, Any]:
    """The event as a structured-mode JSON object."""
    document: dict[str, Any] = dict(event.attributes)
    if event.has_data:
        if isinstance(event.data, (bytes, bytearray)):
            document["data_base64"] = base64.b64encode(event.data).decode()
        else:
            document["data"] = event.data
    return document


def to_structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """The event in structured mode. JSON data that a Broker kept as the bytes it came as
    (`decode(raw_data=True)`) is embedded as they are, as `data`, where it is JSON, as
    Knative's SDK writes it; other bytes go as `data_base64`."""
    document = to_dict(event)
    raw = event.data if isinstance(event.data, (bytes, bytearray)) else None
    if raw is not None and is_json_type(event.attributes.get("datacontenttype")) and _is_json(raw):
        del document["data_base64"]
        head = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        return ({"content-type": f"{STRUCTURED_TYPE}; charset=utf-8"},
                head[:-1] + b',"data":' + bytes(raw) + b"}")
    return ({"content-type": f"{STRUCTURED_TYPE}; charset=utf-8"},
            json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())


def _is_json(raw: bytes) -> bool:
    try:
        parse_json(raw)
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def to_batch(events: list[CloudEvent]) -> tuple[dict[str, str], bytes]:
    return ({"content-type": f"{BATCH_TYPE}; charset=utf-8"},
            json.dumps([to_dict(e) for e in events], separators=(",", ":"),
                       ensure_ascii=False).encode())
