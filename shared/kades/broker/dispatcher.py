"""Delivery workers: the threads that read a Trigger's lanes (see `routing`) and deliver.

Only events that passed the Trigger's filter are in its lanes (routing happens at ingress),
so a worker never reads what it must skip. What an attempt leads to is `attempts`' job.

- Unordered Trigger: one lane, a pool of workers, so several deliveries are in flight and
  events overtake each other (as the channel-based Broker's dispatcher, which sends each
  event on its own). A worker takes the next due retry, or else reads one new entry (Redis
  hands each blocked reader a different one). A failed attempt
  goes to the lane's due set, for whichever worker is free when it is due. An entry a
  worker was on when Redis went away is scheduled again by that worker once Redis is back
  (housekeeping would find it too, but only after minutes).
- Ordered Trigger: one worker per lane. It first re-reads its own unfinished entries (left
  by a failed step or a previous instance), then new ones, in batches, and delivers them
  strictly one after another: a pending retry holds the lane (its state is kept in Redis,
  so a restart continues the count and the wait), and the next event waits.
Each Trigger has its own threads and lanes, so a slow subscriber holds back only itself.
`chaos` (kades.broker.chaos) shuffles, delays and duplicates on top, when switched on.
"""
from __future__ import annotations

import itertools
import logging
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


class TriggerDispatcher:
    def __init__(self, trigger: Trigger, queue: BrokerQueue, *, ingress_url: str,
                 stop: threading.Event, workers: int = 4, idle_wait_s: float = IDLE_WAIT_S,
                 chaos: Chaos = NO_CHAOS, issuer: LocalIssuer | None = None):
        self.trigger, self.queue, self.stop = trigger, queue, stop
        self.workers, self.idle_wait_s, self.chaos = workers, idle_wait_s, chaos
        self.lanes = lanes_of(trigger)
        self._attempts = dict(ingress_url=ingress_url, chaos=chaos, issuer=issuer,
                              turns=itertools.count())  # the replicas' turns, shared
        self.attempts = Attempts(trigger, queue, **self._attempts)
        self.threads: list[threading.Thread] = []
        self._holding: dict[str, str] = {}  # unordered worker -> entry of its current attempt

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
            jobs = [(self._run_unordered, self.lanes[0], f"w{n}") for n in range(self.workers)]
        for number, (target, lane, consumer) in enumerate(jobs):
            # Each worker on its own connection and Attempts (`BrokerQueue.for_worker`).
            queue = self.queue.for_worker()
            work = Worker(queue, Attempts(self.trigger, queue, **self._attempts))
            thread = threading.Thread(target=self._guarded, args=(target, lane, consumer, work),
                                      daemon=True, name=f"trigger-{self.trigger.name}-{number}")
            thread.start()
            self.threads.append(thread)

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _guarded(self, step, lane: str, consumer: str, work: "Worker") -> None:
        name = self.trigger.name
        while not self.stop.is_set():
            try:
                if consumer in self._holding:  # left mid-attempt when Redis went away
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
        queue, attempts = work
        entry_id, wait = queue.next_due(lane, consumer)
        if entry_id is not None:
            self._holding[consumer] = entry_id
            state = queue.state(lane, entry_id)
            self._after(queue, lane, entry_id, attempts.run(
                lane, entry_id, queue.fetch(lane, entry_id), state))
        else:
            wait = self.idle_wait_s if wait is None else min(wait, self.idle_wait_s)
            taken = queue.read(lane, consumer, count=1, block_ms=int(wait * 1000))
            if taken and self.chaos.active:
                self.chaos.hold_back(queue, lane, consumer, taken)
                return
            for entry_id, document in taken:
                self._holding[consumer] = entry_id
                self._after(queue, lane, entry_id, attempts.run(lane, entry_id, document, None))
        self._holding.pop(consumer, None)

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
