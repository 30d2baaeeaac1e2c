"""Replies to every tick with one anomaly per token, and emits one extra event per further token.

Each anomaly names the attempt that made it (a count per event in Redis): content that a
retry computes afresh, as a real function's does from state that moved on."""
import functions_framework

from kades.events.catalogue import ANOMALY_DETECTED, MARKET_TICK, derived_id, new_event
from kades.runtime import Function, http_function


def echo(event, ctx):
    replies = []
    attempt = ctx.redis.incr(f"test:echo-attempts:{event.source}:{event.id}")
    for tick in event.data["ticks"]:
        anomaly = {"token": tick["token"], "time": tick["time"], "anomaly_type": "price_spike",
                   "score": 0.9, "detector": "echo", "details": {"attempt": attempt}}
        replies.append(new_event(ANOMALY_DETECTED, ctx.source, {"anomalies": [anomaly]},
                                 subject=tick["token"],
                                 event_id=derived_id(event, f"echo:{tick['token']}")))
    return replies


FUNCTION = Function("echo", (MARKET_TICK,), echo)
handle = functions_framework.http(http_function(FUNCTION))
