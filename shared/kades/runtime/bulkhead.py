"""The functions' bulkhead per token: a token (a mint) whose analysis raises an error no input
should cause (a bug) is logged with its traceback, its state starts afresh (without its waiting
inputs and the event's of it), and the event's other tokens are analysed and committed. Left to
fail the event, one token's error failed every delivery of it until the Broker dead-lettered
it, every other token's inputs with it, and the token's waiting inputs failed every later event
of it, and every flush, until its state expired. temporal-analysis, chain-analysis,
whale-detection and sentiment-analysis keep one each; the tokens are counted in
kades_failed_tokens_total when the commit that started them afresh holds.

A token's new state is encoded by the store, in the commit (StateStore, kades.chain.store):
an error there is raised as StateNotEncoded, naming the key, and the function starts that
token afresh and updates again (reset_unencoded, until_encoded). temporal-analysis encodes
inside its loop.
"""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

from kades.clients import TEMPORARY_ERRORS
from kades.errors import TemporaryFailure
from kades.metrics import FAILED_TOKENS

Result = TypeVar("Result")

logger = logging.getLogger("kades.runtime")

# Not a bug of the token's: the process's trouble, and Redis away (the event is retried).
PASSED_ON = (MemoryError, TemporaryFailure, *TEMPORARY_ERRORS)


def log_failure(function: str, token: str, step: str = "analysis") -> None:
    """Log the error being handled, with its traceback."""
    logger.exception("%s: %s's %s raised: its state starts afresh, its waiting inputs and "
                     "this event's dropped", function, token, step)


def count_failures(function: str, failed: int) -> None:
    """Count the tokens a committed update started afresh."""
    if failed:
        FAILED_TOKENS.labels(function).inc(failed)


class StateNotEncoded(Exception):
    """A key's new state did not encode (a bug: a value no encoder writes); the cause chained."""

    def __init__(self, key: str):
        super().__init__(f"the new state of {key} did not encode")
        self.key = key


def reset_unencoded(failure: StateNotEncoded, token_of: dict[str, str], reset: set[str],
                    function: str) -> None:
    """Log the token whose state did not encode and add it to `reset`: the update is then
    run again, its compute starting that token afresh. `failure` is raised again when its key
    is no token's (a document tokens share) or its token was started afresh already."""
    token = token_of.get(failure.key)
    if token is None or token in reset:
        raise failure
    log_failure(function, token, "state's encoding")
    reset.add(token)


def until_encoded(update: Callable[[], Result], token_of: dict[str, str], reset: set[str],
                  function: str) -> Result:
    """update()'s result, run again after each token whose state did not encode was added to
    `reset` (reset_unencoded), which update's compute starts afresh."""
    while True:
        try:
            return update()
        except StateNotEncoded as failure:
            reset_unencoded(failure, token_of, reset, function)
