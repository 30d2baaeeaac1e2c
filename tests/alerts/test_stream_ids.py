"""The alert stream's ids as a client may send them (/v1/ws `last_id`): only what Redis takes."""
from __future__ import annotations

import pytest

from kades.alerts.stream import publish, since, valid_id


@pytest.mark.parametrize("text", ["0", "0-0", "1700000000000-5", f"{2 ** 64 - 1}-{2 ** 64 - 1}"])
def test_ids_redis_takes_are_valid(text):
    assert valid_id(text)


@pytest.mark.parametrize("text", ["", "-", "1-", "-1", "1-2-3", "\u00b2", "1-\u00b2", "\u0661",
                                  str(2 ** 64), f"1-{2 ** 64}", "1 ", "+1", "a-1", "1" * 42])
def test_ids_redis_would_refuse_are_not(text):
    assert not valid_id(text)


def test_nothing_comes_after_the_greatest_id_and_asking_is_no_error(redis_conn):
    """Redis answers "invalid start ID" to an exclusive range from it: a 500 on the socket."""
    publish(redis_conn, "a1", {"n": 1})
    assert since(redis_conn, f"{2 ** 64 - 1}-{2 ** 64 - 1}") == []
    assert since(redis_conn, f"{2 ** 64 - 2}-{2 ** 64 - 1}") == []
    assert [alert for _, alert in since(redis_conn, "0")] == [{"n": 1}]
