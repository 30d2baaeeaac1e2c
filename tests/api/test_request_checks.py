"""The request checks compiled from openapi.yaml (kades.api.openapi.request_check), without a
server: what the document states is what a request is held to, every problem named."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from werkzeug.datastructures import MultiDict

from kades.api.openapi import document, request_check
from kades.errors import BadRequestError, Problem
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


def test_a_patterns_dollar_ends_the_string_and_the_field_is_named():
    """Python's `$` also matches before a final newline: jsonschema took "<mint>\\n" that the
    fast path refused, and the answer named no field."""
    alerts = request_check("get", "/v1/alerts")
    assert problems(alerts, query={"token": MINT + "\n"}).keys() == {"token"}
    assert problems(alerts, query={"token": MINT + "\n", "limit": "0"}).keys() == {"token", "limit"}
    assert request_check("get", "/v1/alerts")({}, MultiDict({"token": MINT})).query["token"] == MINT


def test_a_parameter_sent_twice_is_refused_whichever_value_comes_first():
    check = request_check("get", "/v1/anomalies")
    for values in (["1", "abc"], ["abc", "1"], ["1", "2"]):
        with pytest.raises(BadRequestError) as raised:
            check({}, MultiDict([("limit", value) for value in values]))
        assert ("limit", "given more than once") in [
            (p.field, p.message) for p in raised.value.problems], values


def test_each_missing_member_is_named_once():
    with pytest.raises(BadRequestError) as raised:
        request_check("post", "/v1/analytics/custom")({}, MultiDict(), {})
    named = [(p.field, p.message) for p in raised.value.problems]
    assert sorted(named) == [("metrics", "required"), ("token_address", "required")]


@pytest.mark.parametrize("text", ["2026-W01-1T00:00Z", "20260101T000000Z", "2026-01-01 00:00:00Z",
                                  "2026-01-01T00:00:00+05:00:30", "2026-01-01T00:00Z",
                                  "2026-13-01T00:00:00Z", "2026-01-01T00:00:00"])
def test_a_time_is_rfc_3339_not_any_iso_8601_form(text):
    assert "start_time" in problems(request_check("get", "/v1/anomalies"),
                                    query={"start_time": text})


@pytest.mark.parametrize("text", ["2026-01-01T00:00:00Z", "2026-01-01t00:00:00.25z",
                                  "2026-01-01T00:00:00.5+05:30"])
def test_rfc_3339_times_pass(text):
    assert request_check("get", "/v1/anomalies")({}, MultiDict({"start_time": text})).query[
        "start_time"] == text


def test_a_routes_own_problems_are_listed_with_the_documents():
    def more(sent):  # what kades.api.app.MORE_CHECKS gives: the request as sent
        assert sent["query"]["limit"] == 0  # coerced, not validated
        return [Problem("start_time", "is after end_time")]
    found = problems(request_check("get", "/v1/anomalies"), query={"limit": "0"})
    assert found.keys() == {"limit"}
    with pytest.raises(BadRequestError) as raised:
        request_check("get", "/v1/anomalies")({}, MultiDict({"limit": "0"}), None, more=more)
    assert {p.field for p in raised.value.problems} == {"limit", "start_time"}


def test_a_cursor_whose_id_is_no_bigint_is_not_ours():
    """1e400 as the id raised OverflowError from int(): a 500."""
    import base64
    for row_id in ("1e400", "Infinity", "1.5", "true", "-1", str(2 ** 63)):
        raw = f'["2026-01-01T00:00:00Z", {row_id}]'.encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        assert problems(request_check("get", "/v1/alerts"), query={"cursor": cursor}) == {
            "cursor": "not a next_cursor this API gave out"}, row_id
