"""alert-dispatch: publishes each alert on the Redis alert stream (WebSocket fan-out by every
api replica), stores it (table `alerts`: recent alerts for the API) and queues one signed
delivery per matching webhook.

The handler only writes (stream entry, alert row, queued rows) and returns at once; a
background worker in the same process sends the webhooks and retries them, so a slow receiver
never delays the Broker nor the other receivers. Every write is idempotent on the alert event.
Alerts handled at the same time are written together (`kades.alerts.batch`): one script call
and one transaction for all of them, each request answered once its alert is written.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Sequence

from kades.alerts import stream
from kades.alerts.batch import GroupWriter
from kades.alerts.delivery import DeliveryWorker
from kades.alerts.webhook_http import webhook_client
from kades.events.catalogue import ALERT, ALERT_V1_NAME, joined
from kades.events.envelope import CloudEvent
from kades.metrics import ALERTS_PUBLISHED
from kades.runtime import Context, Function
from kades.runtime.state import answered_by_outbox
from kades.runtime.ttlcache import TtlCache
from kades.storage import alerts
from kades.storage import webhooks as store

WEBHOOKS_TTL_S = 2.0  # a new webhook receives alerts within this


@dataclass
class Local:
    """alert-dispatch's per-process state, one per Context (`ctx.local(start)`).

    `webhooks`: every live webhook, re-read at most every WEBHOOKS_TTL_S: an alert costs one
    database transaction (its row and its deliveries), not two. `writer`: writes the
    alerts of concurrent requests together. `worker`: the delivery worker, once the entry
    point started it (none when the handler is called directly)."""

    writer: GroupWriter[CloudEvent, tuple[int, bool]]
    webhooks: TtlCache = field(default_factory=lambda: TtlCache(ttl_s=WEBHOOKS_TTL_S,
                                                                max_entries=1))
    worker: DeliveryWorker | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def start(ctx: Context) -> Local:
    return Local(writer=GroupWriter(lambda events: write_alerts(ctx, events)))


def alert_message(event: CloudEvent) -> dict:
    """What WebSocket clients and webhooks receive: `{type, id, data, timestamp}`."""
    return {"type": "alert", "id": event.id, "data": event.data,
            "timestamp": event.get("time") or event.data["time"]}


def worker(ctx: Context) -> DeliveryWorker:
    """The Context's delivery worker, started on first use (never at import)."""
    local = ctx.local(start)
    with local.lock:
        if local.worker is None:
            allow_private = ctx.settings.webhook_allow_private
            local.worker = DeliveryWorker(ctx.db, webhook_client(allow_private=allow_private))
        return local.worker


def matching_webhooks(ctx: Context, *, token: str, level: str) -> list[dict]:
    def read() -> list[dict]:
        with ctx.db() as conn:
            return store.live_webhooks(conn)
    hooks = ctx.local(start).webhooks.get_or_load("live", read)
    return [h for h in hooks if store.wants(h, token=token, level=level)]


def write_alerts(ctx: Context, events: Sequence[CloudEvent]) -> list[tuple[int, bool]]:
    """Publish, store and queue the deliveries of `events`; for each, the deliveries queued
    and whether it was stored before (a redelivery: the runtime counts it a duplicate)."""
    ids = [joined(event.source, event.id) for event in events]
    messages = [alert_message(event) for event in events]
    published = stream.publish_many(ctx.redis, list(zip(ids, messages)),
                                    replicas=ctx.settings.redis_wait_replicas,
                                    wait_s=ctx.settings.redis_wait_timeout_s)
    for event, entry in zip(events, published):
        if entry is not None:
            ALERTS_PUBLISHED.labels(event.data["level"]).inc()
    # a clearing goes where its alert went: to the webhooks of the level it stood at
    hooks = [matching_webhooks(ctx, token=event.data["token"],
                               level=event.data.get("cleared_level", event.data["level"]))
             for event in events]
    with ctx.db() as conn:  # the record GET /v1/alerts reads, once the stream has moved on
        stored = alerts.insert_alerts(conn, [(event.data, event.source, event.id)
                                             for event in events])
        return [(store.queue_deliveries(conn, [h["id"] for h in wanted], alert_id, message),
                 not new) for wanted, alert_id, message, new in zip(hooks, ids, messages, stored)]


def handle_alert(event: CloudEvent, ctx: Context) -> None:
    local = ctx.local(start)
    queued, before = local.writer.write(event)
    if before:  # its row is the last of its effects: this delivery found all of them done
        answered_by_outbox.set(True)
    running = local.worker  # the one the entry point started, if any
    if queued and running is not None:
        running.wake()
    return None


# ALERT_V1_NAME: what risk-scoring sent before ALERT was renamed, accepted through v1.
# idempotent: each write is once per alert event by itself (the stream's append-once script,
# the tables' unique keys), so the runtime's claim and done mark would only add two Redis
# round trips (a quarter of the process's CPU per alert).
FUNCTION = Function("alert-dispatch", (ALERT, ALERT_V1_NAME), handle_alert, uses_database=True,
                    idempotent=True)


def with_delivery_worker(entry_point, ctx: Context | None = None):
    """Wrap the HTTP entry point so the first request of a process (a probe, typically)
    starts the delivery worker: pending retries resume after a restart without waiting for
    a new alert. Not at import: gunicorn forks after importing and threads do not survive.
    The worker is the handler's Context's, the one it wakes when it queues deliveries."""
    ctx = ctx or entry_point.context

    def entry(request):
        worker(ctx)
        return entry_point(request)

    return entry
