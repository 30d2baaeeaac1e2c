"""The `dead-letter` function (functions/dead-letter): the Broker's deadLetterSink.

It keeps every event it is sent, with Knative's `knativeerror*` extensions, in the
dead-letter stream, where `kades dlq` lists and replays them; a request that is no valid
event is kept too, as it came, and one whose body is over the size limit as far as it can be
(headers, size, sha256, first bytes): both listed as unreadable, never replayed. Each is kept
once: a Broker retry of one delivery is answered as a duplicate.
"""
from __future__ import annotations

import json

from kades.deadletter.store import (request_headers, store_dead_letter, store_too_large,
                                    store_undecodable)
from kades.events.envelope import BROKER_SPECVERSIONS, CloudEvent
from kades.runtime import ANY_TYPE, Function

# What makes two deliveries one dead letter. The same event may be dead-lettered again after
# a replay (new arrival time) and must be kept again; a Broker retry of one dead-letter
# delivery must not be kept twice.
IDENTITY = ("source", "id", "knativearrivaltime", "knativeerrordest")


def _identity(attribute) -> str:
    return "\n".join(attribute(name) or "" for name in IDENTITY)


def _dead_letter_identity(event: CloudEvent) -> str:
    return _identity(event.get)


def _request_identity(headers, body_sha256: str) -> str:
    # A request kept undecoded: by its attributes where its headers carry them (binary
    # mode), else by its headers and body. Prefixed: never the identity of an event.
    kept = request_headers(headers)
    if kept.get("ce-id") and kept.get("ce-source"):
        return "request\n" + _identity(lambda name: kept.get("ce-" + name))
    return "request\n" + json.dumps(kept, sort_keys=True) + "\n" + body_sha256


def _keep(event: CloudEvent, ctx) -> None:
    store_dead_letter(ctx.redis, event)


DATA_FIELDS = ("data", "data_base64")


def _keep_undecodable(ctx, headers, body: bytes, error) -> bool:
    # Knative's ingress checks the attributes, not the data: an event whose only problem is
    # its data (a JSON Content-Type over a body that is not JSON) can reach this sink; one
    # without an id or a source cannot, and is refused.
    if not error.problems or any(p.field not in DATA_FIELDS for p in error.problems):
        return False
    store_undecodable(ctx.redis, headers, body, error.problems)
    return True


def _keep_too_large(ctx, headers, body) -> bool:
    # Every function answers 413 to a body over the limit; a Broker would drop the event
    # this sink refused, so what can be kept of it is.
    store_too_large(ctx.redis, headers, body.head, body.size, body.sha256)
    return True


# Knative's ingress takes CloudEvents 0.3 as well as 1.0, and drops what the dead-letter
# sink refuses: so it keeps 0.3 events as events, and those it cannot decode as they came.
FUNCTION = Function("dead-letter", ANY_TYPE, _keep, identity=_dead_letter_identity,
                    specversions=BROKER_SPECVERSIONS, keep_undecodable=_keep_undecodable,
                    keep_too_large=_keep_too_large, request_identity=_request_identity)
