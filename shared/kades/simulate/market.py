"""A deterministic demo market: calm random walks with labelled, injected anomalies.

Same seed, same stream: token names, prices, anomalies and event ids all come from the seed,
so a demo run, a test and a detector benchmark see the very same data. `kades simulate`
(kades.simulate.cli) writes the stream as JSON lines or posts it to a broker.
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from kades.events.catalogue import MARKET_FEED, new_event
from kades.events.chunking import split_batch
from kades.events.envelope import CloudEvent

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
DEFAULT_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
KINDS = ("price_spike", "flash_crash", "volume_spike")
WARM_UP_S = 300.0  # calm time before the first anomaly, and at least between two of them
TICK_SOURCE = "simulator"


@dataclass(frozen=True)
class Simulation:
    seed: int
    ticks: list[dict]   # sorted by time, then token
    labels: list[dict]  # {token, kind, start, end}: the injected anomalies


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def fake_mint(rng: np.random.Generator) -> str:
    """A base58 string shaped like a Solana mint address (32-44 characters)."""
    length = int(rng.integers(32, 45))
    return "".join(BASE58[i] for i in rng.integers(0, len(BASE58), size=length))


def _plan_anomalies(rng, steps: int, step_s: float, count: int) -> list[tuple[int, str]]:
    """(first step, kind) of each anomaly: one per equal segment after the warm-up."""
    warm_up = max(1, int(math.ceil(WARM_UP_S / step_s)))
    segment = (steps - warm_up) // max(count, 1)
    tail = int(math.ceil(180.0 / step_s))  # room for the anomaly itself and its revert
    if count == 0 or segment <= tail + 1:
        return []
    return [(warm_up + k * segment + int(rng.integers(0, segment - tail)),
             KINDS[int(rng.integers(0, len(KINDS)))]) for k in range(count)]


def _inject(kind: str, first: int, log_move: np.ndarray, log_volume: np.ndarray,
            rng, step_s: float) -> int:
    """Add one anomaly to the per-step log moves and log volumes; its last step."""
    per_minute = max(1, int(round(60.0 / step_s)))
    ramp = int(rng.integers(1, min(3, per_minute) + 1))  # the move happens within a minute
    hold = int(rng.integers(per_minute // 2, per_minute + 1))
    if kind == "volume_spike":
        last = first + hold
        log_volume[first:last + 1] += math.log(8.0) + rng.normal(0, 0.1, last + 1 - first)
        return last
    size = rng.uniform(0.22, 0.35)
    jump = math.log(1 + size) if kind == "price_spike" else math.log(1 - size)
    log_move[first:first + ramp] += jump / ramp
    log_volume[first:first + ramp + hold] += math.log(3.0)  # such moves trade heavily
    revert_steps = 2 * per_minute  # half of the move fades over two minutes
    revert_start = first + ramp + hold
    log_move[revert_start:revert_start + revert_steps] -= 0.5 * jump / revert_steps
    return revert_start + revert_steps - 1


def simulate_market(*, seed: int, tokens: int = 5, minutes: float = 30, step_s: float = 5.0,
                    start: datetime | None = None, anomalies_per_token: int = 2) -> Simulation:
    """Ticks of `tokens` tokens every `step_s` seconds for `minutes`, with labelled anomalies."""
    # `not ... >=`: NaN is refused too. Minutes shorter than a step would make no tick at all.
    if tokens < 1 or not minutes * 60 >= step_s > 0 or anomalies_per_token < 0:
        raise ValueError("tokens >= 1, step_s > 0, minutes of at least one step, "
                         "anomalies_per_token >= 0")
    rng = np.random.default_rng(seed)
    start = start or DEFAULT_START
    steps = int(minutes * 60 / step_s)
    times = [rfc3339(start + timedelta(seconds=i * step_s)) for i in range(steps)]
    ticks, labels = [], []
    for _ in range(tokens):
        mint = fake_mint(rng)
        # Per-token volatility, heavy-ish tails: Student t (5 dof) scaled to unit variance.
        sigma = rng.uniform(0.001, 0.004) * math.sqrt(step_s / 5.0)
        log_move = sigma * rng.standard_t(5, steps) / math.sqrt(5 / 3)
        log_volume = math.log(rng.uniform(1e3, 1e6)) + 0.3 * rng.standard_normal(steps)
        for first, kind in _plan_anomalies(rng, steps, step_s, anomalies_per_token):
            last = _inject(kind, first, log_move, log_volume, rng, step_s)
            labels.append({"token": mint, "kind": kind, "start": times[first],
                           "end": times[min(last, steps - 1)]})
        log_move[0] = 0.0
        prices = math.exp(rng.uniform(math.log(1e-6), math.log(10.0))) * np.exp(np.cumsum(log_move))
        liquidity = rng.uniform(5e4, 5e6) * np.exp(np.cumsum(rng.normal(0, 0.002, steps)))
        for i in range(steps):
            ticks.append({"token": mint, "time": times[i], "price": float(f"{prices[i]:.10g}"),
                          "volume": round(float(math.exp(log_volume[i])), 2),
                          "liquidity": round(float(liquidity[i]), 2), "source": TICK_SOURCE})
    # Same-width RFC 3339 texts: text order is time order.
    ticks.sort(key=lambda t: (t["time"], t["token"]))
    labels.sort(key=lambda label: (label["start"], label["token"]))
    return Simulation(seed=seed, ticks=ticks, labels=labels)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def feed_events(sim: Simulation, *, source: str, batch_s: float = 5.0) -> list[CloudEvent]:
    """MARKET_FEED events, one per `batch_s` window holding every token's ticks of it (in
    consecutive parts when a window's ticks exceed the size limit)."""
    if not sim.ticks:
        return []
    origin = epoch(sim.ticks[0]["time"])
    batches: dict[int, list[dict]] = {}
    for tick in sim.ticks:
        batches.setdefault(int((epoch(tick["time"]) - origin) // batch_s), []).append(tick)
    return [event for index, batch in sorted(batches.items())
            for event in window_events(batch, MARKET_FEED, "ticks", source=source,
                                       name=f"kades-simulate:{sim.seed}:{origin}:{index}")]


def window_events(items: list[dict], event_type: str, field: str, *, source: str, name: str,
                  extra: dict | None = None) -> list[CloudEvent]:
    """One window's items (each with a "time") as `data[field]` beside `extra`: one event
    when under the size limit, else consecutive parts. Ids come from `name` (and the part),
    so the same seed gives the same ids; a window that fits keeps its old id."""
    def make(part: list[dict], index: int, count: int) -> CloudEvent:
        key = name + (f":{index}/{count}" if count > 1 else "")
        return new_event(event_type, source, {field: part, **(extra or {})},
                         time=(part or items)[-1]["time"],
                         event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)))
    return split_batch(items, make)
