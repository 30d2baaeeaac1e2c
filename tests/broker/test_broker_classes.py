"""Delivery as faithful to the declared Broker class as the development broker can be: the
channel-based class has several deliveries in flight (test_broker_dispatch's
test_unordered_trigger_spreads_over_workers) and no order at all (it ignores the Kafka
ordering annotation); the Kafka class orders per partition key only, and only for a
Trigger annotated `ordered`."""
import threading

from werkzeug.wrappers import Response

from brokertest import event_attrs, manifests, post_binary, trigger, wait_for
from kades.broker.config import load_eventing
from kades.broker.routing import ORDERED_LANES, lane_number

ORDERED = {"kafka.eventing.knative.dev/delivery.order": "ordered"}


def annotated(name: str, url: str, annotations: dict | None = None, **spec) -> dict:
    doc = trigger(name, url, **spec)
    doc["metadata"]["annotations"] = annotations or {}
    return doc


def slow_first(first_id: str, done: list, *, others: int = 4, patience_s: float = 10.0):
    """A subscriber that holds `first_id` until the `others` have finished (at most
    `patience_s`), so they can overtake it however slowly they are posted; `done` gets the
    ids in the order their handling finished."""
    overtaken, lock = threading.Event(), threading.Lock()

    def respond(request):
        if request.headers["ce-id"] == first_id:
            overtaken.wait(patience_s)
        with lock:
            done.append(request.headers["ce-id"])
            if sum(1 for d in done if d != first_id) >= others:
                overtaken.set()
        return Response(status=202)
    return respond


def test_which_triggers_are_ordered(tmp_path):
    text = manifests(annotated("asks", "http://x/", ORDERED), annotated("plain", "http://y/"))
    for klass, expected in ((None, []), ("MTChannelBasedBroker", []), ("Kafka", ["asks"])):
        (tmp_path / "all.yaml").write_text(manifests(annotated("asks", "http://x/", ORDERED),
                                                     annotated("plain", "http://y/"),
                                                     broker_class=klass))
        assert [t.name for t in load_eventing(tmp_path).triggers if t.ordered] == expected
    (tmp_path / "all.yaml").write_text(text)  # the kinder old reading honours the annotation
    assert [t.name for t in load_eventing(tmp_path, faithful_order=False).triggers
            if t.ordered] == ["asks"]


def test_channel_based_broker_ignores_the_ordering_annotation(run_broker, subscribers):
    done = []
    sub = subscribers(slow_first("k-0", done))
    broker = run_broker(manifests(annotated("t", sub.url, ORDERED)), workers=4)
    for i in range(5):  # one partition key: still no order
        post_binary(broker.ingress_url(), event_attrs(id_=f"k-{i}", partitionkey="k"))
    wait_for(lambda: len(done) == 5, what="every delivery")
    assert done[-1] == "k-0"  # the others overtook the slow first one
    assert sorted(done) == [f"k-{i}" for i in range(5)]


def test_kafka_ordered_keeps_one_keys_order_behind_a_slow_event(run_broker, subscribers):
    done = []
    sub = subscribers(slow_first("k-0", done, patience_s=0.4))  # none can overtake it here
    broker = run_broker(manifests(annotated("t", sub.url, ORDERED), broker_class="Kafka"))
    for i in range(5):
        post_binary(broker.ingress_url(), event_attrs(id_=f"k-{i}", partitionkey="k"))
    wait_for(lambda: len(done) == 5, what="every delivery")
    assert done == [f"k-{i}" for i in range(5)] and sub.count() == 5


def test_kafka_unordered_trigger_lets_events_overtake(run_broker, subscribers):
    done = []
    sub = subscribers(slow_first("k-0", done))
    broker = run_broker(manifests(annotated("t", sub.url), broker_class="Kafka"), workers=4)
    for i in range(5):
        post_binary(broker.ingress_url(), event_attrs(id_=f"k-{i}", partitionkey="k"))
    wait_for(lambda: len(done) == 5, what="every delivery")
    assert done[-1] == "k-0" and sub.count() == 5


def test_kafka_spreads_keyless_events_over_the_partitions():
    lanes = {lane_number({}, True, spread_keyless=True) for _ in range(500)}
    assert lanes == set(range(ORDERED_LANES))  # no lane (and so no order) for them all
    assert {lane_number({}, True) for _ in range(50)} == {0}  # the kinder old way
