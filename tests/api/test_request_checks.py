"""The request checks compiled from openapi.yaml (kades.api.openapi.request_check), without a
server: what the document states is what a request is held to, every problem named."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from werkzeug.datastructures import MultiDict

from kades.api.openapi import document, request_check
from kades.errors import BadRequestError
from kades.storage.repository import encode_cursor

MINT = "So11111111111111111111111111111111111111112"


def problems(check, path=None, query=None, body=None) -> dict[str, str]:
    with pytest.raises(BadRequestError) as raised:
        check(path or {}, MultiDict(query or {}), body)
    return {p.field: p.message for p in raised.value.problems}


def test_every_operation_of_the_document_compiles():
    for template, operations in document()["paths"].items():
        for method in operations:
            assert request_check(method, template).schema["type"] == "object"


def test_query_values_take_their_schema_types_and_the_document_defaults():
    check = request_check("get", "/v1/anomalies")
    checked = check({}, MultiDict({"min_risk_score": "0.5", "start_time": "2026-01-01T00:00:00Z"}))
    assert checked.query == {"min_risk_score": 0.5, "start_time": "2026-01-01T00:00:00Z",
                             "limit": 100}
    assert request_check("get", "/v1/alerts")({}, MultiDict()).query == {"limit": 50}
    cursor = encode_cursor(datetime(2026, 1, 1, tzinfo=timezone.utc), 7)
    assert request_check("get", "/v1/alerts")({}, MultiDict({"cursor": cursor})).query["cursor"] == cursor


def test_every_bad_query_parameter_is_named_once():
    found = problems(request_check("get", "/v1/anomalies"),
                     query={"limit": "0", "min_risk_score": "nan", "start_time": "2026-01-01T00:00:00",
                            "end_time": "soon", "cursor": "zzz", "type": "t" * 129, "colour": "red"})
    assert set(found) == {"limit", "min_risk_score", "start_time", "end_time", "cursor", "type",
                          "colour"}
    assert found["colour"] == "unknown query parameter"
    assert "time zone" in found["start_time"]  # RFC 3339 wants one
    assert found["cursor"] == "not a next_cursor this API gave out"


def test_path_and_body_problems_name_the_member():
    analysis = request_check("get", "/v1/token/{address}/analysis")
    assert set(problems(analysis, path={"address": "0OIl"}, query={"timeframe": ""})) == {
        "address", "timeframe"}
    track = request_check("post", "/v1/token/track")
    found = problems(track, body={"token_address": MINT, "y": 1, "tracking_parameters": {
        "alert_threshold": True, "update_interval": 1.5, "x": 1}})
    assert set(found) == {"y", "tracking_parameters.alert_threshold",
                          "tracking_parameters.update_interval", "tracking_parameters.x"}
    assert problems(track, body=[1]) == {"body": "[1] is not of type 'object'"}
    assert problems(track, body={}) == {"token_address": "required"}
    custom = request_check("post", "/v1/analytics/custom")
    assert set(problems(custom, body={"token_address": MINT, "metrics": ["price_impact", "colour"]})) \
        == {"metrics[1]"}


def test_nested_defaults_come_from_the_document():
    checked = request_check("post", "/v1/token/track")({}, MultiDict(), {"token_address": MINT})
    assert checked.body == {"token_address": MINT, "tracking_parameters": {
        "alert_threshold": 0.7, "update_interval": 60}}


def test_a_valid_request_is_checked_in_microseconds():
    check = request_check("get", "/v1/token/{address}/analysis")
    args = MultiDict({"timeframe": "1h"})
    started = time.perf_counter()
    for _ in range(1000):
        check({"address": MINT}, args)
    per_request_us = (time.perf_counter() - started) * 1000
    print(f"compiled check of a valid analysis request: {per_request_us:.1f} us")
    assert per_request_us < 200  # ~10 us here; openapi-core took ~500-1000 us (docs/api.md)
