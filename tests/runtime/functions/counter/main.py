"""Counts the ticks it handles in Redis (a visible side effect), fails on demand, replies once.

A tick from source "fail-once" fails its first handling; one from "redis-dies" shuts Redis
down (saving its data, claims included) in the middle of its first handling; one with
`sleep_s` sleeps that long in the first handling of its event (a slow or hung handler)."""
import time

import functions_framework

from kades.errors import TemporaryFailure
from kades.events.catalogue import ANOMALY_DETECTED, MARKET_TICK, derived_id, new_event
from kades.runtime import Function, http_function


def count(event, ctx):
    tick = event.data["ticks"][0]
    if tick.get("source") == "fail-once" and ctx.redis.incr("test:failures") == 1:
        raise TemporaryFailure("simulated outage")
    if tick.get("source") == "redis-dies" and not ctx.redis.exists("test:redis-died"):
        ctx.redis.set("test:redis-died", 1)
        ctx.redis.shutdown(save=True)
    if "sleep_s" in tick and ctx.redis.incr(f"test:started:{event.id}") == 1:
        time.sleep(tick["sleep_s"])
    ctx.redis.incrby("test:ticks", len(event.data["ticks"]))
    anomaly = {"token": tick["token"], "time": tick["time"], "anomaly_type": "price_spike",
               "score": 1.0, "detector": "counter"}
    return new_event(ANOMALY_DETECTED, ctx.source, {"anomalies": [anomaly]},
                     event_id=derived_id(event, "count"))


FUNCTION = Function("counter", (MARKET_TICK,), count)
handle = functions_framework.http(http_function(FUNCTION))
