"""What a KADES function is (`Function`) and what its handler may use (`Context`)."""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, TypeVar, Union

import psycopg
from redis import Redis

from kades import clients
from kades.errors import BadRequestError
from kades.events.envelope import BROKER_SPECVERSIONS, CloudEvent
from kades.settings import Settings

if TYPE_CHECKING:
    from kades.runtime.keep import Oversized

# A handler returns its reply, or its reply followed by further events, or nothing.
HandlerResult = Union[CloudEvent, list[CloudEvent], None]
Local = TypeVar("Local")


@dataclass(frozen=True)
class Function:
    """A CloudEvents function: the event types it consumes and its pure-ish handler.

    `consumes=ANY_TYPE` takes every event type and leaves its data unchecked (the
    dead-letter sink must keep what others refused). `identity` says which attributes make
    two deliveries the same event; by default the CloudEvents rule, (source, id).
    `idempotent`: every effect of the handler and every reply is the same whichever delivery
    of an event makes them, and a delivery leaves what the books need to see it handled, so
    the runtime neither claims the event nor marks it done: alert-dispatch's writes are once
    per alert by themselves; temporal-analysis commits its result with its states under the
    event's outbox (`StateStore.update(keep_empty=True)`), which is its done mark, and its
    store waits for the replicas as a done mark would (`StateStore(replicas=...)`).
    `specversions`: the CloudEvents versions it decodes: by default 1.0 and 0.3, as Knative's
    Broker takes both and delivers a 0.3 event as 0.3 (refused, it was dead-lettered).
    `keep_undecodable(ctx, headers, body, error)`: given a request that is no valid event, keep it and say True, instead of a 400
    (the dead-letter sink: a Knative Broker drops what its dead-letter sink refuses).
    `keep_too_large(ctx, headers, body)`: given a body over Settings.max_event_bytes (read up
    to keep.READ_CEILING times that, its head, size and sha256: keep.Oversized), keep it and
    say True, instead of a 413. Either needs `request_identity(headers, body_sha256)`: which
    parts of such a request make two deliveries the same, so that it is kept once
    (kades.runtime.keep).
    """

    name: str
    consumes: tuple[str, ...]
    handle: Callable[[CloudEvent, "Context"], HandlerResult]
    uses_database: bool = False
    identity: Callable[[CloudEvent], str] | None = None
    idempotent: bool = False
    specversions: tuple[str, ...] = BROKER_SPECVERSIONS  # what the Broker passes on
    keep_undecodable: Callable[["Context", Mapping[str, str], bytes, BadRequestError],
                               bool] | None = None
    keep_too_large: Callable[["Context", Mapping[str, str], "Oversized"], bool] | None = None
    request_identity: Callable[[Mapping[str, str], str], str] | None = None

    def __post_init__(self):
        if (self.keep_undecodable or self.keep_too_large) and self.request_identity is None:
            raise ValueError(f"{self.name}: keeping requests undecoded needs request_identity")


ANY_TYPE: tuple[str, ...] = ()


@dataclass
class Context:
    """Per-process resources a handler may use; clients are created on first use.

    A function's own per-process state (its StateStore caches, TtlCaches, a worker thread)
    lives here too, never in module globals: `local(start)`. A fresh Context is a fresh
    process as far as that state goes, which is all a test needs instead of resets.
    """

    name: str
    # Read from the environment when the Context is made: once per process (the entry point
    # makes it at start), and afresh for a fresh app or Context in tests.
    settings: Settings = field(default_factory=Settings.from_env)
    _locals: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _locals_lock: threading.RLock = field(default_factory=threading.RLock, init=False,
                                          repr=False, compare=False)

    def local(self, start: Callable[["Context"], Local]) -> Local:
        """What `start(self)` made the first time this context asked for it, then the same.

        knative/func's Python template is the model: its `start(cfg)` hook makes a
        function's per-process state once. It runs on first use, not when the function's
        module is imported: gunicorn forks after the import, and threads do not survive.
        """
        with self._locals_lock:  # re-entrant: a start hook may ask for another's state
            if start not in self._locals:
                self._locals[start] = start(self)
            return self._locals[start]

    @property
    def source(self) -> str:
        """The CloudEvent `source` of the events this function creates."""
        return f"/kades/{self.name}"

    @property
    def redis(self) -> Redis:
        return clients.redis_client(self.settings)

    @contextlib.contextmanager
    def db(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """A pooled connection inside one transaction, committed when the block ends;
        waited for up to `timeout` s (None: the pool's, database_timeout_s)."""
        with clients.db_pool(self.settings).connection(timeout=timeout) as conn:
            yield conn


def as_event_list(result: HandlerResult) -> list[CloudEvent]:
    if result is None:
        return []
    if isinstance(result, CloudEvent):
        return [result]
    return list(result)
