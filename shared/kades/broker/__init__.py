"""The development broker: Knative's Broker and Triggers, locally, on Redis Streams.

It reads the Broker and Trigger manifests of `eventing/` (the same files a cluster applies)
and behaves as Knative's multi-tenant Broker: ingress (`ingress`), filters (`filters`)
matched once at ingress to pick each event's lanes (`routing`), delivery with retries,
replies and dead letters (`dispatcher`, `attempts`, `delivery`), durable queue (`queue`).
On a cluster Knative does this job. Dead letters it cannot hand to a sink go to the
dead-letter stream of `kades.deadletter`, which the dead-letter function also writes.

Entry point: `kades broker` (`main_broker`).
"""
from kades.broker.config import ConfigError, Delivery, Eventing, load_eventing
from kades.broker.server import DevBroker, main_broker

__all__ = ["ConfigError", "Delivery", "DevBroker", "Eventing", "load_eventing", "main_broker"]
