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
