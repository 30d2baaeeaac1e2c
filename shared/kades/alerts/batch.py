"""Group commit: the alerts that concurrent requests bring are written together.

Each request thread hands its item to `GroupWriter.write` and waits until that item is
written, as before: nothing is acknowledged before it is stored. The first thread to find no
write under way leads: it takes every item waiting (its own first among them) and writes
them as one batch (one Redis script call, one database transaction and commit), then wakes
the others; a thread whose item was not in that batch leads the next one. When requests come
one at a time a batch is one item and costs what it did; when they pile up (alert-dispatch
behind its Broker at 500 events/s) the round trips, the pool checkout and the commit's
flush are shared by the whole batch, so the cost per alert falls as the load rises.

A batch that fails with a temporary error (Redis or the database away) fails every request
in it (each answers 503 and the Broker retries it; the writes are idempotent). Any other
error is not blamed on the whole batch: its items are written again one by one, so only the
item that causes it fails.

>>> writer = GroupWriter(lambda items: [item * 2 for item in items])
>>> writer.write(21)
42
"""
from __future__ import annotations

import threading
from typing import Callable, Generic, Sequence, TypeVar

from kades import clients
from kades.errors import TemporaryFailure

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Entry(Generic[Item, Result]):
    __slots__ = ("item", "done", "result", "error")

    def __init__(self, item: Item):
        self.item, self.done = item, False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupWriter(Generic[Item, Result]):
    """`write(item)` through `write_batch(items) -> results` (one result per item, in order),
    batching the items of threads that call at the same time."""

    def __init__(self, write_batch: Callable[[Sequence[Item]], Sequence[Result]], *,
                 max_batch: int = 64):
        self._write_batch, self._max_batch = write_batch, max_batch
        self._waiting: list[_Entry] = []
        self._writing = False
        self._changed = threading.Condition()

    def write(self, item: Item) -> Result:
        entry = _Entry(item)
        with self._changed:
            self._waiting.append(entry)
        while not entry.done:
            with self._changed:
                while self._writing and not entry.done:
                    self._changed.wait()
                if entry.done:
                    break
                # Nobody is writing and ours waits: lead the next batch (the oldest items;
                # ours among them unless more than max_batch wait, then the next one).
                self._writing = True
                batch = self._waiting[:self._max_batch]
                del self._waiting[:self._max_batch]
            try:
                self._run(batch)
            finally:
                with self._changed:
                    self._writing = False
                    self._changed.notify_all()
        if entry.error is not None:
            raise entry.error
        return entry.result

    def _run(self, batch: list[_Entry]) -> None:
        """Write `batch`; every entry ends done, with its result or its error."""
        try:
            results = self._write_batch([entry.item for entry in batch])
        except Exception as error:
            if len(batch) > 1 and not isinstance(error, clients.TEMPORARY_ERRORS):
                for entry in batch:  # find the item at fault: a batch each
                    self._run([entry])
                return
            _fail(batch, error)
            return
        except BaseException as error:  # the leader is being stopped: so are the others
            _fail(batch, error)
            raise
        for entry, result in zip(batch, results, strict=True):
            entry.result, entry.done = result, True


def _fail(batch: list[_Entry], error: BaseException) -> None:
    """The first entry gets `error`, the others a TemporaryFailure caused by it (one exception
    object raised by several threads would share its traceback)."""
    for index, entry in enumerate(batch):
        if index == 0:
            entry.error = error
        else:
            entry.error = TemporaryFailure(f"written in a batch that failed: "
                                           f"{type(error).__name__}: {error}")
            entry.error.__cause__ = error
        entry.done = True
