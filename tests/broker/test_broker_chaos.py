"""The chaos switch: deliveries shuffled within a window, some duplicated, some delayed, on
top of the Broker class; nothing lost: every accepted event is delivered at least once."""
import threading
from collections import Counter

import httpx
import pytest
from werkzeug.wrappers import Response

from brokertest import event_attrs, manifests, post_binary, trigger, wait_for
from kades.broker import DevBroker, load_eventing
from kades.broker.chaos import Chaos
from kades.settings import Settings, SettingsError

ORDERED = {"kafka.eventing.knative.dev/delivery.order": "ordered"}


def start(tmp_path, broker_redis, text: str, chaos: Chaos, *, workers: int = 4) -> DevBroker:
    (tmp_path / "all.yaml").write_text(text)
    return DevBroker(load_eventing(tmp_path), broker_redis, port=0, workers_per_trigger=workers,
                     idle_wait_s=0.1, chaos=chaos).start()


def received(sub) -> list[str]:
    return [r["headers"]["ce-id"] for r in sub.requests]


def inversions(ids: list[str], sent: list[str]) -> int:
    rank = {event_id: n for n, event_id in enumerate(sent)}
    order = [rank[i] for i in ids]
    return sum(1 for a in range(len(order)) for b in range(a + 1, len(order)) if order[a] > order[b])


def test_shuffled_duplicated_delayed_and_nothing_lost(tmp_path, broker_redis, subscribers):
    sub = subscribers()
    chaos = Chaos(reorder_window=10, duplicate_rate=0.2, delay_rate=0.2, delay_max_s=0.3, seed=7)
    broker = start(tmp_path, broker_redis, manifests(trigger("t", sub.url)), chaos, workers=1)
    sent = [f"e{i:03d}" for i in range(60)]
    try:
        with httpx.Client(timeout=10) as client:  # kept alive: posted faster than windows close
            for event_id in sent:
                headers = {f"ce-{k}": v for k, v in event_attrs(id_=event_id).items()}
                assert client.post(broker.ingress_url(), headers=headers).status_code == 202
        wait_for(lambda: set(received(sub)) == set(sent), timeout_s=20, what="every event")
        wait_for(lambda: broker_redis.xlen("kades:{broker}:kades:kades:lane:t/0") == 0,
                 timeout_s=10, what="the duplicates too")
    finally:
        broker.stop(timeout_s=5)
    ids = received(sub)
    copies = Counter(ids)
    assert set(copies) == set(sent)  # at least once each
    assert sum(n - 1 for n in copies.values()) >= 3  # ~20 % went twice
    # One worker, so any inversion is the switch's doing, not concurrency.
    assert inversions(list(dict.fromkeys(ids)), sent) > 20


def test_an_ordered_kafka_lane_is_not_shuffled(tmp_path, broker_redis, subscribers):
    sub = subscribers()
    spec = trigger("t", sub.url)
    spec["metadata"]["annotations"] = ORDERED
    chaos = Chaos(reorder_window=10, delay_rate=0.3, delay_max_s=0.05, seed=3)
    broker = start(tmp_path, broker_redis, manifests(spec, broker_class="Kafka"), chaos)
    sent = [f"e{i:03d}" for i in range(30)]
    try:
        for event_id in sent:
            post_binary(broker.ingress_url(), event_attrs(id_=event_id, partitionkey="k"), {})
        wait_for(lambda: sub.count() == len(sent), timeout_s=20, what="every event")
    finally:
        broker.stop(timeout_s=5)
    assert received(sub) == sent  # the class's promise holds under chaos


def test_chaos_also_works_with_retries(tmp_path, broker_redis, subscribers):
    failed, lock = set(), threading.Lock()

    def flaky(request):  # every event fails once, then succeeds
        with lock:
            first = request.headers["ce-id"] not in failed
            failed.add(request.headers["ce-id"])
        return Response(status=503 if first else 202)

    sub = subscribers(flaky)
    chaos = Chaos(reorder_window=5, duplicate_rate=0.1, seed=1)
    broker = start(tmp_path, broker_redis, manifests(trigger("t", sub.url, delivery={
        "retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT0.05S"})), chaos)
    try:
        for i in range(20):
            post_binary(broker.ingress_url(), event_attrs(id_=f"r{i}"), {})
        wait_for(lambda: len(set(received(sub))) == 20 and sub.count() >= 40, timeout_s=20,
                 what="each event's failure and success")
    finally:
        broker.stop(timeout_s=5)


def test_settings_switch_it_on_and_bad_values_are_refused():
    config = Settings.from_env({"KADES_BROKER_CHAOS_REORDER_WINDOW": "40",
                                "KADES_BROKER_CHAOS_DUPLICATE_RATE": "0.05",
                                "KADES_BROKER_CHAOS_DELAY_RATE": "0.02",
                                "KADES_BROKER_CHAOS_DELAY_MAX_S": "2", "KADES_BROKER_CHAOS_SEED": "9"})
    chaos = Chaos.from_settings(config)
    assert chaos.active and chaos.reorder_window == 40 and chaos.delay_max_s == 2.0
    assert not Chaos.from_settings(Settings()).active
    with pytest.raises(SettingsError, match="KADES_BROKER_CHAOS_DUPLICATE_RATE"):
        Chaos(duplicate_rate=1.0)
