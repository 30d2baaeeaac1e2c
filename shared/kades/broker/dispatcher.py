"""Delivery workers: a few threads per Trigger, each reading that Trigger's consumer group.

A worker takes the next due entry (a retry, or a new entry another worker handed on), or
else reads new entries: those that do not pass the Trigger's filter are acked at once, the
first that does is attempted, the others are made due now for any worker to take. After
an attempt:
- 2xx without body: done.  2xx with an event: the reply gets the delivered event's TTL and
  goes through `ingress.admit` (so it counts down and is filtered again) into the stream;
  a reply refused there (TTL used up) dead-letters the delivered event, with the ingress
  as `knativeerrordest` and 400 as the code, as a Knative reply failure does.
- retryable failure with attempts left: the next attempt is scheduled after the backoff.
- otherwise: dead-letter phase. The event (as received, with TTL and arrival time) plus the
  `knativeerror*` extensions goes to the deadLetterSink, retried with the same policy; when
  that sink keeps failing, or there is none, the event is parked in `kades:dlq`.
Each Trigger has its own threads and group, so a slow subscriber holds back only itself.
An ordered Trigger has one worker that takes one entry at a time and, while a retry is
pending, reads nothing new: its events reach the subscriber in arrival order.
"""
from __future__ import annotations

import json
import logging
import threading
import time

import redis

from kades.broker.config import Trigger
from kades.broker.delivery import Outcome, error_extensions, send
from kades.broker.dlq import dead_letter_fields
from kades.broker.filters import matches
from kades.broker.ingress import TTL, admit
from kades.broker.queue import BrokerQueue
from kades.errors import InvalidEventError
from kades.events.envelope import CloudEvent, from_structured
from kades.logs import current_event_id, log
from kades.metrics import BROKER_DEAD_LETTERED, BROKER_DELIVERIES, BROKER_DELIVERY_SECONDS

logger = logging.getLogger("kades.broker.dispatcher")
READ_COUNT = 16
IDLE_WAIT_S = 0.5  # longest block on an idle stream; also how fast a worker notices stop


def _with(event: CloudEvent, add: dict[str, str] | None = None,
          drop: tuple[str, ...] = ()) -> CloudEvent:
    attributes = {k: v for k, v in event.attributes.items() if k not in drop}
    attributes.update(add or {})
    return CloudEvent(attributes, event.data, _has_data=event.has_data)


def _result(outcome: Outcome) -> str:
    return outcome.kind if outcome.kind in ("done", "reply") else f"{outcome.code // 100}xx"


class TriggerDispatcher:
    def __init__(self, trigger: Trigger, queue: BrokerQueue, *, ingress_url: str,
                 stop: threading.Event, workers: int = 4, idle_wait_s: float = IDLE_WAIT_S):
        self.trigger, self.queue, self.ingress_url = trigger, queue, ingress_url
        self.stop, self.workers, self.idle_wait_s = stop, workers, idle_wait_s
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self.workers):
            thread = threading.Thread(target=self._run, args=(f"w{number}",), daemon=True,
                                      name=f"trigger-{self.trigger.name}-{number}")
            thread.start()
            self.threads.append(thread)

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- the loop --------------------------------------------------------------------------

    def _run(self, consumer: str) -> None:
        name = self.trigger.name
        while not self.stop.is_set():
            try:
                entry_id, wait = self.queue.next_due(name, consumer)
                if entry_id is not None:
                    self.process(entry_id, None)
                    continue
                if self.trigger.ordered and wait is not None:
                    self.stop.wait(min(wait, self.idle_wait_s))  # the retry goes first
                    continue
                wait = self.idle_wait_s if wait is None else min(wait, self.idle_wait_s)
                entries = self.queue.read_new(name, consumer,
                                              count=1 if self.trigger.ordered else READ_COUNT,
                                              block_ms=int(wait * 1000))
                wanted = [(i, d) for i, d in entries if d is None or self._wanted(d)]
                keep = {i for i, _ in wanted}
                self.queue.ack(name, [i for i, _ in entries if i not in keep])
                if wanted:
                    # The first now; the rest go to every worker of this Trigger as due now.
                    self.queue.due_now(name, [i for i, _ in wanted[1:]])
                    self.process(*wanted[0])
            except redis.RedisError as error:
                log(logger, logging.WARNING, "redis unavailable; delivery paused", trigger=name,
                    error=str(error))
                self.stop.wait(1.0)
            except Exception:  # a bug must not kill the worker silently: log it loudly, go on
                logger.exception("delivery worker failed", extra={"fields": {"trigger": name}})
                self.stop.wait(1.0)

    def _wanted(self, document: dict) -> bool:
        attributes = {k: str(v) for k, v in document.items()
                      if k not in ("data", "data_base64", TTL)}
        return matches(self.trigger.filter, attributes)

    def process(self, entry_id: str, document: dict | None) -> None:
        """Make the next attempt for one stream entry (a new one or a due retry)."""
        name = self.trigger.name
        document = document if document is not None else self.queue.fetch(entry_id)
        if document is None:
            log(logger, logging.ERROR, "stream entry vanished before delivery", trigger=name,
                entry=entry_id)
            self.queue.finish(name, [entry_id])
            return
        try:
            event = from_structured(document)
        except InvalidEventError as error:  # cannot happen for what ingress queued
            log(logger, logging.ERROR, "unreadable stream entry parked", entry=entry_id,
                problems=str(error.problems))
            self.queue.finish(name, [entry_id], park={"event": json.dumps(document),
                                                      "time": "", "note": "unreadable"})
            return
        state = self.queue.state(name, entry_id) or {"phase": "deliver", "attempt": 1}
        token = current_event_id.set(event.id)
        try:
            if state["phase"] == "deliver":
                if not matches(self.trigger.filter, _with(event, drop=(TTL,)).attributes):
                    self.queue.finish(name, [entry_id])  # a recovered entry of another trigger config
                    return
                self._deliver(entry_id, event, state)
            else:
                self._dead_letter(entry_id, event, state)
        finally:
            current_event_id.reset(token)

    # --- phases ----------------------------------------------------------------------------

    def _deliver(self, entry_id: str, event: CloudEvent, state: dict) -> None:
        trigger, attempt = self.trigger, state["attempt"]
        started = time.monotonic()
        outcome = send(trigger.subscriber_url, _with(event, drop=(TTL,)),
                       timeout_s=trigger.delivery.timeout_s, prefer_reply=True)
        BROKER_DELIVERY_SECONDS.labels(trigger=trigger.name).observe(time.monotonic() - started)
        BROKER_DELIVERIES.labels(trigger=trigger.name, result=_result(outcome)).inc()
        if outcome.kind == "done":
            self.queue.finish(trigger.name, [entry_id])
        elif outcome.kind == "reply":
            reply = _with(outcome.reply, add={TTL: event.get(TTL, "1")})
            try:
                admitted = admit(reply)
            except InvalidEventError as error:
                body = json.dumps(error.as_body()).encode()
                self._to_dead_letter(entry_id, event, self.ingress_url, 400, body)
                return
            self.queue.finish(trigger.name, [entry_id], replies=[admitted])
        elif outcome.kind == "retry" and attempt <= trigger.delivery.retry:
            self._retry(entry_id, state, outcome, trigger.subscriber_url)
        else:
            log(logger, logging.WARNING, "delivery failed for good", trigger=trigger.name,
                attempts=attempt, code=outcome.code)
            self._to_dead_letter(entry_id, event, trigger.subscriber_url, outcome.code,
                                 outcome.body)

    def _retry(self, entry_id: str, state: dict, outcome: Outcome, dest: str) -> None:
        attempt = state["attempt"]
        delay = self.trigger.delivery.backoff_s(attempt)
        log(logger, logging.INFO, "attempt failed; retry scheduled", trigger=self.trigger.name,
            phase=state["phase"], attempt=attempt, code=outcome.code, retry_in_s=delay, dest=dest)
        self.queue.schedule(self.trigger.name, entry_id,
                            {**state, "attempt": attempt + 1}, time.time() + delay)

    def _to_dead_letter(self, entry_id: str, event: CloudEvent, dest: str, code: int,
                        body: bytes) -> None:
        state = {"phase": "dead-letter", "attempt": 1,
                 "extensions": error_extensions(dest, code, body)}
        self._dead_letter(entry_id, event, state)

    def _dead_letter(self, entry_id: str, event: CloudEvent, state: dict) -> None:
        trigger = self.trigger
        letter = _with(event, add=state["extensions"])
        sink = trigger.delivery.dead_letter_url
        if sink is None:
            self._park(entry_id, letter, "no deadLetterSink configured")
            return
        outcome = send(sink, letter, timeout_s=trigger.delivery.timeout_s, prefer_reply=False)
        if not outcome.failed:
            BROKER_DEAD_LETTERED.labels(trigger=trigger.name).inc()
            self.queue.finish(trigger.name, [entry_id])
        elif outcome.kind == "retry" and state["attempt"] <= trigger.delivery.retry:
            self._retry(entry_id, state, outcome, sink)
        else:
            self._park(entry_id, letter, f"dead-letter sink {sink} failed: {outcome.code} "
                                         f"{outcome.body[:200]!r}")

    def _park(self, entry_id: str, letter: CloudEvent, note: str) -> None:
        log(logger, logging.ERROR, "event parked in the dead-letter stream",
            trigger=self.trigger.name, note=note)
        BROKER_DEAD_LETTERED.labels(trigger=self.trigger.name).inc()
        self.queue.finish(self.trigger.name, [entry_id], park=dead_letter_fields(letter, note))
