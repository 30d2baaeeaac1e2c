"""A per-token total kept with the runtime's state store: what a replica of a KADES function
does with a token's state, reduced to something whose sequential result is plain to state.

Each market tick adds its `volume` to its token's state (count, total, the event ids counted),
through `StateStore.update`, the optimistic compare-and-set every stateful function uses, so
two replicas updating the same token at once must neither lose nor double an update. An event
counted already (a redelivery) changes nothing. It notes which replica served it
(`KADES_REPLICA`) in `test:served:<replica>`."""
import os

import functions_framework

from kades.events.catalogue import MARKET_TICK
from kades.runtime import Function, http_function
from kades.runtime.state import StateStore

STORE = StateStore(ttl_s=3600)


def total(event, ctx):
    tick = event.data["ticks"][0]

    def add(states):
        state = states[0] or {"count": 0, "total": 0.0, "ids": []}
        if event.id not in state["ids"]:
            state = {"count": state["count"] + 1, "total": state["total"] + tick["volume"],
                     "ids": sorted([*state["ids"], event.id])}
        return [state], None

    STORE.update(ctx.redis, [f"test:total:{tick['token']}"], add)
    ctx.redis.incr(f"test:served:{os.environ.get('KADES_REPLICA', '?')}")


FUNCTION = Function("token-total", (MARKET_TICK,), total)
handle = functions_framework.http(http_function(FUNCTION))
