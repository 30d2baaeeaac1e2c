"""Webhook delivery: claim due deliveries, POST them signed, in parallel, record the outcome.

A failed attempt (network error, timeout, any non-2xx answer) is retried after
`base_delay_s * 2 ** (attempts - 1)` (capped at `max_delay_s`), or later when the receiver's
`Retry-After` asks it (within the same cap); after `max_attempts` (about 4 hours of
retries) the delivery is dead (kept in webhook_deliveries with its last status and error),
and at once when the receiver answers 410 Gone. Each
delivery runs in its own worker thread with one deadline for its whole exchange
(`webhook_http`), and only the answer's status is read, never its body: one slow or endless
receiver holds the others back for `timeout_s` at most, and its answer's size costs nothing.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Callable, ContextManager, NamedTuple

import httpx
import psycopg
from psycopg_pool import PoolClosed

from kades.alerts.destinations import url_problem
from kades.alerts.signing import signature_headers
from kades.alerts.webhook_http import deadline
from kades.logs import log
from kades.metrics import WEBHOOK_DELIVERIES
from kades.storage import webhooks as store

logger = logging.getLogger("kades.alerts")


SENDERS = 16  # webhook deliveries a worker sends at once


@dataclass(frozen=True)
class RetryPolicy:
    """Retries after 1, 2, 4 ... s, then hourly: 16 attempts span about 4 hours, so a receiver
    down through a deploy or an evening gets its alerts (8 attempts, capped at 10 minutes,
    gave up after 2 minutes)."""

    max_attempts: int = 16
    base_delay_s: float = 1.0
    max_delay_s: float = 3600.0
    timeout_s: float = 5.0

    def delay_after(self, attempts: int, asked_s: float | None = None) -> float:
        """The wait before the next attempt: the backoff, or the receiver's `Retry-After`
        where longer; `max_delay_s` at most."""
        backoff = self.base_delay_s * 2 ** max(0, attempts - 1)
        return min(self.max_delay_s, max(backoff, asked_s or 0.0))


class Outcome(NamedTuple):
    """How one attempt went: the HTTP status (None: no answer), the error (None: delivered),
    and the wait the receiver asked for (`Retry-After`, in seconds; None when it asked none)."""

    status: int | None
    error: str | None
    retry_after_s: float | None = None


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` header's wait in seconds (RFC 9110 §10.2.3: delay-seconds or an
    HTTP-date); None when absent or unreadable.

    >>> retry_after_s("120"), retry_after_s("Sun, 06 Dec 2026 08:00:00 GMT", now=1796544000.0 - 30)
    (120.0, 30.0)
    >>> retry_after_s("soon"), retry_after_s(None), retry_after_s("\u00b2")
    (None, None, None)
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # ("²".isdigit() too, which float() refuses)
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None  # not an HTTP-date (which is always GMT)
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def attempt(client: httpx.Client, delivery: dict, policy: RetryPolicy) -> Outcome:
    """POST one delivery. A URL no client can use (registered before registration refused
    such URLs) is not tried: its attempt fails, and a parse error never ends the round of the
    other deliveries. Where the name resolves to a private address, the client refuses to
    connect (webhook_client, unless it allows private addresses)."""
    if unusable := url_problem(delivery["url"]):
        return Outcome(None, f"refused: {unusable}")
    body = json.dumps(delivery["payload"], separators=(",", ":")).encode()
    # The delivery id is the Standard Webhooks `webhook-id` (signed); X-KADES-Delivery: v1's name.
    headers = {"Content-Type": "application/json", "User-Agent": "kades-alert-dispatch",
               "X-KADES-Delivery": str(delivery["id"]),
               **signature_headers(delivery["secret"], body, delivery_id=str(delivery["id"]))}
    try:
        with deadline(policy.timeout_s), client.stream(
                "POST", delivery["url"], content=body, headers=headers,
                timeout=policy.timeout_s) as response:
            status = response.status_code  # the body is never read: a 1 GB one cost 1 GB
            retry_after = response.headers.get("retry-after")
    except httpx.HTTPError as error:
        return Outcome(None, f"{type(error).__name__}: {error}"[:500])
    if 200 <= status < 300:
        return Outcome(status, None)
    return Outcome(status, f"answered {status}", retry_after_s(retry_after))


def deliver_due(connect: Callable[[], ContextManager[psycopg.Connection]], client: httpx.Client,
                *, policy: RetryPolicy = RetryPolicy(), limit: int = 50,
                pool: ThreadPoolExecutor | None = None) -> dict[str, int]:
    """One round: claim what is due, send it, record it; counts by outcome."""
    with connect() as conn:
        claimed = store.claim_due(conn, limit=limit, lease_s=lease_s(policy, limit))
    counts = {"delivered": 0, "retry": 0, "dead": 0}
    if not claimed:
        return counts
    # An attempt whose outcome was never recorded (its process died mid-send) is claimed
    # again after its lease, counting one attempt more: past max_attempts it is dead, or a
    # delivery that kills its process would be claimed, and kill it, for ever.
    spent = {d["id"]: (d["attempts"], "webhook deleted" if d["webhook_deleted"] else
                       "attempts ended without an outcome recorded")
             for d in claimed if d["webhook_deleted"] or d["attempts"] > policy.max_attempts}
    live = [d for d in claimed if d["id"] not in spent]
    with connect() as conn:
        for delivery_id, (attempts, why) in spent.items():
            store.record_attempt(conn, delivery_id, attempts, status="dead", http_status=None,
                                 error=why, retry_in_s=None)
            counts["dead"] += 1
            WEBHOOK_DELIVERIES.labels("dead").inc()
    own_pool = pool is None
    pool = pool or ThreadPoolExecutor(max_workers=min(SENDERS, len(live) or 1))
    try:
        sent = {pool.submit(attempt, client, d, policy): d for d in live}
        # Each outcome recorded as it comes: recorded once the round's slowest receiver had
        # answered, a delivery answered 200 at once outlived its lease behind a receiver
        # trickling its answer, and another replica claimed and sent it again.
        for done in as_completed(sent):
            outcome = _record(connect, sent[done], _outcome_of(done), policy)
            counts[outcome] += 1
    finally:
        if own_pool:
            pool.shutdown(wait=False)
    return counts


def lease_s(policy: RetryPolicy, claimed: int) -> float:
    """How long a round's claims are held: until its last attempt has ended, each bounded by
    the policy's deadline, `claimed` of them sent SENDERS at a time (and a deadline more, and
    5 s, to record it). Two deadlines and 5 s, for 50 claimed: behind slow receivers the last
    ones were sent after their lease ran out, when another replica had claimed and sent them."""
    return policy.timeout_s * (-(-claimed // SENDERS) + 1) + 5


def _outcome_of(done: Future) -> Outcome:
    """The attempt's outcome; a bug in one attempt fails that one alone (logged whole), where
    its exception ended the round and left the others' outcomes unrecorded, to be sent
    again once their lease ran out."""
    try:
        return done.result()
    except Exception as error:  # noqa: BLE001 -- a bug: logged with its traceback, retried
        logger.exception("webhook delivery: the attempt failed")
        return Outcome(None, f"internal error: {type(error).__name__}")


def _record(connect, delivery: dict, result: Outcome, policy: RetryPolicy) -> str:
    """Record one attempt (committed at once); its outcome."""
    if result.error is None:
        outcome = "delivered"
    elif delivery["attempts"] >= policy.max_attempts or result.status == 410:
        outcome = "dead"  # 410 Gone: the receiver says the endpoint will not come back
    else:
        outcome = "retry"
    error = result.error
    with connect() as conn:
        recorded = store.record_attempt(
            conn, delivery["id"], delivery["attempts"],
            status="pending" if outcome == "retry" else outcome, http_status=result.status,
            error=error, retry_in_s=policy.delay_after(delivery["attempts"], result.retry_after_s))
    if not recorded:  # its lease ran out and another claim has it: that one's outcome stands
        log(logger, logging.WARNING, "webhook delivery claimed again before its outcome was "
            "recorded", delivery=delivery["id"], attempts=delivery["attempts"], outcome=outcome)
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    if outcome == "dead":
        log(logger, logging.WARNING, "webhook delivery dead-lettered",
            delivery=delivery["id"], attempts=delivery["attempts"], error=error)
    return outcome


_workers: weakref.WeakSet[DeliveryWorker] = weakref.WeakSet()  # every running one


def stop_all() -> None:
    """Stop every delivery worker of the process (it is ending): one left running would
    open a new database pool to a server that is gone, and warn until the process exits."""
    for worker in list(_workers):
        worker.stop()


class DeliveryWorker:
    """A daemon thread that delivers due webhooks every `interval_s` (sooner when woken)."""

    def __init__(self, connect, client: httpx.Client, *, policy: RetryPolicy = RetryPolicy(),
                 interval_s: float = 0.5):
        self._connect, self._client, self._policy = connect, client, policy
        self._interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="webhook")
        self._thread = threading.Thread(target=self._run, name="webhook-worker", daemon=True)
        self._thread.start()
        _workers.add(self)

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        _workers.discard(self)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                counts = deliver_due(self._connect, self._client, policy=self._policy,
                                     pool=self._pool)
            except PoolClosed:  # the process closed its connections: it is shutting down
                return
            except (psycopg.OperationalError, psycopg.errors.AdminShutdown) as error:
                # The database is away: nothing can be claimed or recorded; try again soon.
                log(logger, logging.WARNING, "webhook worker: database unavailable",
                    error=str(error))
                counts = {}
            except Exception:  # a bug must not end the deliveries silently: log it, go on
                logger.exception("webhook worker: a round failed")
                counts = {}
            if not any(counts.values()):
                self._wake.wait(self._interval_s)
                self._wake.clear()
