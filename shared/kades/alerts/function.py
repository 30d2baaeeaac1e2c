"""alert-dispatch: publishes each alert on the Redis alert stream (WebSocket fan-out by every
api replica), stores it (table `alerts`: recent alerts for the API) and queues one signed
delivery per matching webhook.

The handler only writes (stream entry, alert row, queued rows) and returns at once; a
background worker in the same process sends the webhooks and retries them, so a slow receiver
never delays the Broker nor the other receivers. Every write is idempotent on the alert event.
"""
from __future__ import annotations

import threading
import time

from kades import clients
from kades.alerts import stream
from kades.alerts.delivery import DeliveryWorker
from kades.events.catalogue import ALERT
from kades.events.envelope import CloudEvent
from kades.metrics import ALERTS_PUBLISHED
from kades.runtime import Context, Function
from kades.storage import alerts
from kades.storage import webhooks as store

_worker_lock = threading.Lock()
_workers: list[DeliveryWorker] = []


def alert_message(event: CloudEvent) -> dict:
    """What WebSocket clients and webhooks receive: `{type, id, data, timestamp}`."""
    return {"type": "alert", "id": event.id, "data": event.data,
            "timestamp": event.get("time") or event.data["time"]}


def worker(ctx: Context) -> DeliveryWorker:
    """The process's delivery worker, started on first use (never at import)."""
    with _worker_lock:
        if not _workers:
            _workers.append(DeliveryWorker(ctx.db, clients.http_client(),
                                           allow_private=ctx.settings.webhook_allow_private))
        return _workers[0]


class WebhookCache:
    """Every live webhook, re-read at most every `ttl_s` seconds: an alert costs one database
    round trip (its row and its deliveries), not two. A new webhook receives alerts within
    `ttl_s`."""

    def __init__(self, ttl_s: float = 2.0):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._hooks: list[dict] = []
        self._read_at = float("-inf")

    def matching(self, ctx: Context, *, token: str, level: str) -> list[dict]:
        with self._lock:
            if time.monotonic() - self._read_at > self.ttl_s:
                with ctx.db() as conn:
                    self._hooks = store.live_webhooks(conn)
                self._read_at = time.monotonic()
            hooks = self._hooks
        return [h for h in hooks if store.wants(h, token=token, level=level)]


WEBHOOKS = WebhookCache()


def handle_alert(event: CloudEvent, ctx: Context, webhooks: WebhookCache | None = None) -> None:
    message = alert_message(event)
    if stream.publish(ctx.redis, f"{event.source}#{event.id}", message) is not None:
        ALERTS_PUBLISHED.labels(event.data["level"]).inc()
    hooks = (webhooks or WEBHOOKS).matching(ctx, token=event.data["token"],
                                            level=event.data["level"])
    with ctx.db() as conn:  # the record GET /v1/alerts reads, once the stream has moved on
        alerts.insert_alert(conn, event.data, event_source=event.source, event_id=event.id)
        queued = store.queue_deliveries(conn, [h["id"] for h in hooks],
                                        f"{event.source}#{event.id}", message)
    if queued:
        with _worker_lock:  # the worker the entry point started (none when called directly)
            for running in _workers:
                running.wake()
    return None


FUNCTION = Function("alert-dispatch", (ALERT,), handle_alert, uses_database=True)


def with_delivery_worker(entry_point, ctx: Context | None = None):
    """Wrap the HTTP entry point so the first request of a process (a probe, typically)
    starts the delivery worker: pending retries resume after a restart without waiting for
    a new alert. Not at import: gunicorn forks after importing and threads do not survive."""
    ctx = ctx or Context(FUNCTION.name)

    def entry(request):
        worker(ctx)
        return entry_point(request)

    return entry
