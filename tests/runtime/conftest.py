"""Fixtures for runtime tests: apps built from the tiny functions in ./functions."""
from __future__ import annotations

import pytest
from functions_framework import create_app
from runtimetest import FUNCTIONS


@pytest.fixture
def client_of(kades_env, redis_conn, recording_sink):
    """`client_of("counter")`: a functions-framework test client of tests/runtime/functions/counter
    (a fresh app: its Context reads the settings the test set)."""

    def build(name: str):
        return create_app("handle", str(FUNCTIONS / name / "main.py"), "http").test_client()
    return build
