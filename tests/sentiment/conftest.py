"""Fixtures of the sentiment tests: a handler context on the test Redis."""
from __future__ import annotations

import pytest

from kades.runtime import Context
from kades.sentiment import function as sentiment


@pytest.fixture
def ctx(kades_settings, redis_conn):
    """A sentiment-analysis context on an emptied test Redis, with no cached state."""
    sentiment.STATES.forget()
    sentiment._directory_cache.clear()
    return Context("sentiment-analysis", settings=kades_settings)
