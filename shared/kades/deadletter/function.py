"""The `dead-letter` function (functions/dead-letter): the Broker's deadLetterSink.

It keeps every event it is sent, with Knative's `knativeerror*` extensions, in the
dead-letter stream, where `kades dlq` lists and replays them.
"""
from __future__ import annotations

from kades.deadletter.store import store_dead_letter
from kades.events.envelope import CloudEvent
from kades.runtime import ANY_TYPE, Function


def _dead_letter_identity(event: CloudEvent) -> str:
    # The same event may be dead-lettered again after a replay (new arrival time) and must
    # be kept again; a Broker retry of one dead-letter delivery must not be kept twice.
    return "\n".join([event.source, event.id, event.get("knativearrivaltime") or "",
                      event.get("knativeerrordest") or ""])


def _keep(event: CloudEvent, ctx) -> None:
    store_dead_letter(ctx.redis, event)


FUNCTION = Function("dead-letter", ANY_TYPE, _keep, identity=_dead_letter_identity)
