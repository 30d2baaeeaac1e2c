"""Delivery: the threads that read the Triggers' lanes (see `routing`) and deliver.

Only events that passed the Trigger's filter are in its lanes (routing happens at ingress),
so nothing read is skipped. What an attempt leads to is `attempts`' job.

- Unordered Trigger: one lane, a pool of workers, so several deliveries are in flight and
  events overtake each other (as the channel-based Broker's dispatcher, which sends each
  event on its own). One `LaneReader` per Broker reads the lanes of all its unordered
  Triggers in one blocking XREADGROUP, and each Trigger's due retries, and hands what it
  read to the Trigger's workers (only lanes whose workers have room are read: a slow
  subscriber holds back only itself). A failed attempt goes to the lane's due set, for the
  reader to hand out when it is due. An entry a worker was on when Redis went away is
  scheduled again by that worker once Redis is back (housekeeping would find it too, but
  only after minutes). Done entries are acked in shared scripts (`queue._DoneAcks`).
- Ordered Trigger: one worker per lane. It first re-reads its own unfinished entries (left
  by a failed step or a previous instance), then new ones, in batches, and delivers them
  strictly one after another: a pending retry holds the lane (its state is kept in Redis,
  so a restart continues the count and the wait), and the next event waits.
Each Trigger has its own workers and lanes, so a slow subscriber holds back only itself.
`chaos` (kades.broker.chaos) shuffles, delays and duplicates on top, when switched on.
"""
from __future__ import annotations

import itertools
import logging
import queue as inboxes
import threading
import time
from typing import NamedTuple

import redis

from kades.broker.attempts import Attempts
from kades.broker.chaos import NO_CHAOS, Chaos
from kades.broker.config import Trigger
from kades.broker.queue import BrokerQueue
from kades.broker.routing import lanes_of
from kades.broker.tokens import LocalIssuer
from kades.logs import log

logger = logging.getLogger("kades.broker.dispatcher")
ORDERED_BATCH = 32
ORDERED_CONSUMER = "ordered"  # one stable name: the next instance finds the entries it left
IDLE_WAIT_S = 2.0  # longest block on an idle stream; also how fast a worker notices stop
# (256 workers of 16 Triggers waking every 0.5 s cost 8 % of a core on an idle broker; 2 %)
READER = "reader"  # the consumer name of a LaneReader: the entries its workers have
READ_BLOCK_S = 0.2  # the reader's longest block: how late it may notice a retry fall due
FULL_RECHECK_S = 0.02  # its block while a Trigger's workers have no room (it skips that lane)


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
        self._holding: dict[str, str] = {}  # unordered worker -> entry of its current attempt
        # Unordered: what the reader read for the workers, (lane, entry id, document, state).
        self.inbox: inboxes.SimpleQueue = inboxes.SimpleQueue()
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
        if self.trigger.ordered:
            jobs = [(self._run_ordered, lane, ORDERED_CONSUMER) for lane in self.lanes]
        else:
            if self.reader is None:  # alone (no Broker-wide reader): a reader of its own
                self.reader = LaneReader(self.queue, self.stop, block_s=self.idle_wait_s)
                self._own_reader = True
            self.reader.add(self)
            jobs = [(self._run_unordered, self.lanes[0], f"w{n}") for n in range(self.workers)]
        for number, (target, lane, consumer) in enumerate(jobs):
            # Each worker on its own connection and Attempts (`BrokerQueue.for_worker`).
            queue = self.queue.for_worker()
            work = Worker(queue, Attempts(self.trigger, queue, **self._attempts))
            thread = threading.Thread(target=self._guarded, args=(target, lane, consumer, work),
                                      daemon=True, name=f"trigger-{self.trigger.name}-{number}")
            thread.start()
            self.threads.append(thread)
        if self._own_reader:
            self.reader.start()

    def room(self) -> int:
        """How many more entries the reader may hand this Trigger's workers now: as many
        as there are workers, beyond those being delivered."""
        return self.workers - self.inbox.qsize()

    def join(self, timeout_s: float) -> None:
        """After `stop` is set: wake idle workers and wait for the others' attempts."""
        deadline = time.monotonic() + timeout_s
        if not self.trigger.ordered:
            for _ in self.threads:
                self.inbox.put(None)
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._own_reader:
            self.reader.join(max(0.0, deadline - time.monotonic()))

    def _guarded(self, step, lane: str, consumer: str, work: "Worker") -> None:
        name = self.trigger.name
        while not self.stop.is_set():
            try:
                if consumer in self._holding:  # left mid-attempt when Redis went away
                    work.queue.flush_acks()  # finished after all, if only its ack failed
                    work.queue.redrive(lane, self._holding[consumer])
                    del self._holding[consumer]
                step(lane, consumer, work)
            except redis.RedisError as error:
                log(logger, logging.WARNING, "redis unavailable; delivery paused", trigger=name,
                    error=str(error))
                self.stop.wait(1.0)
            except Exception:  # a bug must not kill the worker silently: log it loudly, go on
                logger.exception("delivery worker failed", extra={"fields": {"trigger": name}})
                self.stop.wait(1.0)
        work.queue.redis.close()  # its own connection goes back to the pool

    # --- unordered: many workers on one lane ----------------------------------------------

    def _run_unordered(self, lane: str, consumer: str, work: "Worker") -> None:
        taken = self.inbox.get()  # idle workers sleep until there is work (or `join`)
        if taken is None:
            return  # stopping: `_guarded` sees the stop
        lane, entry_id, document, state = taken
        self._holding[consumer] = entry_id
        state = work.attempts.run(lane, entry_id, document, state)
        while state is not None and state["due"] - time.time() <= READ_BLOCK_S:
            # A retry due before the reader would notice it: this worker waits it out, as
            # Knative's dispatcher retries in the goroutine that made the first attempt.
            work.queue.schedule(lane, entry_id, state, wake=False)
            if self.stop.wait(max(0.0, state["due"] - time.time())):
                return  # left pending: the next start schedules it again
            state = work.attempts.run(lane, entry_id, document, state)
        self._after(work.queue, lane, entry_id, state)
        self._holding.pop(consumer, None)
        self.reader.in_hand.discard((lane, entry_id))  # finished, or in the due set

    @staticmethod
    def _after(queue: BrokerQueue, lane: str, entry_id: str, state: dict | None) -> None:
        if state is not None:
            queue.schedule(lane, entry_id, state)

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


class LaneReader:
    """One thread reading, for the unordered Triggers of a Broker, their due retries and then
    their new entries, all lanes in one blocking XREADGROUP (instead of every worker
    blocking on its own connection), and handing each entry to its Trigger's workers.
    A lane is read only while its workers have room, so a slow subscriber holds back only
    itself. The reader also finishes entries whose acking script failed (Redis away)."""

    def __init__(self, queue: BrokerQueue, stop: threading.Event, *,
                 block_s: float = READ_BLOCK_S):
        self.queue, self.stop = queue, stop
        self.block_s = min(block_s, READ_BLOCK_S)
        self.dispatchers: list[TriggerDispatcher] = []
        self.thread: threading.Thread | None = None
        # (lane, entry id) handed to workers and not yet finished or scheduled again; after
        # a Redis error the rest of what is pending for READER is looked for (`redrive_orphans`)
        self.in_hand: set[tuple[str, str]] = set()
        self._outage = False

    def add(self, dispatcher: TriggerDispatcher) -> None:
        self.dispatchers.append(dispatcher)

    def start(self) -> None:
        if self.dispatchers:
            self.thread = threading.Thread(target=self._run, daemon=True, name="lane-reader")
            self.thread.start()

    def join(self, timeout_s: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout_s)

    def _run(self) -> None:
        queue = self.queue.for_worker()
        while not self.stop.is_set():
            try:
                self.step(queue)
            except redis.RedisError as error:
                self._outage = True  # a read may have taken entries whose reply was lost
                log(logger, logging.WARNING, "redis unavailable; reading paused",
                    error=str(error))
                self.stop.wait(1.0)
            except Exception:  # a bug must not kill the reader silently: log it, go on
                logger.exception("lane reader failed")
                self.stop.wait(1.0)
        queue.redis.close()

    def step(self, queue: BrokerQueue) -> int:
        """Hand out due retries, then read new entries (blocking while there are none);
        how many entries were handed out."""
        queue.flush_acks()
        if self._outage:
            for dispatcher in self.dispatchers:
                if queue.redrive_orphans(dispatcher.lanes[0], READER, self.in_hand):
                    log(logger, logging.WARNING, "redrove entries a lost read left pending",
                        trigger=dispatcher.trigger.name)
            self._outage = False
        wait, handed, open_ = self.block_s, 0, []
        for dispatcher in self.dispatchers:
            room, lane = dispatcher.room(), dispatcher.lanes[0]
            while room > 0:
                entry_id, due_in = queue.next_due(lane, READER)
                if entry_id is None:
                    if due_in is not None:
                        wait = min(wait, due_in)
                    break
                self.in_hand.add((lane, entry_id))
                dispatcher.inbox.put((lane, entry_id, queue.fetch(lane, entry_id),
                                      queue.state(lane, entry_id)))
                room, handed = room - 1, handed + 1
            if room > 0:
                open_.append(dispatcher)
            else:
                wait = min(wait, FULL_RECHECK_S)
        if not open_:
            self.stop.wait(wait)
            return handed
        by_lane = {d.lanes[0]: d for d in open_}
        taken = queue.read_lanes(list(by_lane), READER, count=max(d.workers for d in open_),
                                 block_ms=int(1000 * (wait if not handed else 0.001)))
        chaos = open_[0].chaos
        if chaos.active and taken:
            for lane in by_lane:
                held = [(i, doc) for lane_of, i, doc in taken if lane_of == lane]
                if held:
                    chaos.hold_back(queue, lane, READER, held)
            return handed
        for lane, entry_id, document in taken:
            self.in_hand.add((lane, entry_id))
            by_lane[lane].inbox.put((lane, entry_id, document, None))
        return handed + len(taken)
