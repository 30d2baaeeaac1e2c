"""The alert stream's ids as a client may send them (/v1/ws `last_id`): only what Redis takes."""
from __future__ import annotations

import pytest

from kades.alerts.stream import valid_id


@pytest.mark.parametrize("text", ["0", "0-0", "1700000000000-5", f"{2 ** 64 - 1}-{2 ** 64 - 1}"])
def test_ids_redis_takes_are_valid(text):
    assert valid_id(text)


@pytest.mark.parametrize("text", ["", "-", "1-", "-1", "1-2-3", "\u00b2", "1-\u00b2", "\u0661",
                                  str(2 ** 64), f"1-{2 ** 64}", "1 ", "+1", "a-1", "1" * 42])
def test_ids_redis_would_refuse_are_not(text):
    assert not valid_id(text)
