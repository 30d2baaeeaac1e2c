"""chain-analysis's and whale-detection's bulkhead: a mint whose analysis raises an error no
input should cause (a bug) is logged with its traceback, its state starts afresh (without its
waiting slots and the event's records of it), and the block's other mints are analysed and
committed. Left to fail the event, one mint's error failed every delivery of the block, until
the Broker dead-lettered it with every other mint's records in it, and every later block of
that mint, until its state expired. temporal-analysis has the same guard per token
(kades.temporal.function). The mints are counted in kades_failed_tokens_total when the
commit that started them afresh holds.
"""
from __future__ import annotations

import logging

from kades.chain.ordering import MissingKeys
from kades.clients import TEMPORARY_ERRORS
from kades.errors import TemporaryFailure
from kades.metrics import FAILED_TOKENS

logger = logging.getLogger("kades.chain")

# Not a bug of the mint's: the process's trouble, Redis away (the event is retried), and the
# store's own signal that a document is missing (read, then computed again).
PASSED_ON = (MemoryError, TemporaryFailure, MissingKeys, *TEMPORARY_ERRORS)


class MintFailed(Exception):
    """A mint's analysis raised (chain-analysis's compute changes documents mints share, its
    pools': the update is computed again from what was read, that mint started afresh)."""

    def __init__(self, mint: str):
        super().__init__(mint)
        self.mint = mint


def log_failure(function: str, mint: str) -> None:
    """Log the error being handled, with its traceback."""
    logger.exception("%s: %s's analysis raised: its state starts afresh, its waiting slots and "
                     "this event's records of it dropped", function, mint)


def count_failures(function: str, failed: int) -> None:
    """Count the mints a committed update started afresh."""
    if failed:
        FAILED_TOKENS.labels(function).inc(failed)
