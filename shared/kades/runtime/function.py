"""What a KADES function is (`Function`) and what its handler may use (`Context`)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Union

import psycopg
from redis import Redis

from kades import clients
from kades.events.envelope import CloudEvent
from kades.settings import Settings, settings

# A handler returns its reply, or its reply followed by further events, or nothing.
HandlerResult = Union[CloudEvent, list[CloudEvent], None]


@dataclass(frozen=True)
class Function:
    """A CloudEvents function: the event types it consumes and its pure-ish handler.

    `consumes=ANY_TYPE` takes every event type and leaves its data unchecked (the
    dead-letter sink must keep what others refused). `identity` says which attributes make
    two deliveries the same event; by default the CloudEvents rule, (source, id).
    """

    name: str
    consumes: tuple[str, ...]
    handle: Callable[[CloudEvent, "Context"], HandlerResult]
    uses_database: bool = False
    identity: Callable[[CloudEvent], str] | None = None


ANY_TYPE: tuple[str, ...] = ()


@dataclass
class Context:
    """Per-process resources a handler may use; clients are created on first use."""

    name: str
    settings: Settings = field(default_factory=settings)

    @property
    def source(self) -> str:
        """The CloudEvent `source` of the events this function creates."""
        return f"/kades/{self.name}"

    @property
    def redis(self) -> Redis:
        return clients.redis_client(self.settings)

    @contextlib.contextmanager
    def db(self) -> Iterator[psycopg.Connection]:
        """A pooled connection inside one transaction, committed when the block ends."""
        with clients.db_pool(self.settings).connection() as conn:
            yield conn


def as_event_list(result: HandlerResult) -> list[CloudEvent]:
    if result is None:
        return []
    if isinstance(result, CloudEvent):
        return [result]
    return list(result)
