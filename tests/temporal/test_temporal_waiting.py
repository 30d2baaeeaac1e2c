"""temporal-analysis lists the tokens whose ticks wait in their reorder buffer (for the
stream-flush PingSource) in the same script that commits their state."""
from __future__ import annotations

from kades.keys import TEMPORAL_STATE, TEMPORAL_WAITING
from kades.runtime.reorder import ReorderBuffer, quiet_keys
from kades.runtime.state import StateStore
from kades.temporal.function import analyse_batch, group_ticks

BUFFER = ReorderBuffer(lateness_s=30.0, idle_s=60.0)


def ticks(token: str, seconds: list[int]) -> dict:
    return group_ticks([{"token": token, "price": 1.0 + s / 1000, "volume": 10.0,
                         "time": f"2026-01-01T00:{s // 60:02d}:{s % 60:02d}Z"} for s in seconds])


def test_waiting_tokens_are_listed_with_their_state_and_dropped_once_flushed(redis_conn):
    store = StateStore(ttl_s=600)
    analyse_batch(redis_conn, {**ticks("A", [0, 5]), **ticks("B", [0, 100])}, store=store,
                  buffer=BUFFER, now_s=1000.0)
    # A's two ticks wait (within the lateness); B's first was released by its second
    assert redis_conn.zrange(TEMPORAL_WAITING, 0, -1, withscores=True) == [(b"A", 1000.0),
                                                                           (b"B", 1000.0)]
    assert quiet_keys(redis_conn, TEMPORAL_WAITING, now_s=1059.0, idle_s=60.0) == []
    quiet = quiet_keys(redis_conn, TEMPORAL_WAITING, now_s=1060.0, idle_s=60.0)
    assert sorted(quiet) == ["A", "B"]
    analyse_batch(redis_conn, {token: [] for token in quiet}, store=StateStore(ttl_s=600),
                  buffer=BUFFER, now_s=1060.0)
    assert redis_conn.zcard(TEMPORAL_WAITING) == 0
    state = StateStore(ttl_s=600).current(redis_conn, [TEMPORAL_STATE.format(token="A")])[0]
    assert state["reorder"]["pending"] == [] and state["detector"]["last_time"] is not None


def test_a_retry_that_finds_the_outbox_leaves_the_list_as_the_first_attempt_made_it(redis_conn):
    outbox = "kades:{temporal}:outbox:test"
    first = analyse_batch(redis_conn, ticks("A", [0, 100]), store=StateStore(ttl_s=600),
                          buffer=BUFFER, now_s=1000.0, outbox=outbox)
    assert len(first[1]) == 1  # the tick at 0 scored (an effect, kept); the one at 100 waits
    # run afresh, this retry would release the waiting tick (past the idle timeout)
    again = analyse_batch(redis_conn, ticks("A", [0, 100]), store=StateStore(ttl_s=600),
                          buffer=BUFFER, now_s=5000.0, outbox=outbox)
    assert again == [list(part) for part in first]
    assert redis_conn.zscore(TEMPORAL_WAITING, "A") == 1000.0


def test_a_flush_takes_the_longest_waiting_tokens_a_batch_at_a_time(kades_settings, redis_conn,
                                                                      db_conn, monkeypatch):
    """Each ping flushed every quiet token in one compare-and-set, retried whole on any
    conflict: 2,000 waiting minute-bar tokens took 1.8 s an attempt. FLUSH_BATCH at a time,
    the longest-waiting first, as chain-analysis flushes."""
    import dataclasses
    import time
    from kades.events.catalogue import PING, new_event
    from kades.runtime import Context
    from kades.temporal import function
    monkeypatch.setattr(function, "FLUSH_BATCH", 3)
    for n, token in enumerate("ABCDEFG"):  # A waited longest
        analyse_batch(redis_conn, ticks(token, [0]), store=StateStore(ttl_s=600), buffer=BUFFER,
                      now_s=time.time() - 100 + n)
    ctx = Context("temporal-analysis", settings=dataclasses.replace(kades_settings, reorder_idle_s=0.0))
    ping = new_event(PING, "/apis/v1/namespaces/kades/pingsources/stream-flush", {"job": "flush"})
    function.handle_ticks(ping, ctx)
    assert [t.decode() for t in redis_conn.zrange(TEMPORAL_WAITING, 0, -1)] == list("DEFG")
    function.handle_ticks(new_event(PING, ping.source, {"job": "flush"}), ctx)
    assert [t.decode() for t in redis_conn.zrange(TEMPORAL_WAITING, 0, -1)] == ["G"]
