"""TtlCache: values kept for their time, on an injected clock; a Context owns its own state."""
from __future__ import annotations

import threading

import pytest

from kades.runtime.function import Context
from kades.runtime.ttlcache import TtlCache


def clocked(**kwargs) -> tuple[TtlCache, list[float]]:
    now = [100.0]
    return TtlCache(clock=lambda: now[0], **kwargs), now


def test_a_value_lives_its_ttl_and_no_longer():
    cache, now = clocked(ttl_s=2.0)
    cache.put("k", "v")
    now[0] += 1.999
    assert cache.get("k") == "v"
    now[0] += 0.001
    assert cache.get("k") is None and len(cache) == 0
    assert cache.get("k", "default") == "default"


def test_none_is_remembered_like_any_value():
    cache, _ = clocked(ttl_s=30.0)
    loads = []
    for _ in range(3):
        assert cache.get_or_load("unknown key", lambda: loads.append(1)) is None
    assert loads == [1]


def test_a_value_put_again_starts_its_ttl_again():
    cache, now = clocked(ttl_s=2.0)
    cache.put("k", 1)
    now[0] += 1.5
    cache.put("k", 2)
    now[0] += 1.5
    assert cache.get("k") == 2


def test_the_oldest_entry_goes_first_when_full():
    cache, _ = clocked(ttl_s=60.0, max_entries=3)
    for key in "abcd":
        cache.put(key, key.upper())
    assert [cache.get(k) for k in "abcd"] == [None, "B", "C", "D"]


def test_a_ttl_of_zero_keeps_nothing():
    cache, _ = clocked(ttl_s=0.0)
    loads = []
    cache.get_or_load("k", lambda: loads.append(1))
    cache.get_or_load("k", lambda: loads.append(1))
    assert loads == [1, 1]


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError):
        TtlCache(ttl_s=-1.0)
    with pytest.raises(ValueError):
        TtlCache(ttl_s=1.0, max_entries=0)


def test_threads_share_it_safely():
    cache = TtlCache(ttl_s=60.0, max_entries=50)

    def work(offset: int):
        for i in range(2000):
            cache.put((offset, i % 80), i)
            cache.get((offset, (i + 7) % 80))
    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 50


def start_counter(ctx: Context) -> dict:
    return {"name": ctx.name, "hits": 0}


def test_a_context_makes_its_local_state_once_and_a_new_context_anew(kades_settings):
    ctx = Context("f", settings=kades_settings)
    state = ctx.local(start_counter)
    state["hits"] += 1
    assert ctx.local(start_counter) is state and state == {"name": "f", "hits": 1}
    assert Context("f", settings=kades_settings).local(start_counter) == {"name": "f", "hits": 0}


def test_a_local_is_made_once_under_concurrent_first_use(kades_settings):
    ctx, made = Context("f", settings=kades_settings), []

    def slow_start(_ctx):
        made.append(1)
        threading.Event().wait(0.05)
        return object()
    results = []
    threads = [threading.Thread(target=lambda: results.append(ctx.local(slow_start)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [1] and len({id(r) for r in results}) == 1
