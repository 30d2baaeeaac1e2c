"""`TtlCache`: values a process remembers for a while (verified API keys, a Redis read, the
live webhooks). The one such cache of KADES; each function owns its own on its Context.

Thread-safe (a function serves requests on several threads), timed by a monotonic clock (a
wall-clock step must not keep or drop entries), with the clock injectable so tests step time
instead of sleeping. Bounded in entries: the oldest goes first. `None` is a value like any
other (an unknown API key is remembered as unknown).

>>> now = [0.0]
>>> cache = TtlCache(ttl_s=30.0, clock=lambda: now[0])
>>> cache.get_or_load("key", lambda: "looked up")
'looked up'
>>> cache.get_or_load("key", lambda: "looked up again")
'looked up'
>>> now[0] = 30.0
>>> cache.get("key") is None
True
>>> cache.put("other", 1); now[0] = 60.0; cache.put("newest", 2); len(cache)  # expired: gone
1
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

Value = TypeVar("Value")
_ABSENT = object()


class TtlCache(Generic[Value]):
    """Key -> value for `ttl_s` seconds after it was put; at most `max_entries` keys."""

    def __init__(self, *, ttl_s: float, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        if ttl_s < 0 or max_entries < 1:
            raise ValueError("ttl_s must be >= 0 and max_entries >= 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Value]] = OrderedDict()

    def get(self, key: Hashable, default=None):
        """The value put under `key` less than `ttl_s` ago, else `default`."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            if now - entry[0] >= self.ttl_s:
                del self._entries[key]
                return default
            return entry[1]

    def put(self, key: Hashable, value: Value) -> None:
        now = self._clock()
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (now, value)
            # oldest first: expired entries go now, not when the cap is reached (a key put once
            # and never read again, one per token of a flood, stayed until then)
            while self._entries and (len(self._entries) > self.max_entries or
                                     now - next(iter(self._entries.values()))[0] >= self.ttl_s):
                self._entries.popitem(last=False)

    def get_or_load(self, key: Hashable, load: Callable[[], Value]) -> Value:
        """The fresh value of `key`, else what `load()` returns, remembered. `load` runs
        outside the lock: a slow database holds up no other key."""
        value = self.get(key, _ABSENT)
        if value is _ABSENT:
            value = load()
            self.put(key, value)
        return value

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
