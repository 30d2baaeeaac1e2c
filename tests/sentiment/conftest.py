"""Fixtures of the sentiment tests: a handler context on the test Redis."""
from __future__ import annotations

import pytest

from kades.runtime import Context


@pytest.fixture
def ctx(kades_settings, redis_conn):
    """A sentiment-analysis context on an emptied test Redis: a fresh one, nothing cached."""
    return Context("sentiment-analysis", settings=kades_settings)
