"""The api's POST routes under random bodies (beyond schemathesis, which sends only what the
document describes): never a 5xx, every rejection a 4xx with the JSON error; bodies over
the limit are refused before they are parsed."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kades.api import params

POST_ROUTES = ["/v1/token/track", "/v1/analytics/custom", "/v1/webhooks"]
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.floats(
    allow_nan=False, allow_infinity=False)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
bodies = (json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=80)
          | st.sampled_from([b"NaN", b'{"url": Infinity}', b"\xff\xfe", b"{" * 10, b""]))


def assert_well_answered(response):
    assert response.status_code < 500, response.get_data()
    if response.status_code >= 400:
        error = response.get_json()["error"]
        assert error["code"] and error["message"] and isinstance(error["details"], list)


@given(path=st.sampled_from(POST_ROUTES), body=bodies,
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]))
@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_bodies_never_give_a_server_error(api, path, body, content_type):
    assert_well_answered(api.post(path, data=body, headers={"content-type": content_type}))


@pytest.mark.parametrize("path", POST_ROUTES)
def test_oversized_body_is_refused_before_parsing(api, path, monkeypatch):
    def must_not_parse(*args, **kwargs):
        raise AssertionError("an oversized body was parsed")
    monkeypatch.setattr(params, "parse_json", must_not_parse)
    response = api.post(path, data=b" " * (params.MAX_BODY_BYTES + 1),
                        headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert_well_answered(response)


@pytest.mark.parametrize("path", POST_ROUTES)
def test_very_deep_json_is_a_400(api, path):
    depth = 20_000  # far past the recursion limit, still under the body limit
    assert 2 * depth < params.MAX_BODY_BYTES
    response = api.post(path, data=b"[" * depth + b"]" * depth,
                        headers={"content-type": "application/json"})
    assert response.status_code == 400
