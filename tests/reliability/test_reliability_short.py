"""The short form of `make reliability`: a seeded mixed stream through the whole mesh while
one function process is killed (SIGKILL) with an event in hand and started again; then the
books must balance: every accepted event handled once by every Trigger it matched, or
dead-lettered with its reason; no input lost, nothing stuck, no duplicate rows. The events it
had in hand are taken over by the broker's retry once their claim's lease runs out."""
from __future__ import annotations

import time

import psycopg
import pytest

from accounting import Ledger, close_books, settle
from load import Load, Tracker
from kades.keys import dedup_key
from kades.runtime import dedup
from kades.simulate.story import demo_story

pytestmark = pytest.mark.slow
VICTIM = "chain-analysis"  # chain blocks are most of the stream


def test_nothing_lost_nothing_twice_when_a_function_is_killed(mesh, redis_conn):
    story = demo_story(seed=8, minutes=2)
    ledger = Ledger(mesh)
    load = Load(mesh.ingress, iter(story.events), rate_per_s=40).start()
    tracker = Tracker(ledger, redis_conn, load).start()
    while len(load.accepted) < len(story.events) // 3:
        time.sleep(0.1)
    orphans = mesh.kill_mid_event(VICTIM)
    assert orphans  # it died with an event in hand
    killed_at = time.monotonic()
    time.sleep(1.0)
    mesh.restart(VICTIM)
    restarted_s = time.monotonic() - killed_at
    assert load.wait(timeout_s=60)
    books, settle_s = settle(ledger, redis_conn, mesh.config.database_url, story.events)
    tracker.stop()
    print(f"\nkilled {VICTIM} with {len(orphans)} events in hand, back after {restarted_s:.1f} "
          f"s; settled {settle_s:.1f} s after the last post\n{books.summary()}\n"
          f"latency {tracker.percentiles()}, refused posts {dict(load.refusals)}")
    assert books.posted == len(story.events) and not load.rejected
    assert books.balanced, (books.summary(), books.unfinished[:5], books.lost_inputs[:5])
    assert books.handled > books.posted  # replies were accounted for too
    # Every claim the dead process held became a done mark: the retry handled its events.
    assert orphans and all(dedup.is_done(redis_conn.get(key)) for key in orphans)

    # The books can fail: forget one handled delivery, store one anomaly twice.
    event = story.events[0]
    name, _ = ledger.owed(event)[0]
    redis_conn.delete(dedup_key(name, dedup.source_and_id(event)))
    with psycopg.connect(mesh.config.database_url) as conn:
        conn.execute("INSERT INTO anomaly_events (time, token, anomaly_type, score, detector,"
                     " event_source, event_id) VALUES (now(), 'T', 'pump', 0.5, 'd', '/s', 'a'),"
                     " (now(), 'T', 'pump', 0.5, 'd', '/s', 'b')")
    expected, deadline = [f"{name} {event.type} {event.source} {event.id}"], time.monotonic() + 30
    while True:  # a PingSource's ping accepted since the books balanced may still be in flight
        broken = close_books(ledger, redis_conn, mesh.config.database_url, story.events)
        if broken.unfinished == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not broken.balanced
    assert broken.unfinished == expected
    assert broken.duplicate_rows["anomaly_events"] == 1
