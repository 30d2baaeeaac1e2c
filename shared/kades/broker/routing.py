"""Routing at ingress: each accepted event goes once into the lanes of the Triggers it matches.

A lane is one Redis stream that one Trigger's workers read. Knative's Broker evaluates every
Trigger's filter against every event; here that is done once, when the event is accepted,
so a Trigger never reads (and acks) events it does not want.

- An unordered Trigger has one lane (`<trigger>/0`), read by a pool of workers in parallel.
- An ordered Trigger (see `classes`) has `ORDERED_LANES` lanes, one worker each. As in
  Knative's Kafka Broker, where the `partitionkey` extension picks the partition, the
  events of one partition key always go to the same lane and arrive in order; different
  keys are delivered in parallel. Events without a partition key are spread over the lanes
  at random, as Kafka's producer spreads keyless records: no order among them (with
  `spread_keyless` off, the kinder old way, they all share lane 0 and keep arrival order).
The lane count is a constant, not a setting: a lane picked at ingress must still be read
after a restart with other options. It is the prod Kafka Broker's partition count
(knative/overlays/prod/kafka-broker-config.yaml, default.topic.partitions).
"""
from __future__ import annotations

import random
import zlib
from typing import Iterable

from kades.broker.config import Trigger
from kades.broker.filters import matches
from kades.events.envelope import CloudEvent

ORDERED_LANES = 12
PARTITION_KEY = "partitionkey"
# The broker's own bookkeeping attribute is never seen by a filter (Knative strips it).
_HIDDEN = ("knativebrokerttl",)


def lane_name(trigger: str, number: int) -> str:
    return f"{trigger}/{number}"


def lanes_of(trigger: Trigger) -> list[str]:
    """Every lane of `trigger`, in order."""
    return [lane_name(trigger.name, n) for n in range(ORDERED_LANES if trigger.ordered else 1)]


def lane_number(event: CloudEvent | dict, ordered: bool, *, spread_keyless: bool = False) -> int:
    """The lane of an event in a Trigger: by partition key when the Trigger is ordered."""
    if not ordered:
        return 0
    key = event.get(PARTITION_KEY)
    if key in (None, ""):
        return random.randrange(ORDERED_LANES) if spread_keyless else 0
    return zlib.crc32(str(key).encode()) % ORDERED_LANES


class Router:
    """The Triggers of one Broker, as a function from event to lanes."""

    def __init__(self, triggers: Iterable[Trigger]):
        self.triggers = list(triggers)

    def lanes(self, event: CloudEvent) -> list[str]:
        attributes = {k: str(v) for k, v in event.attributes.items() if k not in _HIDDEN}
        return [lane_name(t.name, lane_number(event, t.ordered, spread_keyless=t.spread_keyless))
                for t in self.triggers if matches(t.filter, attributes)]
