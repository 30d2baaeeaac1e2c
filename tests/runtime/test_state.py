"""StateStore: optimistic, cached, atomic updates of JSON state on real Redis."""
from __future__ import annotations

import json
import threading
import time

from kades.runtime.state import KeyTurns, StateStore, by_key

# One hash tag: the keys of one update share a slot, as they must on Redis Cluster
# (KADES_TEST_REDIS_CLUSTER=1 runs these there).
A, B, C = "{t}a", "{t}b", "{t}c"


def add(amount):
    def compute(states):
        new = [{"n": (s or {"n": 0})["n"] + amount} for s in states]
        return new, [s["n"] for s in new]
    return compute


def test_update_writes_every_key_with_a_ttl(redis_conn):
    store = StateStore(ttl_s=60)
    assert store.update(redis_conn, [A, B], add(2)) == [2, 2]
    assert json.loads(redis_conn.get(A)) == {"n": 2}
    assert 0 < redis_conn.ttl(B) <= 60


def test_a_compute_by_key_reads_and_writes_each_state_under_its_own_key(redis_conn):
    redis_conn.set(B, json.dumps({"n": 7}))
    store = StateStore(ttl_s=60)

    def compute(docs):
        return {A: {"n": 1}, B: {"n": docs[B]["n"] + 1}}, sorted(docs)
    assert store.update(redis_conn, [B, A], by_key([B, A], compute)) == [A, B]
    assert json.loads(redis_conn.get(A)) == {"n": 1} and json.loads(redis_conn.get(B)) == {"n": 8}


def test_a_write_by_another_replica_is_seen_through_the_cache(redis_conn):
    store = StateStore(ttl_s=60)
    store.update(redis_conn, [A], add(1))          # cached: n = 1
    redis_conn.set(A, json.dumps({"n": 10}))       # another replica moved it on
    assert store.update(redis_conn, [A], add(1)) == [11]


def test_a_state_that_vanished_is_not_taken_from_the_cache(redis_conn):
    store = StateStore(ttl_s=60)
    store.update(redis_conn, [A], add(5))
    redis_conn.delete(A)                            # expired or reset
    calls = []

    def unchanged(states):
        calls.append(states)
        return [s or {"n": 0} for s in states], None
    store.update(redis_conn, [A], unchanged)
    assert calls[-1] == [None]                        # recomputed from the real (absent) state


def test_two_stores_never_lose_an_update(redis_conn):
    first, second = StateStore(ttl_s=60), StateStore(ttl_s=60)
    for _ in range(20):
        first.update(redis_conn, ["counter"], add(1))
        second.update(redis_conn, ["counter"], add(1))
    assert json.loads(redis_conn.get("counter")) == {"n": 40}


def test_threads_of_one_process_share_the_store_safely(redis_conn):
    import threading
    store, errors = StateStore(ttl_s=60, cache_bytes=40), []

    def work():
        from kades.errors import TemporaryFailure
        try:
            for _ in range(100):
                while True:  # under heavy contention a 503 is fine: the Broker would retry
                    try:
                        store.update(redis_conn, [A, B, C], add(1))
                        break
                    except TemporaryFailure:
                        continue
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [json.loads(redis_conn.get(k)) for k in (A, B, C)] == [{"n": 400}] * 3


def test_threads_of_one_process_take_turns_on_a_key_and_compute_each_update_once(redis_conn):
    """8 threads update two keys (in either order) and a key of their own; each compute
    waits 5 ms, as a real one lets go of the GIL. Without the per-key locks, threads that
    read the same state computed and committed in turn, and all but one computed again."""
    store, computed, errors = StateStore(ttl_s=60), [], []

    def work(index: int) -> None:
        keys = [A, B] if index % 2 else [B, A]
        try:
            for _ in range(5):
                def compute(states):
                    computed.append(index)
                    time.sleep(0.005)
                    return add(1)(states)
                store.update(redis_conn, [*keys, f"{{t}}own{index}"], compute)
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)
    # daemons: a thread stuck in a turn must not keep pytest from exiting after the failure
    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and not any(thread.is_alive() for thread in threads)
    assert [json.loads(redis_conn.get(k)) for k in (A, B)] == [{"n": 40}] * 2
    assert len(computed) == 40  # once per update: no lost commit, none computed again


def test_threads_taking_turns_on_keys_in_either_order_are_never_inside_together():
    """KeyTurns alone: whatever order an update names its keys in, it takes their locks in
    one order, so no two threads wait for each other in a circle (which, after the turns'
    wait, would show as two threads inside at once) and a key has one thread at a time."""
    turns, inside, overlaps = KeyTurns(), {A: 0, B: 0}, []

    def work(keys: list[str]) -> None:
        for _ in range(50):
            if overlaps:  # failed already: no more waits of the turns' to sit out
                return
            with turns.held(keys):
                for key in keys:
                    inside[key] += 1
                time.sleep(0.0002)  # lets the others run
                overlaps.extend(key for key in keys if inside[key] != 1)
                for key in keys:
                    inside[key] -= 1
    threads = [threading.Thread(target=work, args=([A, B] if i % 2 else [B, A],), daemon=True)
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert overlaps == [] and not any(thread.is_alive() for thread in threads)


def test_an_update_stuck_in_its_turn_holds_the_next_on_its_keys_up_for_the_wait_only():
    """An update stuck on Redis keeps its turns until its timeout: the next on its keys goes
    ahead after `wait_s` without the turns (the compare-and-set keeps it right), rather than
    every update in line waiting out the timeouts of all those ahead of it."""
    turns, holding, stuck = KeyTurns(wait_s=0.2), threading.Event(), threading.Event()

    def hold() -> None:
        with turns.held([A]):
            holding.set()
            stuck.wait(30)
    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(30)
    started = time.monotonic()
    with turns.held([B, A]):  # A's turn never comes (B's, taken first or not, is given back)
        waited = time.monotonic() - started
    stuck.set()
    holder.join(timeout=30)
    assert 0.15 <= waited < 5 and not holder.is_alive()


def test_the_cache_stays_within_its_byte_budget_and_keeps_the_recent_keys(redis_conn, monkeypatch):
    store = StateStore(ttl_s=60, cache_bytes=2_000)
    big = lambda states: ([{"pad": "x" * 300}], None)  # noqa: E731 - ~310 bytes a state
    for n in range(20):
        store.update(redis_conn, [f"token:{n}"], big)
        assert store.cached_bytes <= 2_000
    assert store.cached_bytes > 1_500  # filled, not emptied
    calls = []
    original = redis_conn.mget
    monkeypatch.setattr(redis_conn, "mget", lambda keys: calls.append(keys) or original(keys))
    store.update(redis_conn, ["token:19"], big)  # recent: served from the cache
    store.update(redis_conn, ["token:0"], big)   # evicted long ago: read from Redis
    assert calls == [["token:0"]]
    store.forget()
    assert store.cached_bytes == 0


def test_a_state_reads_back_as_it_was_written_whatever_json_it_needs(redis_conn):
    """The store writes orjson's JSON where it reads back as the state, the stdlib's where it
    would not: NaN and Infinity (orjson writes null), an int past 64 bits (orjson refuses it,
    and reads one as a float), a key that is not a string. A fresh store (another replica)
    reads each as the stdlib's json would."""
    states = {"{t}plain": {"text": "mañana", "x": 0.1, "n": [1, None, True]},
              "{t}nan": {"x": float("nan"), "y": float("inf"), "z": -float("inf")},
              "{t}big": {"n": 2 ** 70, "m": -(2 ** 64)},
              "{t}keys": {1: "one", "ok": (1, 2)}}
    StateStore(ttl_s=60).update(redis_conn, list(states), lambda _: (list(states.values()), None))
    stored = {key: redis_conn.get(key) for key in states}
    assert "ñ".encode() in stored["{t}plain"]  # orjson's UTF-8, where json writes \u00f1
    read = StateStore(ttl_s=60).current(redis_conn, list(states))
    stdlib = [json.loads(stored[key]) for key in states]
    assert json.dumps(read) == json.dumps(stdlib)  # NaN == NaN as text, types and all
    assert read[2]["n"] == 2 ** 70 and type(read[2]["m"]) is int
    assert read[1]["y"] == float("inf") and read[1]["x"] != read[1]["x"]
    assert read[3] == {"1": "one", "ok": [1, 2]}
