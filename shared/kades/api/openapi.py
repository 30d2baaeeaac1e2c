"""The OpenAPI 3.1 document of the API: written once (openapi.yaml beside this module),
served as JSON at /v1/openapi.json, the only source of the request checks (`request_check`)
and checked against the real responses by the tests."""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import fastjsonschema
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from kades.ecmapattern import with_ecma_patterns
from kades.errors import BadRequestError, Problem
from kades.storage.repository import decode_cursor

DOCUMENT = Path(__file__).with_name("openapi.yaml")


@functools.cache
def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


@functools.cache
def document_json() -> bytes:
    return json.dumps(document()).encode()


# RFC 3339's date-time (section 5.6), its "T" and "Z" in either case: fromisoformat alone took
# ISO 8601's other forms too (2026-W01-1T00:00Z, 20260101T000000Z, a space for the T,
# an offset with seconds)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def is_rfc3339(value: object) -> bool:
    """`format: date-time` (RFC 3339): a time with its time zone."""
    if not isinstance(value, str):
        return True  # formats apply to strings only (JSON Schema 2020-12 §7.1)
    if not _RFC3339.fullmatch(value):
        return False
    try:
        parse_rfc3339(value)
    except ValueError:  # a 13th month, a 25th hour
        return False
    return True


def parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))


def is_cursor(value: object) -> bool:
    """`format: cursor`: a `next_cursor` this API gave out."""
    try:
        decode_cursor(value) if isinstance(value, str) else None
    except ValueError:
        return False
    return True


# The formats the document's request schemas use, alike for both validators below, and what
# a value that breaks one is told. `uri` is not checked here: its pattern and the webhook
# route (a host, a public one) check a URL.
FORMATS = {"date-time": is_rfc3339, "cursor": is_cursor, "uri": lambda value: True}
FORMAT_PROBLEMS = {"date-time": "not an RFC 3339 time with a time zone (e.g. 2026-01-01T00:00:00Z)",
                   "cursor": "not a next_cursor this API gave out"}
_CHECKER = FormatChecker(formats=())
for _name, _check in FORMATS.items():
    _CHECKER.checks(_name)(_check)
# its `pattern`s read as fastjsonschema reads them (kades.ecmapattern)
_FullValidator = with_ecma_patterns(Draft202012Validator)


@dataclass(frozen=True)
class Checked:
    """A request that passed its operation's checks: path and query values as their schema
    types, with the document's defaults, and the JSON body."""

    path: dict[str, Any]
    query: dict[str, Any]
    body: Any = None


def _resolve(node: Any) -> Any:
    """The node with every local `$ref` (#/components/...) replaced by what it points at."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = document()
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(target)
        return {key: _resolve(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(value) for value in node]
    return node


def _object(parameters: list[dict], *, closed: bool) -> dict:
    return {"type": "object", "additionalProperties": not closed,
            "properties": {p["name"]: p.get("schema", {}) for p in parameters},
            "required": [p["name"] for p in parameters if p.get("required")]}


def _coerce(raw: str, schema: dict) -> Any:
    """A query string as its schema's type; left a string when it is not one (the schema then
    names the problem)."""
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    # ASCII digits as written: int() and float() also read other scripts' digits, white
    # space and underscores ("1_0" was refused as 10.0, a value the caller never sent)
    if "integer" in kinds and _INTEGER.fullmatch(raw) and len(raw) <= _MAX_DIGITS:
        return int(raw)
    if "number" in kinds and _NUMBER.fullmatch(raw) and math.isfinite(number := float(raw)):
        return number
    return raw


_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_DIGITS = 4000  # int() refuses past 4,300 digits (a ValueError); the schema then names it
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def with_defaults(schema: dict, value: Any) -> Any:
    """`value` with the `default` of every absent property the schema gives one, recursively."""
    if not isinstance(value, dict):
        return value
    filled = dict(value)
    for name, sub in schema.get("properties", {}).items():
        if name not in filled and "default" in sub:
            filled[name] = sub["default"]
        if name in filled:
            filled[name] = with_defaults(sub, filled[name])
    return filled


class RequestCheck:
    """The checks of one operation, compiled once from the document: path, query (no other
    parameter) and body. Valid requests take the compiled fast path (fastjsonschema); an
    invalid one is looked at again by jsonschema, which names every problem."""

    def __init__(self, operation: dict):
        operation = _resolve(operation)
        parameters = operation.get("parameters", [])
        body = operation.get("requestBody")
        self.schema = {
            "type": "object",
            "properties": {
                "path": _object([p for p in parameters if p["in"] == "path"], closed=False),
                "query": _object([p for p in parameters if p["in"] == "query"], closed=True)}}
        self.has_body = body is not None
        if body is not None:
            self.schema["properties"]["body"] = body["content"]["application/json"]["schema"]
        self.query_schemas = self.schema["properties"]["query"]["properties"]
        self._fast = fastjsonschema.compile(self.schema, formats=FORMATS, use_default=False)
        self._full = _FullValidator(self.schema, format_checker=_CHECKER)

    def __call__(self, path: dict[str, str], args, body: Any = None,
                 more: Callable[[dict], list[Problem]] | None = None) -> Checked:
        """The request checked; `more`: the route's checks the document cannot state, given
        the request as sent (its values perhaps of the wrong type), whose problems are listed
        with the document's."""
        query = {name: _coerce(args.get(name), self.query_schemas.get(name, {})) for name in args}
        request = {"path": path, "query": query, **({"body": body} if self.has_body else {})}
        problems = [Problem(name, "given more than once") for name in args
                    if len(args.getlist(name)) > 1]
        try:
            self._fast(request)
        except fastjsonschema.JsonSchemaValueException:
            problems += self.problems(request) or [
                Problem("request", "does not match the OpenAPI document")]
        problems += more(request) if more is not None else []
        if problems:
            unique = dict.fromkeys(problems)  # one problem once, in the order found
            raise BadRequestError("invalid request", sorted(unique, key=lambda p: p.field))
        props = self.schema["properties"]
        return Checked(path=path, query=with_defaults(props["query"], query),
                       body=with_defaults(props.get("body", {}), body))

    def problems(self, request: dict) -> list[Problem]:
        found = []
        for error in self._full.iter_errors(request):
            where, *inside = error.absolute_path
            unknown = "unknown query parameter" if where == "query" else "unknown field"
            if error.validator == "additionalProperties":
                known = error.schema.get("properties", {})
                found += [Problem(_field(inside, name), unknown)
                          for name in error.instance if name not in known]
            elif error.validator == "required":
                found += [Problem(_field(inside, name), "required")
                          for name in error.validator_value if name not in error.instance]
            else:
                message = (FORMAT_PROBLEMS.get(error.validator_value, error.message)
                           if error.validator == "format" else error.message)
                found.append(Problem(_field(inside) or where, message))
        return found


def _field(inside: list, name: str | None = None) -> str:
    """`tracking_parameters.alert_threshold`, `metrics[0]`: where in the path, query or body."""
    parts = [*inside, name] if name is not None else inside
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return text.lstrip(".")


@functools.cache
def request_check(method: str, template: str) -> RequestCheck:
    """The compiled checks of the operation `method template` (e.g. "get", "/v1/alerts")."""
    return RequestCheck(document()["paths"][template][method.lower()])
