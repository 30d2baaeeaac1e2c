"""Delivery: the threads that read the Triggers' lanes (see `routing`) and deliver.

Only events that passed the Trigger's filter are in its lanes (routing happens at ingress),
so nothing read is skipped. What an attempt leads to is `attempts`' job.

- Unordered Trigger: one lane, up to `workers` deliveries of it in flight at once, so
  events overtake each other (as the channel-based Broker's dispatcher, which sends each
  event on its own). One `LaneReader` per Broker reads the lanes of all its unordered
  Triggers in one XREADGROUP, and each Trigger's due retries, and makes their attempts
  itself, every request in flight on its one thread (`kades.broker.exchanges`; a thread per
  delivery cost more in hand-offs and wake-ups than the delivery). Only lanes with room
  are read: a slow subscriber holds back only itself. A failed attempt goes to the lane's
  due set, for the reader to take again when it is due. Entries in flight when Redis went
  away are scheduled again once it is back (`redrive_orphans`; housekeeping would find them
  too, but only after minutes). Done entries are acked in one script a round
  (`queue._DoneAcks`).
- Ordered Trigger: one worker per lane. It first re-reads its own unfinished entries (left
  by a failed step or a previous instance), then new ones, in batches, and delivers them
  strictly one after another: a pending retry holds the lane (its state is kept in Redis,
  so a restart continues the count and the wait), and the next event waits.
Each Trigger has its own workers and lanes, so a slow subscriber holds back only itself.
`chaos` (kades.broker.chaos) shuffles, delays and duplicates on top, when switched on.
"""
from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from typing import NamedTuple

import redis

from kades.broker.attempts import Attempts, Send, Steps
from kades.broker.chaos import NO_CHAOS, Chaos
from kades.broker.config import Trigger
from kades.broker.delivery import outcome_of, request_of
from kades.broker.exchanges import Exchanges
from kades.broker.queue import BrokerQueue
from kades.broker.routing import lanes_of
from kades.broker.tokens import LocalIssuer
from kades.logs import current_event_id, log

logger = logging.getLogger("kades.broker.dispatcher")
ORDERED_BATCH = 32
ORDERED_CONSUMER = "ordered"  # one stable name: the next instance finds the entries it left
IDLE_WAIT_S = 2.0  # an ordered worker's longest block on its idle lane; how fast it notices
# stop (when every Trigger had 16 workers, waking every 0.5 s cost 8 % of a core idle; 2 %)
READER = "reader"  # the consumer name of a LaneReader: the entries it has taken
READ_BLOCK_S = 0.2  # the reader's longest block: how late it may notice a retry fall due
# Its wait for answers while a lane with room may get new entries: doubled after each read
# that found none (one slow delivery in flight must not keep it reading 500 times a second),
# up to the longest, and back to the first once a read finds some.
ANSWER_WAIT_S, ANSWER_WAIT_MAX_S = 0.002, 0.02
DRAIN_S = 10.0  # after stop: how long the reader waits for the answers of what is in flight


class TriggerDispatcher:
    def __init__(self, trigger: Trigger, queue: BrokerQueue, *, ingress_url: str,
                 stop: threading.Event, workers: int = 4, idle_wait_s: float = IDLE_WAIT_S,
                 chaos: Chaos = NO_CHAOS, issuer: LocalIssuer | None = None,
                 reader: "LaneReader | None" = None, policies: list | None = None):
        self.trigger, self.queue, self.stop = trigger, queue, stop
        self.workers, self.idle_wait_s, self.chaos = workers, idle_wait_s, chaos
        self.lanes = lanes_of(trigger)
        self._attempts = dict(ingress_url=ingress_url, chaos=chaos, issuer=issuer,
                              turns=itertools.count(),  # the replicas' turns, shared
                              policies=policies)  # replies' sender check (Attempts)
        self.attempts = Attempts(trigger, queue, **self._attempts)
        self.threads: list[threading.Thread] = []
        self.flying = 0  # unordered: attempts the reader has in flight (its thread's count)
        # unordered: entries read beyond the room left when they came, started as it frees
        self.backlog: collections.deque[tuple[str, dict | None]] = collections.deque()
        self.reader = reader
        self._own_reader = False

    def prepare(self, *, recover: bool) -> int:
        """Create the lanes' groups; with `recover`, take over what was left pending."""
        recovered = 0
        for lane in self.lanes:
            self.queue.ensure_group(lane)
            if recover:
                recovered += self.recover(lane)
        return recovered

    def recover(self, lane: str, *, min_idle_ms: int = 0) -> int:
        if self.trigger.ordered:
            return self.queue.recover(lane, consumer=ORDERED_CONSUMER, schedule=False,
                                      min_idle_ms=min_idle_ms)
        return self.queue.recover(lane, min_idle_ms=min_idle_ms)

    def start(self) -> None:
        if not self.trigger.ordered:
            if self.reader is None:  # alone (no Broker-wide reader): a reader of its own
                self.reader = LaneReader(self.queue, self.stop, block_s=self.idle_wait_s)
                self._own_reader = True
            self.reader.add(self)
            if self._own_reader:
                self.reader.start()
            return
        for number, lane in enumerate(self.lanes):
            # Each worker on its own connection and Attempts (`BrokerQueue.for_worker`).
            queue = self.queue.for_worker()
            work = Worker(queue, Attempts(self.trigger, queue, **self._attempts))
            thread = threading.Thread(target=self._guarded, args=(lane, work), daemon=True,
                                      name=f"trigger-{self.trigger.name}-{number}")
            thread.start()
            self.threads.append(thread)

    def room(self) -> int:
        """How many more entries the reader may take for this Trigger now: `workers`, less
        the attempts in flight and the entries waiting to start."""
        return self.workers - self.flying - len(self.backlog)

    def join(self, timeout_s: float) -> None:
        """After `stop` is set: wait for the workers' attempts (the reader's, when its own)."""
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._own_reader:
            self.reader.join(max(0.0, deadline - time.monotonic()))

    def _guarded(self, lane: str, work: "Worker") -> None:
        name = self.trigger.name
        while not self.stop.is_set():
            try:
                self._run_ordered(lane, ORDERED_CONSUMER, work)
            except redis.RedisError as error:
                log(logger, logging.WARNING, "redis unavailable; delivery paused", trigger=name,
                    error=str(error))
                self.stop.wait(1.0)
            except Exception:  # a bug must not kill the worker silently: log it loudly, go on
                logger.exception("delivery worker failed", extra={"fields": {"trigger": name}})
                self.stop.wait(1.0)
        work.queue.redis.close()  # its own connection goes back to the pool

    # --- ordered: one worker per lane, one event at a time ----------------------------------

    def _run_ordered(self, lane: str, consumer: str, work: "Worker") -> None:
        queue = work.queue
        left = queue.read(lane, consumer, count=ORDERED_BATCH, pending=True)
        if left:
            for entry_id, document in left:
                if not self._deliver_in_turn(work, lane, entry_id, document,
                                             queue.state(lane, entry_id)):
                    return
            return
        for entry_id, document in queue.read(lane, consumer, count=ORDERED_BATCH,
                                             block_ms=int(self.idle_wait_s * 1000)):
            if self.stop.wait(self.chaos.delay_s()):  # a held-back event holds its lane
                return
            if not self._deliver_in_turn(work, lane, entry_id, document, None):
                return

    def _deliver_in_turn(self, work: "Worker", lane: str, entry_id: str, document: dict | None,
                         state: dict | None) -> bool:
        """Attempt until finished, waiting out each backoff; False when stopped meanwhile."""
        while True:
            if state is not None and self.stop.wait(max(0.0, state.get("due", 0) - time.time())):
                return False
            state = work.attempts.run(lane, entry_id, document, state)
            if state is None:
                return True
            work.queue.schedule(lane, entry_id, state, wake=False)


class Worker(NamedTuple):
    """What one delivery thread works with: its queue view and its Attempts."""

    queue: BrokerQueue
    attempts: Attempts


class _Flight(NamedTuple):
    """An attempt the reader has in flight."""

    dispatcher: TriggerDispatcher
    lane: str
    entry_id: str
    event_id: str | None
    steps: Steps


class LaneReader:
    """One thread that, for the unordered Triggers of a Broker, reads their due retries and
    then their new entries (all lanes in one XREADGROUP, blocking while nothing is in
    flight) and makes their attempts, every request in flight at once
    (`kades.broker.exchanges`). A lane is read only while its Trigger has room, so a slow
    subscriber holds back only itself. The reader also finishes entries whose acking script
    failed (Redis away)."""

    def __init__(self, queue: BrokerQueue, stop: threading.Event, *,
                 block_s: float = READ_BLOCK_S):
        self.queue, self.stop = queue, stop
        self.block_s = min(block_s, READ_BLOCK_S)
        self.dispatchers: list[TriggerDispatcher] = []
        self.thread: threading.Thread | None = None
        # (lane, entry id) read and not yet finished or scheduled again; after a Redis error
        # the rest of what is pending for READER is looked for (`redrive_orphans`)
        self.in_hand: set[tuple[str, str]] = set()
        self._outage = False
        self.view: BrokerQueue | None = None  # the reader's own connection (`_open`)
        self.exchanges = Exchanges()
        self._attempts: dict[str, Attempts] = {}  # Trigger name -> its attempts, on `view`
        self._answer_wait = ANSWER_WAIT_S

    def add(self, dispatcher: TriggerDispatcher) -> None:
        self.dispatchers.append(dispatcher)

    def _open(self) -> BrokerQueue:
        """The reader's connection, its attempts' too, their acks in one script a step."""
        self.view = self.queue.for_worker(held_acks=True)
        self._attempts = {d.trigger.name: Attempts(d.trigger, self.view, **d._attempts)
                          for d in self.dispatchers}
        return self.view

    def start(self) -> None:
        if self.dispatchers:
            self.thread = threading.Thread(target=self._run, daemon=True, name="lane-reader")
            self.thread.start()

    def join(self, timeout_s: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout_s)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.step(self.view or self._open())
            except redis.RedisError as error:
                self._outage = True  # a read may have taken entries whose reply was lost
                log(logger, logging.WARNING, "redis unavailable; reading paused",
                    error=str(error))
                self.stop.wait(1.0)
            except Exception:  # a bug must not kill the reader silently: log it, go on
                self._outage = True  # and what its read took is found again, as after an outage
                logger.exception("lane reader failed")
                self.stop.wait(1.0)
        drained = time.monotonic() + DRAIN_S  # the answers of what is in flight, still wanted
        try:
            while self.exchanges and time.monotonic() < drained:
                self.exchanges.poll(0.05)
            if self.view is not None:
                self.view.flush_acks()
        except redis.RedisError as error:  # left pending: the next start delivers them again
            log(logger, logging.WARNING, "redis unavailable while stopping; what was in flight "
                "is delivered again by the next start", error=str(error))
        self.exchanges.close()
        if self.view is not None:
            self.view.redis.close()

    def step(self, queue: BrokerQueue) -> int:
        """Take due retries, then read new entries, starting their attempts; then wait for
        answers (or, with nothing in flight, block on the read). How many were taken."""
        if self.view is None:
            self._open()
        queue.flush_acks()
        if queue is not self.view:
            self.view.flush_acks()
        if self._outage:
            for dispatcher in self.dispatchers:
                if queue.redrive_orphans(dispatcher.lanes[0], READER, self.in_hand):
                    log(logger, logging.WARNING, "redrove entries a lost read left pending",
                        trigger=dispatcher.trigger.name)
            self._outage = False
        wait, taken, open_ = self.block_s, 0, []
        for dispatcher in self.dispatchers:
            lane = dispatcher.lanes[0]
            while dispatcher.backlog and dispatcher.flying < dispatcher.workers:
                self._begin(dispatcher, lane, *dispatcher.backlog.popleft(), None)
            room = dispatcher.room()
            while room > 0:
                entry_id, due_in = queue.next_due(lane, READER)
                if entry_id is None:
                    if due_in is not None:
                        wait = min(wait, due_in)
                    break
                self._begin(dispatcher, lane, entry_id, queue.fetch(lane, entry_id),
                            queue.state(lane, entry_id))
                room, taken = room - 1, taken + 1
            if room > 0:
                open_.append(dispatcher)
        if open_:
            by_lane = {d.lanes[0]: d for d in open_}
            busy = taken or self.exchanges
            read = queue.read_lanes(list(by_lane), READER, count=max(d.room() for d in open_),
                                    block_ms=None if busy else int(1000 * wait))
            chaos = open_[0].chaos
            if chaos.active and read:
                for lane in by_lane:
                    held = [(i, doc) for lane_of, i, doc in read if lane_of == lane]
                    if held:
                        chaos.hold_back(queue, lane, READER, held)
                read = []  # held back: read again when they come back
            for lane, entry_id, document in read:
                dispatcher = by_lane[lane]
                if dispatcher.room() > 0:
                    self._begin(dispatcher, lane, entry_id, document, None)
                else:  # one count for every lane read: beyond this one's room, it waits
                    self.in_hand.add((lane, entry_id))
                    dispatcher.backlog.append((entry_id, document))
            taken += len(read)
            self._answer_wait = (ANSWER_WAIT_S if read or not busy
                                 else min(2 * self._answer_wait, ANSWER_WAIT_MAX_S))
        if self.exchanges:  # answers: briefly while a lane may get more, else until one comes
            self.exchanges.poll(self._answer_wait if open_ else wait)
        elif not open_:
            self.stop.wait(wait)
        return taken

    def _begin(self, dispatcher: TriggerDispatcher, lane: str, entry_id: str,
               document: dict | None, state: dict | None) -> None:
        self.in_hand.add((lane, entry_id))
        dispatcher.flying += 1
        steps = self._attempts[dispatcher.trigger.name].steps(lane, entry_id, document, state)
        self._advance(_Flight(dispatcher, lane, entry_id, (document or {}).get("id"), steps), None)

    def _advance(self, flight: _Flight, outcome) -> None:
        """Run the attempt to its next request, and send that; or see it landed."""
        token = current_event_id.set(flight.event_id)
        try:
            request: Send = flight.steps.send(outcome)
        except StopIteration as finished:
            self._landed(flight.dispatcher, flight.lane, flight.entry_id, finished.value)
            return
        except BaseException:  # Redis away mid-attempt (or a bug): still pending, redriven
            self._outage = True  # once Redis answers again (`redrive_orphans`)
            self._landed(flight.dispatcher, flight.lane, flight.entry_id, None)
            raise
        finally:
            current_event_id.reset(token)
        try:
            headers, body = request_of(request.event, prefer_reply=request.prefer_reply,
                                       token=request.token, structured=request.structured)
        except Exception as error:  # an event that cannot be written as a request: the
            # attempt failed (retried, then dead-lettered), as the blocking pool fails it
            self._advance(flight, outcome_of(OSError(f"{type(error).__name__}: {error}"),
                                             expect_reply=request.prefer_reply))
            return
        self.exchanges.start(
            request.url, headers, body, timeout_s=request.timeout_s,
            answered=lambda answer: self._advance(
                flight, outcome_of(answer, expect_reply=request.prefer_reply)))

    def _landed(self, dispatcher: TriggerDispatcher, lane: str, entry_id: str,
                state: dict | None) -> None:
        """An attempt is over: finished (None), or its entry waits for `state["due"]`."""
        dispatcher.flying -= 1
        try:
            if state is not None:
                self.view.schedule(lane, entry_id, state)
        finally:
            self.in_hand.discard((lane, entry_id))
