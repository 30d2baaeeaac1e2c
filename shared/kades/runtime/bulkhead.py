"""The functions' bulkhead per token: a token (a mint) whose analysis raises an error no input
should cause (a bug) is logged with its traceback, its state starts afresh (without its waiting
inputs and the event's of it), and the event's other tokens are analysed and committed. Left to
fail the event, one token's error failed every delivery of it until the Broker dead-lettered
it, every other token's inputs with it, and the token's waiting inputs failed every later event
of it, and every flush, until its state expired. temporal-analysis, chain-analysis,
whale-detection and sentiment-analysis keep one each; the tokens are counted in
kades_failed_tokens_total when the commit that started them afresh holds.
"""
from __future__ import annotations

import logging

from kades.clients import TEMPORARY_ERRORS
from kades.errors import TemporaryFailure
from kades.metrics import FAILED_TOKENS

logger = logging.getLogger("kades.runtime")

# Not a bug of the token's: the process's trouble, and Redis away (the event is retried).
PASSED_ON = (MemoryError, TemporaryFailure, *TEMPORARY_ERRORS)


def log_failure(function: str, token: str) -> None:
    """Log the error being handled, with its traceback."""
    logger.exception("%s: %s's analysis raised: its state starts afresh, its waiting inputs and "
                     "this event's dropped", function, token)


def count_failures(function: str, failed: int) -> None:
    """Count the tokens a committed update started afresh."""
    if failed:
        FAILED_TOKENS.labels(function).inc(failed)
