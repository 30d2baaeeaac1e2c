"""Trigger filters as Knative evaluates them; they look at context attributes, never at data.

Two forms (knative/eventing `pkg/eventfilter`):
- `spec.filter.attributes`: every listed attribute must exist and equal the value exactly
  (case-sensitive); the value "" means "present with any non-empty value". An empty map
  matches everything.
- `spec.filters` (the Subscriptions API): a list that must all pass; each entry has one
  dialect: `exact`, `prefix`, `suffix` (attribute -> value), `all` / `any` (nested lists),
  `not` (one nested entry). When `filters` is non-empty it wins over `filter`.

A filter yields PASS, FAIL or NONE (nothing to decide, e.g. an empty list); only FAIL
keeps the event from the subscriber. `not` turns PASS into FAIL and back, leaves NONE.
"""
from __future__ import annotations

import enum
import re
from typing import Callable, Mapping

# Knative's LookupAttribute (pkg/eventfilter/attributes): these always exist, as "" when
# unset; extensions only when present. Some are derived (lookup): `time` as Go writes it,
# `datamediatype` (the content type without its parameters), `schemaurl` (v0.3's dataschema),
# `datacontentencoding` (v0.3's only). Left to the extensions, a `not` of one was delivered.
_CORE = ("specversion", "id", "source", "type", "subject", "datacontenttype",
         "datacontentencoding")
# RFC 3339 as the event's `time` holds it: date and time, fraction, offset
_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$")
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")
_DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")


class Result(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    NONE = "none"


Filter = Callable[[Mapping[str, str]], Result]


def lookup(attributes: Mapping[str, str], name: str) -> str | None:
    if name in _CORE:
        return attributes.get(name, "")
    if name == "time":
        return go_time(attributes.get("time"))
    if name in ("dataschema", "schemaurl"):
        return attributes.get("dataschema") or attributes.get("schemaurl") or ""
    if name == "datamediatype":
        return attributes.get("datacontenttype", "").split(";", 1)[0].strip()
    return attributes.get(name)


def go_time(text: str | None) -> str | None:
    """An event's time as Knative's filters see it, Go's time.MarshalText of the parsed time:
    nanoseconds without trailing zeros, a zero offset as Z (2024-05-01T10:00:00.000+00:00 is
    2024-05-01T10:00:00Z), Go's zero time when there is none."""
    if text is None:
        return "0001-01-01T00:00:00Z"
    parts = _TIME.match(text)
    if parts is None:
        return text  # (the envelope lets no such time in)
    day, clock, fraction, offset = parts.groups()
    fraction = (fraction or "")[:9].rstrip("0")
    offset = "Z" if offset in ("Z", "z", "+00:00", "-00:00") else offset
    return f"{day}T{clock}{'.' + fraction if fraction else ''}{offset}"


def matches(compiled: Filter, attributes: Mapping[str, str]) -> bool:
    return compiled(attributes) is not Result.FAIL


def compile_trigger_filter(spec: Mapping) -> Filter:
    """The filter of a Trigger spec; raise ValueError naming what is invalid."""
    if spec.get("filters"):
        return _all([_dialect(entry, f"filters[{i}]") for i, entry in enumerate(spec["filters"])])
    attributes = (spec.get("filter") or {}).get("attributes")
    if attributes is None:
        return lambda _attrs: Result.NONE
    if not isinstance(attributes, dict):
        raise ValueError("filter.attributes must be a map of attribute name to value")
    _check_names(attributes, "filter.attributes")
    _check_values(attributes, "filter.attributes")
    wanted = dict(attributes)
    return lambda attrs: _attributes(wanted, attrs)


def _attributes(wanted: Mapping[str, str], attrs: Mapping[str, str]) -> Result:
    for name, value in wanted.items():
        actual = lookup(attrs, name)
        if actual is None or (value == "" and actual == ""):
            return Result.FAIL
        if value != "" and actual != value:
            return Result.FAIL
    return Result.PASS


def _check_values(mapping: Mapping, where: str) -> None:
    """The CRD's values are strings ("Only string values are supported"): Kubernetes refuses
    a Trigger with another; taken as str(), `true` never matched an event's "true"."""
    for name, value in mapping.items():
        if not isinstance(value, str):
            raise ValueError(f"{where}.{name}: values are strings, got {value!r}")


def _check_names(mapping: Mapping, where: str) -> None:
    for name in mapping:
        if not isinstance(name, str) or not _ATTRIBUTE_NAME.match(name):
            raise ValueError(f"{where}: attribute name {name!r} must match ^[a-z][a-z0-9]*$")


def _dialect(entry: Mapping, where: str) -> Filter:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: a filter is a map with one dialect")
    present = [d for d in _DIALECTS if d in entry]
    unknown = sorted(set(entry) - set(_DIALECTS))
    if unknown:
        raise ValueError(f"{where}: unknown filter dialect(s) {unknown}")
    if len(present) != 1:
        raise ValueError(f"{where}: exactly one dialect per entry, found {present or 'none'}")
    dialect, body = present[0], entry[present[0]]
    if dialect == "cesql":
        raise ValueError(f"{where}: the cesql dialect is not supported by the development broker")
    if dialect in ("exact", "prefix", "suffix"):
        if not isinstance(body, dict) or len(body) != 1:  # Knative's webhook: "only one key-value"
            raise ValueError(f"{where}.{dialect}: needs exactly one attribute: value pair")
        _check_names(body, f"{where}.{dialect}")
        if any(v in ("", None) for v in body.values()):
            raise ValueError(f"{where}.{dialect}: values must not be empty")
        _check_values(body, f"{where}.{dialect}")
        test = {"exact": str.__eq__, "prefix": str.startswith, "suffix": str.endswith}[dialect]
        pairs = dict(body)
        return lambda attrs: _compare(pairs, attrs, test)
    if dialect == "not":
        inner = _dialect(body, f"{where}.not")
        return lambda attrs: _negate(inner(attrs))
    if not isinstance(body, list) or not body:
        raise ValueError(f"{where}.{dialect}: needs a non-empty list of filters")
    nested = [_dialect(e, f"{where}.{dialect}[{i}]") for i, e in enumerate(body)]
    return _all(nested) if dialect == "all" else _any(nested)


def _compare(pairs: Mapping[str, str], attrs: Mapping[str, str],
             test: Callable[[str, str], bool]) -> Result:
    for name, value in pairs.items():
        actual = lookup(attrs, name)
        if actual is None or not test(actual, value):
            return Result.FAIL
    return Result.PASS


def _negate(result: Result) -> Result:
    return {Result.PASS: Result.FAIL, Result.FAIL: Result.PASS}.get(result, Result.NONE)


def _all(filters: list[Filter]) -> Filter:
    def run(attrs: Mapping[str, str]) -> Result:
        result = Result.NONE
        for f in filters:
            r = f(attrs)
            if r is Result.FAIL:
                return Result.FAIL
            if r is Result.PASS:
                result = Result.PASS
        return result
    return run


def _any(filters: list[Filter]) -> Filter:
    def run(attrs: Mapping[str, str]) -> Result:
        result = Result.NONE
        for f in filters:
            result = f(attrs)
            if result is Result.PASS:
                return Result.PASS
        return result
    return run
