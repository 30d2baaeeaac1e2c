"""Nothing lost, nothing counted twice: the books of one run.

For every event the broker accepted (seen by the accounting tap) and every Trigger it
matches, the Trigger's function must hold a "done" dedup mark for it (handled, once: a
redelivery is answered from that mark) -- or, for a function that takes no claim, what it
writes for the event (HANDLED_BY_EFFECT, HANDLED_BY_OUTBOX) -- or the dead-letter store must hold it with that
destination and the reason. Every posted input must be among the accepted events, the
broker's lanes must be empty (nothing stuck), and no anomaly may be stored twice under two
event ids. The first `settle` also gives the time at which everything was done.
"""
from __future__ import annotations

import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

import psycopg
import redis

from kades.broker.config import load_eventing
from kades.broker.filters import matches
from kades.deadletter.store import list_dead_letters
from kades.events.envelope import CloudEvent
from kades.keys import dedup_key, outbox_key
from kades.registry import FUNCTIONS, load
from kades.runtime import dedup

DUPLICATE_ROW_CHECKS = {
    "anomaly_events": "SELECT count(*) - count(DISTINCT (time, token, anomaly_type, detector,"
                      " anomaly_key)) FROM anomaly_events",
    "webhook_deliveries": "SELECT count(*) - count(DISTINCT (webhook_id, alert_id))"
                          " FROM webhook_deliveries",
    "alerts": "SELECT count(*) - count(DISTINCT (event_source, event_id)) FROM alerts",
}
# A function that takes no dedup claim (Function.idempotent: each of its writes is once per
# event by itself) leaves no done mark: a delivery to it is handled when what it writes for
# the event is there, read here as (event source, event id) pairs. Every such function must
# be named (close_books refuses one that is not).
HANDLED_BY_EFFECT = {
    "alert-dispatch": "SELECT event_source, event_id FROM alerts",
}
# ... or the event's outbox, committed with its states (StateStore.update(keep_empty=True)).
HANDLED_BY_OUTBOX = {"temporal-analysis"}


@dataclass
class Books:
    posted: int = 0
    accepted: int = 0
    deliveries: int = 0                       # (event, Trigger) pairs owed
    handled: int = 0
    dead_lettered: int = 0
    dead_letter_reasons: Counter = field(default_factory=Counter)
    lost_inputs: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    backlog: int = 0                          # entries still in the broker's lanes
    duplicate_rows: dict[str, int] = field(default_factory=dict)
    by_type: Counter = field(default_factory=Counter)

    @property
    def balanced(self) -> bool:
        return (not self.lost_inputs and not self.unfinished and self.backlog == 0
                and not any(self.duplicate_rows.values())
                and self.handled + self.dead_lettered == self.deliveries)

    def summary(self) -> str:
        return (f"posted {self.posted}, accepted {self.accepted} (with replies), "
                f"{self.deliveries} deliveries owed: {self.handled} handled once, "
                f"{self.dead_lettered} dead-lettered, {len(self.unfinished)} unfinished, "
                f"{len(self.lost_inputs)} inputs lost, backlog {self.backlog}, "
                f"duplicate rows {sum(self.duplicate_rows.values())}")


class Ledger:
    """Who should handle what: the Triggers of the mesh, by function name."""

    def __init__(self, mesh):
        self.mesh = mesh
        eventing = load_eventing(mesh.root / "eventing",
                                 env={f"KADES_PORT_{n.upper().replace('-', '_')}": str(p)
                                      for n, p in mesh.ports.items()})
        by_port = {port: name for name, port in mesh.ports.items()}
        self.triggers = []  # (filter, function name, subscriber url)
        for trigger in eventing.triggers:
            port = urllib.parse.urlsplit(trigger.subscriber_url).port
            if port in by_port:
                self.triggers.append((trigger.filter, by_port[port], trigger.subscriber_url))

    def owed(self, event: CloudEvent) -> list[tuple[str, str]]:
        """(function, subscriber url) of every Trigger this event matches."""
        return [(name, url) for compiled, name, url in self.triggers
                if matches(compiled, event.attributes)]


def dead_letters(client: redis.Redis) -> dict[tuple[str, str, str], str]:
    """(source, id, destination) -> reason (the status code the destination answered)."""
    out = {}
    for letter in list_dead_letters(client):
        event = letter.event
        if event is None:  # unreadable: counted under its stream id, so the books show it
            out[("?", letter.id, "")] = f"unreadable: {letter.unreadable}"
            continue
        out[(event.source, event.id, event.get("knativeerrordest", ""))] = (
            event.get("knativeerrorcode") or letter.note or "unknown")
    return out


def broker_backlog(client: redis.Redis, trigger_prefix: str = "") -> int:
    """Entries in the broker's lanes (of the Triggers whose names start with the prefix)."""
    return sum(client.xlen(key)
               for key in client.scan_iter(f"kades:{{broker}}:*:lane:{trigger_prefix}*", count=500)
               if client.type(key) == b"stream")


def mark_states(client: redis.Redis, keys: list[str]) -> list[bytes | None]:
    """The done marks' (or outboxes') values, one GET each: the marks have no common hash
    tag, and on a Redis Cluster an MGET of keys in several slots is refused."""
    states = []
    for start in range(0, len(keys), 1000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start:start + 1000]:
            pipe.get(key)
        states += pipe.execute()
    return states


def close_books(ledger: Ledger, client: redis.Redis, database_url: str,
                posted: list[CloudEvent], *, broker_client: redis.Redis | None = None) -> Books:
    """The books: done marks read in `client` (the functions' Redis), the broker's lanes and
    the dead letters it parked in `broker_client` when the broker keeps its queue apart."""
    books = Books(posted=len(posted))
    accepted = ledger.mesh.tap.snapshot()
    books.accepted = len(accepted)
    books.lost_inputs = [f"{e.type} {e.source} {e.id}" for e in posted
                         if (e.source, e.id) not in accepted]
    owed = [(event, name, url) for event, _ in accepted.values()
            for name, url in ledger.owed(event)]
    books.deliveries = len(owed)
    states = mark_states(client, [outbox_key(name, event.source, event.id)
                                  if name in HANDLED_BY_OUTBOX
                                  else dedup_key(name, dedup.source_and_id(event))
                                  for event, name, _ in owed])
    parked = dead_letters(client)
    if broker_client is not None:
        parked |= dead_letters(broker_client)
    unaccounted = {name for _, name, _ in owed
                   if name in FUNCTIONS and load(name).idempotent} - HANDLED_BY_EFFECT.keys(
                   ) - HANDLED_BY_OUTBOX
    assert not unaccounted, (f"no way to tell what {sorted(unaccounted)} handled: "
                             "HANDLED_BY_EFFECT or HANDLED_BY_OUTBOX")
    with psycopg.connect(database_url) as conn:
        written = {name: set(conn.execute(query).fetchall())
                   for name, query in HANDLED_BY_EFFECT.items()}
    for (event, name, url), state in zip(owed, states):
        books.by_type[event.type] += 1
        if ((event.source, event.id) in written[name] if name in written
                else state is not None if name in HANDLED_BY_OUTBOX
                else dedup.is_done(state)):
            books.handled += 1
        elif (event.source, event.id, url) in parked:
            books.dead_lettered += 1
            books.dead_letter_reasons[f"{name}: {parked[(event.source, event.id, url)]}"] += 1
        else:
            books.unfinished.append(f"{name} {event.type} {event.source} {event.id}")
    books.backlog = broker_backlog(broker_client or client)
    with psycopg.connect(database_url) as conn:
        books.duplicate_rows = {table: conn.execute(query).fetchone()[0]
                                for table, query in DUPLICATE_ROW_CHECKS.items()}
    return books


def settle(ledger: Ledger, client: redis.Redis, database_url: str, posted: list[CloudEvent],
           *, timeout_s: float = 120, quiet_s: float = 2.0,
           broker_client: redis.Redis | None = None) -> tuple[Books, float]:
    """Wait until the books balance and the tap is quiet; (books, seconds it took)."""
    began = time.monotonic()
    deadline, last_count, quiet_since = began + timeout_s, -1, time.monotonic()
    while True:
        books = close_books(ledger, client, database_url, posted, broker_client=broker_client)
        if books.accepted != last_count:
            last_count, quiet_since = books.accepted, time.monotonic()
        done = books.balanced and time.monotonic() - quiet_since >= quiet_s
        if done or time.monotonic() > deadline:
            return books, time.monotonic() - began
        time.sleep(0.5)
