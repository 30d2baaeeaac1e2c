"""The reorder buffer: shuffled, duplicated input comes out in time order, once each."""
from __future__ import annotations

import random

import pytest

from kades.runtime.reorder import ReorderBuffer


def shuffled_within(items: list, window: int, rng: random.Random) -> list:
    """`items` in an order where each moves at most `window` places (a bounded lateness)."""
    keyed = [(index + rng.uniform(0, window), item) for index, item in enumerate(items)]
    return [item for _, item in sorted(keyed)]


@pytest.mark.parametrize("seed", range(20))
def test_shuffled_and_duplicated_input_is_released_in_order_once(seed):
    rng = random.Random(seed)
    items = [(float(t), f"id{t}", t) for t in range(200)]
    arrivals = shuffled_within(items, 8, rng)
    arrivals += rng.sample(items, 30)  # redeliveries, some long after
    buffer, state, released, late = ReorderBuffer(lateness_s=10, idle_s=60), {}, [], []
    for start in range(0, len(arrivals), 3):
        ready, too_late = buffer.admit(state, arrivals[start:start + 3], now_s=0)
        released += ready
        late += too_late
    ready, too_late = buffer.admit(state, [], now_s=1000)  # the idle flush
    released += ready
    # Every point once, in order; a copy that came later than the lateness is returned as
    # late (counted), never released twice.
    assert released == items and state["pending"] == []
    assert all(item in items for item in late)


def test_what_comes_later_than_the_lateness_is_returned_apart_and_counted():
    buffer, state = ReorderBuffer(lateness_s=5, idle_s=60), {}
    assert buffer.admit(state, [(t, str(t), t) for t in (1.0, 2.0, 20.0)], now_s=0)[0] == \
        [(1.0, "1.0", 1.0), (2.0, "2.0", 2.0)]
    ready, late = buffer.admit(state, [(1.5, "1.5", 1.5), (2.0, "2.0", 2.0)], now_s=0)
    assert ready == [] and late == [(1.5, "1.5", 1.5)]  # 2.0 was a duplicate, 1.5 is late


def test_the_idle_timeout_keeps_time_order():
    buffer, state = ReorderBuffer(lateness_s=100, idle_s=10), {}
    buffer.admit(state, [(50.0, "b", "b")], now_s=0)
    buffer.admit(state, [(40.0, "a", "a"), (60.0, "c", "c")], now_s=5)
    # b waited past the timeout: everything up to it goes, a too, in order; c waits on.
    assert buffer.admit(state, [], now_s=11)[0] == [(40.0, "a", "a"), (50.0, "b", "b")]
    assert ReorderBuffer.oldest_wait_s(state) == 5


def _id_of(time_s: float, payload) -> str:
    return f"{time_s}|{payload}"


@pytest.mark.parametrize("seed", range(30))
def test_ids_made_only_where_needed_give_the_same_buffer(seed):
    """admit with `id_of` and items without ids keeps, releases and drops exactly what it
    does with every id given (the state equal after every batch: the same ids kept), on
    streams with many items a time (ties), duplicates, redeliveries and idle flushes."""
    rng = random.Random(seed)
    items = [(float(t // rng.choice((1, 2, 3))), None, f"p{t}") for t in range(300)]
    arrivals = shuffled_within(items, rng.choice((1, 5, 20)), rng)
    arrivals += rng.sample(items, 40)
    buffer = ReorderBuffer(lateness_s=rng.choice((0, 3, 10)), idle_s=30)
    eager, lazy, now, made = {}, {}, 0.0, []

    def counted(time_s, payload):
        made.append(payload)
        return _id_of(time_s, payload)

    start = 0
    while start < len(arrivals):
        batch = arrivals[start:start + rng.randint(1, 12)]
        start += len(batch)
        now += rng.choice((0.5, 1.0, 40.0))  # now and then past the idle timeout
        named = [(t, _id_of(t, p), p) for t, _, p in batch]
        ready_e, late_e = buffer.admit(eager, named, now_s=now)
        ready_l, late_l = buffer.admit(lazy, list(batch), now_s=now, id_of=counted)
        assert lazy == eager
        for got, want in ((ready_l, ready_e), (late_l, late_e)):
            assert [(t, p) for t, _, p in got] == [(t, p) for t, _, p in want]
            assert all(i is None or i == j for (_, i, _), (_, j, _) in zip(got, want))
    assert len(made) < len(arrivals)


def test_an_in_order_stream_makes_only_the_ids_it_keeps():
    buffer, state, made, kept = ReorderBuffer(lateness_s=3, idle_s=60), {}, [], set()

    def counted(time_s, payload):
        made.append(payload)
        return _id_of(time_s, payload)

    for start in range(0, 500, 50):
        buffer.admit(state, [(float(t), None, t) for t in range(start, start + 50)], now_s=0,
                     id_of=counted)
        kept |= {entry[1] for entry in state["pending"] + state["recent"]}
    # each id made once, and only those the state kept: 3 s waiting, 4 released in `recent`
    assert sorted(made) == sorted(set(made)) and {_id_of(float(t), t) for t in made} == kept
    assert len(made) < 500 // 5
