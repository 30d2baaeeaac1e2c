"""A chaos switch for the development broker: worse delivery than the Broker class promises
at its worst, so tests see what a busy cluster does (KADES_BROKER_CHAOS_* settings).

- reorder: an unordered Trigger's worker takes up to `reorder_window` new events at once
  and queues them in a shuffled order, so an event can be overtaken by up to window - 1
  later ones. Ordered lanes are not shuffled: the Kafka class does keep a key's order.
- duplicate: after a successful delivery, this fraction of events is queued once more at
  the end of its lane, as a redelivery after a lost acknowledgement would be (on an ordered
  lane, too: Kafka replays from the last committed offset).
- delay: this fraction of first deliveries is held back up to `delay_max_s` (an unordered
  lane goes on meanwhile; an ordered lane waits, as its blocking consumer would).
Nothing is dropped: every accepted event is still delivered at least once. One `seed`
makes the random choices repeatable (their interleaving across threads is not).
"""
from __future__ import annotations

import random
import threading
import time

from kades.settings import Settings, SettingsError

LINGER_S = 0.2  # how long a worker waits for a reorder window to fill


class Chaos:
    def __init__(self, *, reorder_window: int = 0, duplicate_rate: float = 0.0,
                 delay_rate: float = 0.0, delay_max_s: float = 0.0, seed: int = 0):
        problems = []
        if reorder_window < 0:
            problems.append(f"KADES_BROKER_CHAOS_REORDER_WINDOW={reorder_window}: expected >= 0")
        # Below 1 so that copies of copies die out (each is a fresh chance to duplicate).
        if not 0 <= duplicate_rate <= 0.5:
            problems.append(f"KADES_BROKER_CHAOS_DUPLICATE_RATE={duplicate_rate}: expected 0-0.5")
        if not 0 <= delay_rate <= 1:
            problems.append(f"KADES_BROKER_CHAOS_DELAY_RATE={delay_rate}: expected 0-1")
        if delay_max_s < 0:
            problems.append(f"KADES_BROKER_CHAOS_DELAY_MAX_S={delay_max_s}: expected >= 0")
        if problems:
            raise SettingsError(problems)
        self.reorder_window, self.duplicate_rate = reorder_window, duplicate_rate
        self.delay_rate, self.delay_max_s = delay_rate, delay_max_s
        self._random, self._lock = random.Random(seed), threading.Lock()

    @classmethod
    def from_settings(cls, config: Settings) -> "Chaos":
        return cls(reorder_window=config.broker_chaos_reorder_window,
                   duplicate_rate=config.broker_chaos_duplicate_rate,
                   delay_rate=config.broker_chaos_delay_rate,
                   delay_max_s=config.broker_chaos_delay_max_s, seed=config.broker_chaos_seed)

    @property
    def active(self) -> bool:
        return bool(self.reorder_window > 1 or self.duplicate_rate
                    or (self.delay_rate and self.delay_max_s))

    def describe(self) -> dict:
        return {"reorder_window": self.reorder_window, "duplicate_rate": self.duplicate_rate,
                "delay_rate": self.delay_rate, "delay_max_s": self.delay_max_s}

    def duplicate(self) -> bool:
        with self._lock:
            return self.duplicate_rate > 0 and self._random.random() < self.duplicate_rate

    def delay_s(self) -> float:
        with self._lock:
            if self.delay_max_s <= 0 or self._random.random() >= self.delay_rate:
                return 0.0
            return self._random.uniform(0.0, self.delay_max_s)

    def shuffled(self, items: list) -> list:
        items = list(items)
        with self._lock:
            self._random.shuffle(items)
        return items

    def hold_back(self, queue, lane: str, consumer: str, taken: list) -> None:
        """Fill a reorder window with what the lane has (briefly waiting for more), then
        queue it all in the lane's due set in a shuffled order, some entries later."""
        deadline = time.monotonic() + LINGER_S
        while len(taken) < self.reorder_window and time.monotonic() < deadline:
            more = queue.read(lane, consumer, count=self.reorder_window - len(taken),
                              block_ms=max(1, int((deadline - time.monotonic()) * 1000)))
            taken += more
        now = time.time()
        for position, (entry_id, _document) in enumerate(self.shuffled(taken)):
            # A microsecond apart keeps the shuffled order among entries due together.
            due = now + position * 1e-6 + self.delay_s()
            queue.schedule(lane, entry_id, {"phase": "deliver", "attempt": 1, "due": due})


NO_CHAOS = Chaos()
