"""One attempt on one queued event of a Trigger, and what follows from its outcome.

- 2xx without body: done.  2xx with an event: the reply gets the delivered event's TTL and
  goes through `ingress.admit` (so it counts down and is routed again) into the lanes it
  matches; a reply refused there (TTL used up) dead-letters the delivered event, with the
  ingress as `knativeerrordest` and 400 as the code, as a Knative reply failure does.
- retryable failure with attempts left: the next attempt is due after the backoff.
- otherwise: dead-letter phase. The event (as received, with TTL and arrival time) plus the
  `knativeerror*` extensions goes to the deadLetterSink (the Trigger's, else the Broker's),
  retried with the same policy; when that sink keeps failing, the event is parked in
  `kades:{broker}:dlq`. With no sink at all the event is lost, as on a cluster, where Knative drops
  it: counted in `kades_broker_lost_total` and logged (`kades manifests` refuses such a
  configuration).
`Attempts.run` finishes the entry in the queue when it is done with it and otherwise
returns the next state (`phase`, `attempt`, `due` epoch seconds) for the caller to keep.
`Attempts.steps` is the same attempt as a generator that yields each HTTP request (a `Send`)
and is sent its `Outcome`: `run` sends them one after another on this thread, the
unordered Triggers' `kades.broker.dispatcher.LaneReader` many at once on one
(`kades.broker.exchanges`).
With an `issuer` (`kades broker --oidc`) every delivery and dead letter carries a token for
its destination's audience, signed as the Trigger (Knative's filter with authentication-oidc).
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from typing import Generator, Iterator, NamedTuple

from kades.broker.chaos import NO_CHAOS, Chaos
from kades.broker.config import Trigger
from kades.broker.delivery import Outcome, error_extensions, send
from kades.broker.ingress import TTL, admit
from kades.broker.queue import BrokerQueue
from kades.broker.policy import Forbidden, refuse
from kades.broker.tokens import LocalIssuer, trigger_subject
from kades.deadletter.store import dead_letter_fields
from kades.errors import InvalidEventError
from kades.events.envelope import BROKER_SPECVERSIONS, CloudEvent, from_structured
from kades.logs import current_event_id, log
from kades.metrics import (
    BROKER_DEAD_LETTERED, BROKER_DELIVERIES, BROKER_DELIVERY_SECONDS, BROKER_LOST)

logger = logging.getLogger("kades.broker.attempts")
FIRST = {"phase": "deliver", "attempt": 1}


def _with(event: CloudEvent, add: dict[str, str] | None = None,
          drop: tuple[str, ...] = ()) -> CloudEvent:
    attributes = {k: v for k, v in event.attributes.items() if k not in drop}
    attributes.update(add or {})
    return CloudEvent(attributes, event.data, _has_data=event.has_data)


class Send(NamedTuple):
    """A request an attempt waits on, as `kades.broker.delivery.send` takes it."""

    url: str
    event: CloudEvent
    timeout_s: float | None
    prefer_reply: bool
    token: str | None
    structured: bool


Steps = Generator[Send, Outcome, "dict | None"]


def _result(outcome: Outcome) -> str:
    return outcome.kind if outcome.kind in ("done", "reply") else f"{outcome.code // 100}xx"


class Attempts:
    def __init__(self, trigger: Trigger, queue: BrokerQueue, *, ingress_url: str,
                 chaos: Chaos = NO_CHAOS, issuer: LocalIssuer | None = None,
                 turns: Iterator[int] | None = None, policies: list | None = None):
        self.trigger, self.queue, self.ingress_url = trigger, queue, ingress_url
        self.chaos, self.issuer = chaos, issuer
        # the Broker's EventPolicies, with sender identity on (None: off): a reply is sent
        # under the Trigger's identity, and refused (403) as the ingress would refuse it
        self.policies = policies
        # Whose turn it is among the replicas; workers share one (next() is atomic).
        self._turns = itertools.count() if turns is None else turns

    def subscriber(self) -> str:
        """The replica this delivery goes to: each in turn, one request each, as Knative's
        activator spreads requests over a Service's pods when their containerConcurrency
        is above 3 (round robin), and its ingress gateway when the activator is not in the
        path. A retry may go to another replica, as on a cluster."""
        urls = self.trigger.replica_urls
        return urls[next(self._turns) % len(urls)] if len(urls) > 1 else urls[0]

    def _token(self, audience: str | None) -> str | None:
        """The Trigger's token for `audience`; none without an issuer or an audience (Knative
        sends none to a destination that announces no audience)."""
        if self.issuer is None or not audience:
            return None
        return self.issuer.token(audience, subject=trigger_subject(self.trigger.namespace,
                                                                   self.trigger.name))

    def run(self, lane: str, entry_id: str, document: dict | None,
            state: dict | None) -> dict | None:
        """Make the next attempt for one entry, its requests sent on this thread; its next
        state, or None when finished."""
        steps = self.steps(lane, entry_id, document, state)
        token = current_event_id.set((document or {}).get("id"))
        try:
            request = next(steps)
            while True:
                request = steps.send(send(request.url, request.event, timeout_s=request.timeout_s,
                                          prefer_reply=request.prefer_reply, token=request.token,
                                          structured=request.structured))
        except StopIteration as finished:
            return finished.value
        finally:
            current_event_id.reset(token)

    def steps(self, lane: str, entry_id: str, document: dict | None,
              state: dict | None) -> Steps:
        """The next attempt for one entry: yields each request, is sent its outcome, and
        returns the entry's next state, or None when finished."""
        name = self.trigger.name
        if document is None:
            log(logger, logging.ERROR, "stream entry vanished before delivery", trigger=name,
                entry=entry_id)
            self.queue.finish(lane, [entry_id])
            return None
        try:
            event = from_structured(document, specversions=BROKER_SPECVERSIONS,
                                    raw_data=True)
        except InvalidEventError as error:  # cannot happen for what ingress queued
            log(logger, logging.ERROR, "unreadable stream entry parked", entry=entry_id,
                problems=str(error.problems))
            self.queue.finish(lane, [entry_id], park={"event": json.dumps(document),
                                                      "time": "", "note": "unreadable"})
            return None
        state = state or FIRST
        if state["phase"] == "deliver":
            return (yield from self._deliver(lane, entry_id, event, state))
        return (yield from self._dead_letter(lane, entry_id, event, state))

    def _deliver(self, lane: str, entry_id: str, event: CloudEvent, state: dict) -> Steps:
        trigger, attempt, url = self.trigger, state["attempt"], self.subscriber()
        started = time.monotonic()
        outcome = yield Send(url, _with(event, drop=(TTL,)), trigger.delivery.timeout_s, True,
                             self._token(trigger.subscriber_audience),
                             trigger.delivery.format == "json")
        BROKER_DELIVERY_SECONDS.labels(trigger=trigger.name).observe(time.monotonic() - started)
        BROKER_DELIVERIES.labels(trigger=trigger.name, result=_result(outcome)).inc()
        copies = [event] if self.chaos.duplicate() else []
        if outcome.kind == "done":
            self.queue.finish(lane, [entry_id], copies=copies)
            return None
        if outcome.kind == "refused":  # the reply the ingress refuses: no retry
            return (yield from self._to_dead_letter(lane, entry_id, event, self.ingress_url,
                                                    outcome.code, outcome.body))
        if outcome.kind == "reply":
            reply = _with(outcome.reply, add={TTL: event.get(TTL, "1")})
            try:
                admitted = admit(reply)
            except InvalidEventError as error:
                body = json.dumps(error.as_body()).encode()
                return (yield from self._to_dead_letter(lane, entry_id, event, self.ingress_url,
                                                        400, body))
            if self.policies is not None:
                try:
                    refuse(trigger_subject(trigger.namespace, trigger.name), [reply],
                           trigger.namespace, self.policies)
                except Forbidden as error:  # not retried: a 403 is no temporary failure
                    return (yield from self._to_dead_letter(lane, entry_id, event, self.ingress_url,
                                                            403, str(error).encode()))
            self.queue.finish(lane, [entry_id], replies=[admitted], copies=copies)
            return None
        if outcome.kind == "retry" and attempt <= trigger.delivery.retry:
            return self._retry(state, outcome, url)
        log(logger, logging.WARNING, "delivery failed for good", trigger=trigger.name,
            attempts=attempt, code=outcome.code)
        return (yield from self._to_dead_letter(lane, entry_id, event, url, outcome.code,
                                                outcome.body))

    def _retry(self, state: dict, outcome: Outcome, dest: str) -> dict:
        attempt = state["attempt"]
        delay = self.trigger.delivery.backoff_s(attempt)
        log(logger, logging.INFO, "attempt failed; retry scheduled", trigger=self.trigger.name,
            phase=state["phase"], attempt=attempt, code=outcome.code, retry_in_s=delay, dest=dest)
        return {**state, "attempt": attempt + 1, "due": time.time() + delay}

    def _to_dead_letter(self, lane: str, entry_id: str, event: CloudEvent, dest: str, code: int,
                        body: bytes) -> Steps:
        state = {"phase": "dead-letter", "attempt": 1,
                 "extensions": error_extensions(dest, code, body)}
        return (yield from self._dead_letter(lane, entry_id, event, state))

    def _dead_letter(self, lane: str, entry_id: str, event: CloudEvent, state: dict) -> Steps:
        trigger = self.trigger
        letter = _with(event, add=state["extensions"])
        sink = trigger.delivery.dead_letter_url
        if sink is None:
            return self._lose(lane, entry_id, letter)
        outcome = yield Send(sink, letter, trigger.delivery.timeout_s, False,
                             self._token(trigger.delivery.dead_letter_audience),
                             trigger.delivery.format == "json")
        if not outcome.failed:
            BROKER_DEAD_LETTERED.labels(trigger=trigger.name).inc()
            self.queue.finish(lane, [entry_id])
            return None
        if outcome.kind == "retry" and state["attempt"] <= trigger.delivery.retry:
            return self._retry(state, outcome, sink)
        return self._park(lane, entry_id, letter, f"dead-letter sink {sink} failed: "
                                                  f"{outcome.code} {outcome.body[:200]!r}")

    def _lose(self, lane: str, entry_id: str, letter: CloudEvent) -> None:
        log(logger, logging.ERROR, "event lost: it failed for good and neither the Trigger nor "
            "its Broker has a deadLetterSink", trigger=self.trigger.name, type=letter.type,
            source=letter.source, code=letter.get("knativeerrorcode"),
            dest=letter.get("knativeerrordest"))
        BROKER_LOST.labels(trigger=self.trigger.name).inc()
        self.queue.finish(lane, [entry_id])
        return None

    def _park(self, lane: str, entry_id: str, letter: CloudEvent, note: str) -> None:
        log(logger, logging.ERROR, "event parked in the dead-letter stream",
            trigger=self.trigger.name, note=note)
        BROKER_DEAD_LETTERED.labels(trigger=self.trigger.name).inc()
        self.queue.finish(lane, [entry_id], park=dead_letter_fields(letter, note))
        return None
