"""The lanes on a real Redis: routing at ingress, retries, recovery, atomic finish."""
import threading
import time

import pytest

from brokertest import event_attrs, trigger
from kades.broker.config import Delivery, Trigger
from kades.broker.dispatcher import READER, LaneReader, TriggerDispatcher
from kades.broker.filters import compile_trigger_filter
from kades.broker.queue import GROUP, BrokerQueue
from kades.broker.routing import ORDERED_LANES, Router, lane_number, lanes_of
from kades.clients import redis_client
from kades.events.envelope import CloudEvent


def make_trigger(name: str, type_: str | None = None, *, ordered: bool = False) -> Trigger:
    spec = trigger(name, "http://127.0.0.1:9/", type=type_)["spec"]
    return Trigger("ns", name, "b", "http://127.0.0.1:9/", Delivery(),
                   compile_trigger_filter(spec), ordered=ordered)


@pytest.fixture
def queue(broker_redis) -> BrokerQueue:
    triggers = [make_trigger("a", "ai.kades.test.v1"), make_trigger("b"),
                make_trigger("other", "ai.kades.other.v1")]
    q = BrokerQueue(broker_redis, "ns", "b", Router(triggers))
    for t in triggers:
        q.ensure_group(lanes_of(t)[0])
        q.ensure_group(lanes_of(t)[0])  # idempotent
    return q


def add(queue: BrokerQueue, n: int, type_: str = "ai.kades.test.v1") -> list[CloudEvent]:
    events = [CloudEvent(event_attrs(type_, f"e{i}"), {"i": i}) for i in range(n)]
    queue.enqueue(events)
    return events


def ids(entries) -> list[str]:
    return [document["id"] for _entry, document in entries]


def test_each_event_lands_only_in_the_lanes_of_the_triggers_it_matches(queue, broker_redis):
    assert queue.enqueue([CloudEvent(event_attrs(id_="t")),
                          CloudEvent(event_attrs("ai.kades.other.v1", "o")),
                          CloudEvent(event_attrs("ai.kades.nobody.v1", "n"))]) == 5
    assert ids(queue.read("a/0", "w0", count=10)) == ["t"]
    assert ids(queue.read("b/0", "w0", count=10)) == ["t", "o", "n"]
    assert ids(queue.read("other/0", "w0", count=10)) == ["o"]
    assert queue.enqueue([CloudEvent(event_attrs("ai.kades.nobody.v1", "x"))]) == 1


def test_a_filter_never_sees_the_broker_ttl(broker_redis):
    spec = {"filter": {"attributes": {"knativebrokerttl": ""}}}
    q = BrokerQueue(broker_redis, "ns", "b", Router([Trigger(
        "ns", "ttl", "b", "http://x/", Delivery(), compile_trigger_filter(spec))]))
    assert q.enqueue([CloudEvent(event_attrs(knativebrokerttl="9"))]) == 0


def test_ordered_lanes_follow_the_partition_key():
    keys = [f"token-{i}" for i in range(40)]
    lanes = {lane_number({"partitionkey": k}, True) for k in keys}
    assert lanes == set(range(ORDERED_LANES))  # the keys spread over every lane
    for key in keys:  # and one key always goes to the same lane
        assert lane_number({"partitionkey": key}, True) == lane_number({"partitionkey": key}, True)
    assert lane_number({}, True) == 0 and lane_number({"partitionkey": "x"}, False) == 0
    assert lanes_of(make_trigger("o", ordered=True)) == [f"o/{n}" for n in range(ORDERED_LANES)]


def test_pending_entries_are_read_again_in_order(queue):
    add(queue, 3)
    assert ids(queue.read("a/0", "ordered", count=2)) == ["e0", "e1"]
    assert ids(queue.read("a/0", "ordered", count=10, pending=True)) == ["e0", "e1"]
    assert ids(queue.read("a/0", "ordered", count=10)) == ["e2"]


def test_due_retries_come_back_in_order_of_time(queue):
    assert queue.read("a/0", "w0", count=10) == []
    add(queue, 2)
    first, second = [entry for entry, _ in queue.read("a/0", "w0", count=10)]
    now = time.time()
    queue.schedule("a/0", second, {"phase": "deliver", "attempt": 2, "due": now + 0.2})
    queue.schedule("a/0", first, {"phase": "deliver", "attempt": 3, "due": now + 0.1})
    assert queue.claim_due("a/0", "w1", now) is None
    assert queue.seconds_until_due("a/0", now) == pytest.approx(0.1, abs=0.01)
    assert queue.claim_due("a/0", "w1", now + 0.15) == first
    assert queue.state("a/0", first)["attempt"] == 3
    assert queue.claim_due("a/0", "w1", now + 0.15) is None
    assert queue.claim_due("a/0", "w1", now + 1) == second


def test_finish_routes_replies_acks_deletes_and_forgets(queue, broker_redis):
    add(queue, 1)
    [(entry, _doc)] = queue.read("a/0", "w0", count=10)
    queue.schedule("a/0", entry, {"phase": "deliver", "attempt": 2, "due": time.time() + 60})
    queue.finish("a/0", [entry], replies=[CloudEvent(event_attrs("ai.kades.other.v1", "reply"))],
                 park={"event": "{}", "time": "t", "note": "n"})
    stream = queue.stream("a/0")
    assert broker_redis.xpending(stream, GROUP)["pending"] == 0 and broker_redis.xlen(stream) == 0
    assert queue.state("a/0", entry) is None and queue.seconds_until_due("a/0") is None
    assert broker_redis.xlen("kades:{broker}:dlq") == 1
    assert ids(queue.read("other/0", "w0", count=10)) == ["reply"]
    assert ids(queue.read("b/0", "w0", count=10)) == ["e0", "reply"]


def test_recover_schedules_pending_entries_but_keeps_planned_retries(queue):
    add(queue, 2)
    waiting, orphan = [entry for entry, _ in queue.read("a/0", "dead-consumer", count=10)]
    later = time.time() + 100
    queue.schedule("a/0", waiting, {"phase": "deliver", "attempt": 2, "due": later})
    assert queue.recover("a/0") == 2
    assert queue.claim_due("a/0", "w0") == orphan
    assert queue.claim_due("a/0", "w0") is None  # `waiting` keeps its due time
    assert queue.seconds_until_due("a/0") == pytest.approx(100, abs=1)


def test_recover_for_an_ordered_lane_hands_entries_to_its_consumer(queue):
    add(queue, 2)
    queue.read("a/0", "dead-consumer", count=10)
    assert queue.recover("a/0", consumer="ordered", schedule=False) == 2
    assert queue.seconds_until_due("a/0") is None
    assert ids(queue.read("a/0", "ordered", count=10, pending=True)) == ["e0", "e1"]


def test_recover_leaves_recently_claimed_entries_alone(queue):
    add(queue, 1)
    [(entry, _doc)] = queue.read("a/0", "w0", count=10)
    time.sleep(0.15)
    queue.schedule("a/0", entry, {"phase": "deliver", "attempt": 2, "due": time.time()})
    assert queue.claim_due("a/0", "w0") == entry  # being worked on now: idle time restarts
    assert queue.recover("a/0", min_idle_ms=100) == 0
    time.sleep(0.15)
    assert queue.recover("a/0", min_idle_ms=100) == 1


def test_redrive_schedules_an_unfinished_entry_once_and_a_finished_one_never(queue):
    add(queue, 2)
    (dropped, _), (done, _) = queue.read("a/0", "w0", count=10)
    queue.finish("a/0", [done])
    assert queue.redrive("a/0", done) is False  # its MULTI ran before the connection broke
    assert queue.redrive("a/0", dropped) is True
    assert queue.redrive("a/0", dropped) is False  # already waiting
    assert queue.claim_due("a/0", "w1") == dropped
    assert queue.claim_due("a/0", "w1") is None


def test_entries_a_lost_read_left_pending_are_scheduled_and_those_in_hand_are_not(queue):
    add(queue, 3)
    taken = queue.read_lanes(["a/0"], "reader", count=10, block_ms=100)
    (held, _), (lost, _), (waiting, _) = [(entry_id, doc) for _lane, entry_id, doc in taken]
    queue.schedule("a/0", waiting, {"phase": "deliver", "attempt": 2, "due": time.time() + 60})
    # `held` is with a worker, `waiting` waits for its retry, `lost` is with nobody: the
    # reply of the read that took it never arrived
    assert queue.redrive_orphans("a/0", "reader", {("a/0", held)}) == 2
    assert queue.claim_due("a/0", "reader") == lost
    assert queue.claim_due("a/0", "reader") is None  # the retry keeps its due time
    assert queue.redrive_orphans("a/0", "nobody", set()) == 0


def test_after_a_redis_error_the_reader_hands_out_what_a_lost_read_took(queue, broker_redis):
    """The reader's XREADGROUP ran but its reply was lost (Redis shut down mid-read): the
    entries wait for nobody. After the error the reader finds them and attempts them at
    once, not after housekeeping's minutes."""
    stop = threading.Event()
    reader = LaneReader(queue, stop)
    dispatcher = TriggerDispatcher(queue.router.triggers[0], queue, stop=stop,
                                   ingress_url="http://127.0.0.1:9/", reader=reader)
    reader.add(dispatcher)
    add(queue, 1)
    lost = queue.read_lanes(["a/0"], READER, count=10, block_ms=100)  # the lost reply
    stream = queue.stream("a/0")
    assert [entry_id for _lane, entry_id, _doc in lost]
    worker_view = queue.for_worker()
    reader.step(worker_view)
    # a plain read never sees it again: still pending for the reader, never attempted
    assert broker_redis.xpending(stream, GROUP)["pending"] == 1
    reader._outage = True  # what a RedisError in the reader's loop records
    reader.step(worker_view)  # attempted: its subscriber (port 9) refuses, no retry, no sink:
    reader.step(worker_view)  # lost, and acked by the reader's next step
    assert broker_redis.xpending(stream, GROUP)["pending"] == 0
    assert broker_redis.xlen(stream) == 0
    assert reader.in_hand == set() and dispatcher.flying == 0


def read_all_lanes_and_finish(queue: BrokerQueue, client) -> None:
    """What the reader and the workers do: one XREADGROUP over every lane, acks grouped."""
    queue.enqueue([CloudEvent(event_attrs(id_="t")),
                   CloudEvent(event_attrs("ai.kades.other.v1", "o"))])
    taken = queue.read_lanes(["a/0", "b/0", "other/0"], "reader", count=10, block_ms=100)
    assert sorted((lane, doc["id"]) for lane, _entry, doc in taken) == [
        ("a/0", "t"), ("b/0", "o"), ("b/0", "t"), ("other/0", "o")]
    for lane, entry_id, _doc in taken:
        queue.finish(lane, [entry_id])
    for lane in ("a/0", "b/0", "other/0"):
        assert client.xlen(queue.stream(lane)) == 0
        assert client.xpending(queue.stream(lane), GROUP)["pending"] == 0


def test_one_read_takes_every_lane_and_finished_entries_leave_them(queue, broker_redis):
    read_all_lanes_and_finish(queue, broker_redis)


@pytest.mark.slow
def test_reading_and_finishing_several_lanes_run_on_a_redis_cluster(redis_cluster_settings):
    """The lanes of a Broker share a hash tag, so one XREADGROUP and one finishing script
    may name several of them on a Redis Cluster too."""
    client = redis_client(redis_cluster_settings)  # the process's: not closed here
    triggers = [make_trigger("a", "ai.kades.test.v1"), make_trigger("b"),
                make_trigger("other", "ai.kades.other.v1")]
    queue = BrokerQueue(client, "ns", f"cluster{time.time_ns()}", Router(triggers))
    for t in triggers:
        queue.ensure_group(lanes_of(t)[0])
    try:
        read_all_lanes_and_finish(queue, client)
    finally:
        client.delete(*[queue.stream(lanes_of(t)[0]) for t in triggers])
