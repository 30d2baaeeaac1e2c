"""Every Prometheus metric KADES exports, declared once.

Functions and the development broker each run in their own process, so each process's
default registry holds only what it touches; `/metrics` serves that registry. The broker's
two processes (`kades broker --ingress-process`) share one in PROMETHEUS_MULTIPROC_DIR,
prometheus_client's way for several processes, which the ingress's `/metrics` serves.

Every label takes a bounded set of values: a function, trigger or broker of the manifests,
an outcome, a level, or an event type of the catalogue (`event_type`; a sender chooses the
type, and the dead-letter sink takes any). No `_created` series: one more series per
labelled child that nothing here reads (Prometheus derives resets from the counter itself).
"""
from __future__ import annotations

import os

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               disable_created_metrics, generate_latest, multiprocess)

from kades.events.catalogue import SCHEMAS

disable_created_metrics()

OTHER_TYPE = "other"


def event_type(value: str) -> str:
    """An event type as a label value: a catalogue type, else "other".

    >>> event_type("ai.kades.market.tick.v1"), event_type("com.example.anything-at-all")
    ('ai.kades.market.tick.v1', 'other')
    """
    return value if value in SCHEMAS else OTHER_TYPE


# --- functions (kades.runtime) ---
EVENTS = Counter("kades_events_total", "Events received by a function, by outcome",
                 ["function", "type", "outcome"])
HANDLER_SECONDS = Histogram(
    "kades_handler_seconds", "Time spent handling one event (decode to reply)",
    ["function", "type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
DUPLICATES = Counter("kades_duplicates_total", "Redelivered events dropped by (source, id)",
                     ["function"])
LATE_INPUTS = Counter("kades_late_inputs_total",
                      "Points that arrived after later ones of their key were analysed (past the "
                      "allowed lateness): counted, not analysed", ["function"])
IMPOSSIBLE_SLOTS = Counter("kades_impossible_slots_total",
                           "Chain records whose slot is further past their mint's newest slot than "
                           "the time between their blocks allows: counted, not analysed", ["function"])
FAILED_TOKENS = Counter("kades_failed_tokens_total",
                        "Tokens whose analysis raised an unexpected error: logged, their state "
                        "started afresh, their waiting and new inputs dropped; the event's other "
                        "tokens analysed", ["function"])
IN_FLIGHT = Gauge("kades_in_flight", "Events being handled right now", ["function"])
EMITTED = Counter("kades_emitted_total", "Events a function sent to its sink beyond the reply",
                  ["function", "type"])

# --- development broker (kades.broker) ---
BROKER_INGRESS = Counter("kades_broker_ingress_total", "Requests at the broker ingress, by HTTP status",
                         ["broker", "status"])
BROKER_DELIVERIES = Counter("kades_broker_deliveries_total",
                            "Delivery attempts to subscribers, by trigger and result",
                            ["trigger", "result"])
BROKER_DEAD_LETTERED = Counter("kades_broker_dead_lettered_total",
                               "Events sent to the dead-letter sink after the last retry", ["trigger"])
BROKER_DELIVERY_SECONDS = Histogram("kades_broker_delivery_seconds",
                                    "Time of one delivery attempt", ["trigger"])
BROKER_LOST = Counter("kades_broker_lost_total",
                     "Events that failed for good with no dead-letter sink (Knative drops them)",
                     ["trigger"])

# --- alerts (alert-dispatch, the api's WebSocket) ---
ALERTS_PUBLISHED = Counter("kades_alerts_published_total",
                           "Alerts put on the alert stream by alert-dispatch, by level", ["level"])
WEBHOOK_DELIVERIES = Counter("kades_webhook_deliveries_total",
                             "Webhook delivery attempts, by outcome (delivered, retry, dead)",
                             ["outcome"])
WEBSOCKET_CONNECTIONS = Gauge("kades_websocket_connections", "Open WebSocket connections")
WEBSOCKET_ALERTS_SENT = Counter("kades_websocket_alerts_sent_total",
                                "Alerts sent to WebSocket clients (live and replayed)")
WEBSOCKET_SLOW_CLOSED = Counter("kades_websocket_slow_clients_total",
                                "WebSocket connections closed for reading alerts slower than they came")


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of this process's metrics (of every process sharing
    PROMETHEUS_MULTIPROC_DIR with it, when set) and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
