"""The one event size limit: batches split under it, a record too big refused at the
producer, and the prod Kafka Broker configured for it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kades.events.catalogue import MARKET_TICK, MAX_EVENT_BYTES, new_event
from kades.events.chunking import EventTooLarge, check_size, event_bytes, split_batch

ROOT = Path(__file__).resolve().parents[2]


def ticks(count: int) -> list[dict]:
    return [{"token": f"T{i % 7}", "time": "2024-06-01T00:00:00Z", "price": 1.0 + i,
             "source": "x" * 100} for i in range(count)]


def make(items, index, count):
    return new_event(MARKET_TICK, "/test", {"ticks": items}, event_id=f"batch-{index}-of-{count}")


def test_a_batch_that_fits_is_one_event():
    (event,) = split_batch(ticks(10), make)
    assert event.data["ticks"] == ticks(10)


def test_a_large_batch_is_split_under_the_limit_in_order():
    items = ticks(10_000)  # ~1.6 MB as one event
    events = split_batch(items, make)
    assert len(events) > 4
    assert all(event_bytes(e) <= MAX_EVENT_BYTES for e in events)
    assert [t for e in events for t in e.data["ticks"]] == items


def test_one_record_over_the_limit_is_refused_with_the_reason():
    huge = [{"token": "T", "time": "2024-06-01T00:00:00Z", "price": 1.0, "source": "x" * MAX_EVENT_BYTES}]
    with pytest.raises(EventTooLarge, match="over the 262144-byte limit"):
        split_batch(huge, make)
    with pytest.raises(EventTooLarge):
        check_size(make(huge, 1, 1))


def test_prod_kafka_broker_topic_takes_the_limit_with_headroom():
    config = yaml.safe_load((ROOT / "knative/overlays/prod/kafka-broker-config.yaml").read_text())
    topic_max = int(config["data"]["default.topic.config.max.message.bytes"])
    assert 2 * MAX_EVENT_BYTES <= topic_max <= 1024 * 1024  # headroom; under the producer's 1 MiB
    # the development broker's ingress takes no more than that topic (no kinder than prod)
    from kades.broker.ingress import BROKER_MAX_EVENT_BYTES
    from kades.broker.server import DevBroker
    import inspect
    assert BROKER_MAX_EVENT_BYTES == topic_max
    assert inspect.signature(DevBroker).parameters["max_event_bytes"].default == topic_max
    kustomization = yaml.safe_load((ROOT / "knative/overlays/prod/kustomization.yaml").read_text())
    assert "kafka-broker-config.yaml" in kustomization["resources"]
