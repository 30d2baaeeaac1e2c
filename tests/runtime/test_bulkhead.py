"""kades.runtime.bulkhead's reset after a state that did not encode: a token's key starts that
token afresh once; a key no token owns, or a token that fails again fresh, fails the event."""
from __future__ import annotations

import pytest

from kades.runtime.bulkhead import StateNotEncoded, reset_unencoded

TOKEN_OF = {"state:a": "a", "state:b": "b"}


def failure(key: str) -> StateNotEncoded:
    try:  # raised as the stores raise it: the encoder's error chained
        try:
            raise TypeError("Object of type object is not JSON serializable")
        except TypeError as error:
            raise StateNotEncoded(key) from error
    except StateNotEncoded as raised:
        return raised


def test_a_tokens_key_starts_that_token_afresh_once(caplog):
    reset: set[str] = set()
    try:
        raise failure("state:a")
    except StateNotEncoded as raised:  # handled, as the functions call it
        reset_unencoded(raised, TOKEN_OF, reset, "test")
    assert reset == {"a"}
    (logged,) = caplog.records
    assert "a's state's encoding raised" in logged.getMessage()
    assert "not JSON serializable" in logged.exc_text  # the encoder's error, chained
    again = failure("state:a")  # fresh, it failed again: no loop, the event fails
    with pytest.raises(StateNotEncoded) as raised:
        reset_unencoded(again, TOKEN_OF, reset, "test")
    assert raised.value is again and isinstance(raised.value.__cause__, TypeError)


def test_a_key_no_token_owns_fails_the_event():
    reset: set[str] = set()
    with pytest.raises(StateNotEncoded, match="chain:pool:p"):
        reset_unencoded(failure("chain:pool:p"), TOKEN_OF, reset, "test")
    assert reset == set()
