"""GroupWriter: the items of concurrent callers written together, each caller answered with
its own result or error."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest

from kades import clients
from kades.alerts.batch import GroupWriter


class Gate:
    """A batch writer whose first batch waits until `waiting` more callers wait behind it,
    so the next batch is known to hold them all. Records every batch it writes."""

    def __init__(self, waiting: int):
        self.batches: list[list] = []
        self.waiting = waiting
        self.writer: GroupWriter | None = None

    def __call__(self, items):
        if not self.batches:
            deadline = time.monotonic() + 10
            while len(self.writer._waiting) < self.waiting:
                assert time.monotonic() < deadline, "the other callers never came"
                time.sleep(0.001)
        self.batches.append(list(items))
        return [item * 10 for item in items]


def write_all(writer: GroupWriter, items) -> dict:
    """Each item written by its own thread; item -> its result or the error raised."""
    outcomes = {}

    def one(item):
        try:
            outcomes[item] = writer.write(item)
        except Exception as error:  # recorded: what each caller was told is the subject
            outcomes[item] = error

    first = threading.Thread(target=one, args=(items[0],))
    first.start()
    while not outcomes and not writer._writing:  # the first leads its batch of one
        time.sleep(0.001)
    others = [threading.Thread(target=one, args=(item,)) for item in items[1:]]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(timeout=20)
    return outcomes


def test_callers_that_come_during_a_write_are_written_in_one_batch():
    gate = Gate(waiting=7)
    gate.writer = writer = GroupWriter(gate)
    outcomes = write_all(writer, list(range(8)))
    assert outcomes == {item: item * 10 for item in range(8)}
    assert gate.batches[0] == [0] and sorted(gate.batches[1]) == list(range(1, 8))
    assert len(gate.batches) == 2


def test_a_batch_holds_at_most_max_batch_items():
    gate = Gate(waiting=7)
    gate.writer = writer = GroupWriter(gate, max_batch=3)
    outcomes = write_all(writer, list(range(8)))
    assert outcomes == {item: item * 10 for item in range(8)}
    assert [len(batch) for batch in gate.batches] == [1, 3, 3, 1]


def test_a_temporary_error_fails_every_caller_of_the_batch_with_a_temporary_error():
    gate = Gate(waiting=4)

    def write(items):
        gate(items)
        if len(gate.batches) == 2:
            raise psycopg.OperationalError("the database went away")
        return [item * 10 for item in items]

    gate.writer = writer = GroupWriter(write)
    outcomes = write_all(writer, list(range(5)))
    assert outcomes[0] == 0 and len(gate.batches) == 2
    failed = [outcomes[item] for item in range(1, 5)]
    assert all(isinstance(error, clients.TEMPORARY_ERRORS) for error in failed)  # each a 503
    assert all("the database went away" in str(error) for error in failed)
    assert len({id(error) for error in failed}) == 4  # one exception object per caller


def test_another_error_fails_only_the_item_that_causes_it():
    gate = Gate(waiting=4)

    def write(items):
        gate(items)
        if 3 in items:
            raise ValueError("item 3 is malformed")
        return [item * 10 for item in items]

    gate.writer = writer = GroupWriter(write)
    outcomes = write_all(writer, list(range(5)))
    assert isinstance(outcomes.pop(3), ValueError)
    assert outcomes == {0: 0, 1: 10, 2: 20, 4: 40}
    # the batch of four failed whole, then each of its items was written alone
    assert sorted(gate.batches[2:]) == [[1], [2], [3], [4]]


def test_a_caller_alone_is_written_at_once():
    writer = GroupWriter(lambda items: [len(items)] * len(items))
    assert [writer.write("x") for _ in range(3)] == [1, 1, 1]
    with pytest.raises(ZeroDivisionError):
        GroupWriter(lambda items: [1 / 0]).write("y")
