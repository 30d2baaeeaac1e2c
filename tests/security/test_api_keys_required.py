"""Every API route but the probes, the OpenAPI document and the dashboard refuses a missing
or wrong key (401 with the JSON error), and never echoes the key it was sent."""
from __future__ import annotations

import json

import pytest
from werkzeug.routing import Rule

from kades.api.app import ROUTES

PUBLIC = {"/v1/openapi.json", "/v1/ws"}  # /v1/ws: authenticated after the upgrade (test_websocket)
SAMPLE = {"address": "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263",
          "webhook_id": "00000000-0000-0000-0000-000000000001"}
WRONG_KEYS = [None, "", "kades_short", "kades_" + "A" * 32, "x" * 5000, "kades_' OR '1'='1"]


def protected_requests() -> list[tuple[str, str]]:
    """(method, path) of every protected route, with sample path values."""
    out = []
    for rule in ROUTES.iter_rules():
        assert isinstance(rule, Rule)
        if rule.rule in PUBLIC:
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", SAMPLE[name])
        out += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return out


def test_every_route_is_covered():
    assert len(protected_requests()) >= 10


@pytest.mark.parametrize("method, path", protected_requests())
def test_missing_or_wrong_key_is_refused(api, method, path, log_lines):
    for key in WRONG_KEYS:
        response = api.open(method, path, key=key, json={"token_address": SAMPLE["address"]})
        assert response.status_code == 401, (method, path, key)
        body = response.get_json()
        assert body["error"]["code"] == "unauthorized"
        if key and len(key) > 8:
            assert key not in json.dumps(body), "the refused key is echoed back"
    bearer = api.open(method, path, key=None, headers={"Authorization": "Bearer not.a.jwt"})
    assert bearer.status_code == 401
    assert not any(key and len(key) > 8 and key in line for line in log_lines for key in WRONG_KEYS)


@pytest.mark.parametrize("path", ["/v1/health", "/v1/ready", "/v1/metrics", "/v1/openapi.json",
                                  "/health", "/"])
def test_public_paths_need_no_key(api, path):
    assert api.get(path, key=None).status_code == 200, path
