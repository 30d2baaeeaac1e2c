"""Fixtures of every test that calls the api in process (tests/api, tests/security): a fresh
API key per test, a stand-in broker ingress, the api's test client."""
from __future__ import annotations

import json

import pytest
from alerts.receiver import Receiver
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
def sink(monkeypatch):
    """A stand-in broker ingress (202) recording the events the api sends; their data."""
    receiver = Receiver(statuses=[202] * 1000)
    monkeypatch.setenv("KADES_SINK_URL", receiver.url)
    receiver.events = lambda: [(h.get("ce-type") or h.get("Ce-Type"), json.loads(b))
                               for h, b, _ in receiver.received]
    yield receiver
    receiver.close()


@pytest.fixture
def api(kades_env, db_conn, redis_conn, make_key, sink):
    _, key = make_key("enterprise")  # high limits: tests of other things never hit them
    return api_client(key)
