"""The outbox beside the state: a retry after a failure past the commit redoes the first
attempt's effects (on real Redis)."""
from __future__ import annotations

from kades.keys import outbox_key
from kades.runtime.state import StateStore

KEY = "{f}k"  # the outboxes' hash tag (function "f"): one slot on Redis Cluster


def counting(step: int):
    """compute: add `step` to a counter; the result is what was added (nothing for 0)."""
    def compute(states):
        total = (states[0] or {"n": 0})["n"] + step
        return [{"n": total}], [step] if step else []
    return compute


def test_a_retry_gets_the_first_attempts_result_not_its_own(redis_conn):
    store, box = StateStore(ttl_s=60), outbox_key("f", "/src", "e1")
    assert store.update(redis_conn, [KEY], counting(5), outbox=box) == [5]
    # The same event again (its first attempt failed after the commit): the counter has moved
    # on, but the answer is the first attempt's, and the state is not counted twice.
    assert store.update(redis_conn, [KEY], counting(7), outbox=box) == [5]
    assert store.current(redis_conn, [KEY]) == [{"n": 5}]
    # Another event is computed as usual.
    assert store.update(redis_conn, [KEY], counting(1), outbox=outbox_key("f", "/src", "e2")) == [1]
    assert store.current(redis_conn, [KEY]) == [{"n": 6}]


def test_results_without_effects_are_not_kept(redis_conn):
    store, box = StateStore(ttl_s=60), outbox_key("f", "/src", "quiet")
    assert store.update(redis_conn, [KEY], counting(0), outbox=box) == []
    assert redis_conn.get(box) is None  # redone, an empty result is just as empty
    assert store.update(redis_conn, [KEY], counting(2), outbox=outbox_key("f", "/src", "e3")) == [2]
    # kept as long as a done mark: its event may come back from the dead letters days later
    assert 3600 < redis_conn.ttl(outbox_key("f", "/src", "e3")) <= 7 * 24 * 3600


def test_with_keep_empty_an_empty_result_is_kept_and_marks_the_event_done(redis_conn):
    """A function without a claim (Function.idempotent) has the outbox as its done mark: the
    same event again gets the first (empty) result, not a count of what moved on since."""
    store, box = StateStore(ttl_s=60), outbox_key("f", "/src", "quiet")
    assert store.update(redis_conn, [KEY], counting(0), outbox=box, keep_empty=True) == []
    assert redis_conn.get(box) == b"[]" and 0 < redis_conn.ttl(box) <= 3600
    assert store.update(redis_conn, [KEY], counting(4), outbox=box, keep_empty=True) == []
    assert store.current(redis_conn, [KEY]) == [{"n": 0}]
    # no state at all: the outbox alone commits (an event that touched no key)
    alone = outbox_key("f", "/src", "alone")
    assert store.update(redis_conn, [], lambda states: ([], []), outbox=alone,
                        keep_empty=True) == []
    assert redis_conn.get(alone) == b"[]"


def test_outboxes_of_functions_and_events_are_apart():
    keys = {outbox_key(f, s, i) for f in ("a", "b") for s in ("/x", "/y") for i in ("1", "2")}
    assert len(keys) == 8
    assert all(k.startswith(("kades:{a}:outbox:a:", "kades:{b}:outbox:b:")) for k in keys)
