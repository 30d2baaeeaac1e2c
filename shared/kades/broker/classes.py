"""What the declared Broker class promises about order, and which Triggers would lose events.

- `MTChannelBasedBroker` (Knative's default class, from config-br-defaults, when a Broker has
  no `eventing.knative.dev/broker.class` annotation): the channel dispatcher sends every
  event on its own, concurrently, so there is no order at all; it ignores the Kafka
  ordering annotation.
- `Kafka` (knative-extensions/eventing-kafka-broker): a Trigger annotated
  `kafka.eventing.knative.dev/delivery.order: ordered` gets a per-partition blocking consumer
  (the next record of a partition waits for the subscriber's answer to the previous one);
  `unordered`, the default, a non-blocking one. The `partitionkey` extension is the record
  key (its PartitionKeyExtensionInterceptor), so one key stays in one partition; a keyless
  event goes to whichever partition the producer picks, with no order across partitions.
  Sources: knative.dev docs "Broker developer configuration options" and the Kafka Broker's
  "delivery order" docs.

`faithful=False` is the older, kinder reading kept while the detectors learn to take any
order: the annotation orders a Trigger whatever the class, and keyless events share lane 0.
"""
from __future__ import annotations

from typing import Iterable

CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
CHANNEL_BASED = "MTChannelBasedBroker"
KAFKA = "Kafka"
ORDER_ANNOTATION = "kafka.eventing.knative.dev/delivery.order"


def broker_class(annotations: dict | None) -> str:
    return (annotations or {}).get(CLASS_ANNOTATION) or CHANNEL_BASED


def is_ordered(klass: str, trigger_annotations: dict | None, *, faithful: bool) -> bool:
    """Whether a Trigger's events of one partition key arrive one after another, in order."""
    asked = (trigger_annotations or {}).get(ORDER_ANNOTATION, "unordered") == "ordered"
    return asked and (klass == KAFKA or not faithful)


def _kind(doc, kind: str) -> bool:
    return (isinstance(doc, dict) and doc.get("kind") == kind
            and doc.get("apiVersion") == "eventing.knative.dev/v1")


def _meta(doc: dict) -> tuple[str, str]:
    meta = doc.get("metadata") or {}
    return meta.get("namespace") or "default", meta.get("name") or "?"


def _sink(spec: dict | None):
    return ((spec or {}).get("delivery") or {}).get("deadLetterSink")


def triggers_without_dead_letter_sink(documents: Iterable) -> list[str]:
    """`namespace/name` of every Trigger that has no deadLetterSink of its own nor from its
    Broker: an event failing there for good is dropped on a cluster."""
    documents = list(documents)
    broker_sinks = {_meta(d): _sink(d.get("spec")) for d in documents if _kind(d, "Broker")}
    missing = []
    for doc in documents:
        if not _kind(doc, "Trigger"):
            continue
        namespace, name = _meta(doc)
        spec = doc.get("spec") or {}
        broker = spec.get("broker") or (spec.get("brokerRef") or {}).get("name")
        if not _sink(spec) and not broker_sinks.get((namespace, broker)):
            missing.append(f"{namespace}/{name}")
    return missing
