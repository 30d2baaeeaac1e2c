"""Requests a function keeps without decoding them, each once (the dead-letter sink: a
Knative Broker drops what its dead-letter sink refuses).

`Function.keep_undecodable` keeps a request that is no valid event, `Function.keep_too_large`
one whose body is over Settings.max_event_bytes. No event names such a request, so
`Function.request_identity` does, from its headers and the sha256 of its body; the request is
then claimed and marked done as an event is (kades.runtime.dedup, the same keys and TTL), and
a Broker retry of it is answered as a duplicate instead of being kept twice.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Callable

from kades.errors import TemporaryFailure
from kades.logs import log
from kades.metrics import DUPLICATES, EVENTS
from kades.runtime import dedup

if TYPE_CHECKING:
    from kades.runtime.function import Context, Function

logger = logging.getLogger("kades.runtime")

# How many times max_event_bytes a function that keeps oversized bodies reads at most (to
# count and hash it, keeping only its head): past that it answers 413, as every function does.
READ_CEILING = 64
# What is kept of such a body: enough to see what the event was (its attributes are in the
# headers, or at the start of a structured body); the size and sha256 identify the whole. The
# whole 16 MiB would cost the sink (256Mi) some 60 MB per request, as base64 inside JSON.
HEAD_BYTES = 1 << 16
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Oversized:
    """A body over the limit: its first bytes (HEAD_BYTES at most), its whole size and
    sha256 (hex)."""
    head: bytes
    size: int
    sha256: str


def read_oversized(stream: BinaryIO, start: bytes, limit: int,
                   ceiling: int) -> Oversized | None:
    """The body that begins with `start` (read already) and goes on in `stream`, read in
    chunks so that only `start` stays in memory; None once it passes `ceiling`
    bytes (the rest is left unread)."""
    digest, size = hashlib.sha256(start), len(start)
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > ceiling:
            return None
        digest.update(chunk)
    return Oversized(start[:min(limit, HEAD_BYTES)], size, digest.hexdigest())


def keep_once(function: Function, ctx: Context, headers, body_sha256: str,
              keep: Callable[[], bool], outcome: str, **details) -> bool:
    """Run `keep` (True: it kept the request, False: it refuses it) unless a delivery of the
    same request was kept before; True when kept, now or then. A temporary error (a 503)
    while another delivery of it is being kept, or Redis is away."""
    identity = function.request_identity(headers, body_sha256)
    claim = dedup.claim_identity(ctx.redis, function.name, identity, **dedup.claim_options(ctx))
    if claim.in_progress:
        EVENTS.labels(function.name, "-", "in_progress").inc()
        raise TemporaryFailure("the same request is being kept by another delivery")
    if claim.done_replies is not None:
        DUPLICATES.labels(function.name).inc()
        EVENTS.labels(function.name, "-", "duplicate").inc()
        log(logger, logging.INFO, "duplicate dropped", kept=outcome)
        return True
    with dedup.renewed(ctx.redis, claim):
        try:
            kept = keep()
        except BaseException:
            dedup.release(ctx.redis, claim)
            raise
        if not kept:
            dedup.release(ctx.redis, claim)  # refused: the next delivery is asked again
            return False
        dedup.complete(ctx.redis, claim, [], ctx.settings.dedup_ttl_s)
    EVENTS.labels(function.name, "-", outcome).inc()
    log(logger, logging.WARNING, outcome.replace("_", " "), **details)
    return True
