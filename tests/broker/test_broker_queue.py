"""The Redis Streams queue on a real Redis: groups, retries, recovery, trimming."""
import time

import pytest

from brokertest import event_attrs
from kades.broker.queue import BrokerQueue
from kades.events.envelope import CloudEvent


@pytest.fixture
def queue(broker_redis) -> BrokerQueue:
    q = BrokerQueue(broker_redis, "ns", "b")
    q.ensure_group("a")
    q.ensure_group("b")
    q.ensure_group("a")  # idempotent
    return q


def add(queue: BrokerQueue, n: int) -> list[str]:
    return queue.enqueue([CloudEvent(event_attrs(id_=f"e{i}"), {"i": i}) for i in range(n)])


def test_every_group_sees_every_event(queue):
    ids = add(queue, 3)
    for group in ("a", "b"):
        entries = queue.read_new(group, "w0", count=10, block_ms=10)
        assert [i for i, _ in entries] == ids
        assert [d["id"] for _, d in entries] == ["e0", "e1", "e2"]
        assert entries[0][1]["data"] == {"i": 0}


def test_a_new_group_starts_at_the_end(queue):
    add(queue, 2)
    queue.ensure_group("late")
    assert queue.read_new("late", "w0", count=10, block_ms=10) == []


def test_due_retries_come_back_in_order_of_time(queue):
    first, second = add(queue, 2)
    queue.read_new("a", "w0", count=10, block_ms=10)
    now = time.time()
    queue.schedule("a", second, {"phase": "deliver", "attempt": 2}, now + 0.2)
    queue.schedule("a", first, {"phase": "deliver", "attempt": 3}, now + 0.1)
    assert queue.claim_due("a", "w1", now) is None
    assert queue.seconds_until_due("a", now) == pytest.approx(0.1, abs=0.01)
    assert queue.claim_due("a", "w1", now + 0.15) == first
    assert queue.state("a", first) == {"phase": "deliver", "attempt": 3}
    assert queue.claim_due("a", "w1", now + 0.15) is None
    assert queue.claim_due("a", "w1", now + 1) == second


def test_finish_acks_and_forgets(queue, broker_redis):
    [entry] = add(queue, 1)
    queue.read_new("a", "w0", count=10, block_ms=10)
    queue.schedule("a", entry, {"phase": "deliver", "attempt": 2}, time.time() + 60)
    queue.finish("a", [entry], replies=[CloudEvent(event_attrs(id_="reply"))],
                 park={"event": "{}", "time": "t", "note": "n"})
    assert broker_redis.xpending(queue.events, "a")["pending"] == 0
    assert queue.state("a", entry) is None and queue.seconds_until_due("a") is None
    assert broker_redis.xlen("kades:dlq") == 1
    assert [d["id"] for _, d in queue.read_new("b", "w0", count=10, block_ms=10)] == ["e0", "reply"]


def test_recover_schedules_pending_entries_but_keeps_planned_retries(queue):
    waiting, orphan = add(queue, 2)
    queue.read_new("a", "dead-consumer", count=10, block_ms=10)
    later = time.time() + 100
    queue.schedule("a", waiting, {"phase": "deliver", "attempt": 2}, later)
    assert queue.recover("a") == 2
    assert queue.claim_due("a", "w0") == orphan
    assert queue.claim_due("a", "w0") is None  # `waiting` keeps its due time
    assert queue.seconds_until_due("a") == pytest.approx(100, abs=1)


def test_recover_leaves_recently_claimed_entries_alone(queue):
    [entry] = add(queue, 1)
    queue.read_new("a", "w0", count=10, block_ms=10)
    time.sleep(0.15)
    queue.schedule("a", entry, {"phase": "deliver", "attempt": 2}, time.time())
    assert queue.claim_due("a", "w0") == entry  # being worked on now: idle time restarts
    assert queue.recover("a", min_idle_ms=100) == 0
    time.sleep(0.15)
    assert queue.recover("a", min_idle_ms=100) == 1


def test_trim_keeps_what_any_trigger_still_needs(queue, broker_redis):
    ids = add(queue, 5)
    for entry_id, _ in queue.read_new("a", "w0", count=10, block_ms=10):
        queue.finish("a", [entry_id])
    read_b = queue.read_new("b", "w0", count=3, block_ms=10)
    queue.finish("b", [read_b[0][0], read_b[2][0]])  # ids[1] still pending for b
    queue.trim(["a", "b"])
    assert [i.decode() for i, _ in broker_redis.xrange(queue.events)] == ids[1:]
    queue.finish("b", [read_b[1][0]])
    queue.trim(["a", "b"])
    assert [i.decode() for i, _ in broker_redis.xrange(queue.events)] == ids[2:]
