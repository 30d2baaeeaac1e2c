"""The development broker: Knative's Broker and Triggers, locally, on Redis Streams.

It reads the Broker and Trigger manifests of `eventing/` (the same files a cluster applies)
and behaves as Knative's multi-tenant Broker: ingress (`ingress`), filters (`filters`)
matched once at ingress to pick each event's lanes (`routing`), delivery with retries,
replies and dead letters (`dispatcher`, `attempts`, `delivery`), durable queue (`queue`),
dead-letter store and replay (`dlq`). On a cluster Knative does this job.

Entry points: `kades broker` (`main_broker`) and `kades dlq` (`main_dlq`).
"""
from kades.broker.config import ConfigError, Delivery, Eventing, load_eventing
from kades.broker.dlq import (
    list_dead_letters, main_dlq, replay_dead_letters, store_dead_letter)
from kades.broker.server import DevBroker, main_broker

__all__ = ["ConfigError", "Delivery", "DevBroker", "Eventing", "list_dead_letters",
           "load_eventing", "main_broker", "main_dlq", "replay_dead_letters", "store_dead_letter"]
