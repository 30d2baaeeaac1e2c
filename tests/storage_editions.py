"""`kades_settings` once per storage edition, for the suites that must hold on each:
TimescaleDB community, TimescaleDB Apache-2 and plain PostgreSQL. A module imports it to run
its tests on all three (tests/conftest.py `edition_settings` starts the servers, or says why
an edition is skipped)."""
from __future__ import annotations

import pytest

STORAGE_EDITIONS = ("community", "apache", "plain")


@pytest.fixture(scope="session", params=STORAGE_EDITIONS)
def kades_settings(request, edition_settings):
    return edition_settings(request.param)
