"""The `dead-letter` function (functions/dead-letter): the Broker's deadLetterSink.

It keeps every event it is sent, with Knative's `knativeerror*` extensions, in the
dead-letter stream, where `kades dlq` lists and replays them; a request that is no valid
event is kept too, as it came, listed as unreadable.
"""
from __future__ import annotations

from kades.deadletter.store import store_dead_letter, store_undecodable
from kades.events.envelope import BROKER_SPECVERSIONS, CloudEvent
from kades.runtime import ANY_TYPE, Function


def _dead_letter_identity(event: CloudEvent) -> str:
    # The same event may be dead-lettered again after a replay (new arrival time) and must
    # be kept again; a Broker retry of one dead-letter delivery must not be kept twice.
    return "\n".join([event.source, event.id, event.get("knativearrivaltime") or "",
                      event.get("knativeerrordest") or ""])


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


# Knative's ingress takes CloudEvents 0.3 as well as 1.0, and drops what the dead-letter
# sink refuses: so it keeps 0.3 events as events, and those it cannot decode as they came.
FUNCTION = Function("dead-letter", ANY_TYPE, _keep, identity=_dead_letter_identity,
                    specversions=BROKER_SPECVERSIONS, keep_undecodable=_keep_undecodable)
