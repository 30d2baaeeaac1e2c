"""Fixtures of every test that calls the api in process (tests/api, tests/security): a fresh
API key per test, the api's test client (with tests/conftest.py's recording_sink as the
broker ingress)."""
from __future__ import annotations

import pytest
from api.apiclient import api_client

from kades.storage.apikeys import create_key


@pytest.fixture
def make_key(db_conn):
    def make(tier: str = "standard") -> tuple[str, str]:
        key_id, key = create_key(db_conn, tier=tier)
        db_conn.commit()
        return key_id, key
    return make


@pytest.fixture
def api(kades_env, db_conn, redis_conn, make_key, recording_sink):
    _, key = make_key("enterprise")  # high limits: tests of other things never hit them
    return api_client(key)
