"""A deterministic demo market: calm random walks with labelled, injected anomalies.

Same seed, same stream: token names, prices, anomalies and event ids all come from the seed,
so a demo run, a test and a detector benchmark see the very same data. `kades simulate`
writes the stream as JSON lines or posts it to a broker.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time as wall_clock
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from kades import exitcodes
from kades.cliutil import STDIO, open_output, progress, report, unreachable
from kades.events.catalogue import MARKET_FEED, new_event
from kades.events.chunking import split_batch
from kades.events.envelope import CloudEvent, to_binary, to_dict
from kades.settings import redact_url

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
    if tokens < 1 or minutes <= 0 or step_s <= 0 or anomalies_per_token < 0:
        raise ValueError("tokens >= 1, minutes > 0, step_s > 0, anomalies_per_token >= 0")
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


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def feed_events(sim: Simulation, *, source: str, batch_s: float = 5.0) -> list[CloudEvent]:
    """MARKET_FEED events, one per `batch_s` window holding every token's ticks of it (in
    consecutive parts when a window's ticks exceed the size limit)."""
    if not sim.ticks:
        return []
    origin = _epoch(sim.ticks[0]["time"])
    batches: dict[int, list[dict]] = {}
    for tick in sim.ticks:
        batches.setdefault(int((_epoch(tick["time"]) - origin) // batch_s), []).append(tick)
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


class BrokerError(RuntimeError):
    """The broker refused an event or could not be reached."""


def _post_all(events: list[CloudEvent], url: str, *, rate: float | None, realtime: bool) -> None:
    import httpx  # only the broker mode needs it

    previous = None
    with httpx.Client(timeout=10.0) as client, \
            progress(events, desc="simulate", unit="events") as bar:
        for event in bar:
            moment = _epoch(event["time"])
            if realtime and previous is not None:
                wall_clock.sleep(max(0.0, moment - previous))
            elif rate:
                wall_clock.sleep(1.0 / rate)
            previous = moment
            headers, body = to_binary(event)
            try:
                response = client.post(url, headers=headers, content=body)
            except httpx.HTTPError as error:
                raise BrokerError(f"cannot post to {redact_url(url)}: {error}") from error
            if response.status_code >= 300:
                raise BrokerError(f"broker answered {response.status_code} to event "
                                   f"{event.id}: {response.text[:200]}")


def main_simulate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades simulate", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7,
                        help="the seed: the same seed gives the same stream (default: 7)")
    parser.add_argument("--tokens", type=int, default=5, help="how many tokens trade (default: 5)")
    parser.add_argument("--minutes", type=float, default=30,
                        help="simulated minutes of trading (default: 30)")
    parser.add_argument("--step-s", type=float, default=5.0,
                        help="seconds between two ticks of a token (default: 5)")
    parser.add_argument("--anomalies-per-token", type=int, default=2,
                        help="anomalies injected into each token's market (default: 2)")
    parser.add_argument("--source", default="/kades/simulator",
                        help="the events' CloudEvents source (default: /kades/simulator)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--output", help="write structured CloudEvents, one per line "
                                        "('-', the default, for stdout)")
    where.add_argument("--broker", help="POST each event in binary mode to this URL")
    parser.add_argument("--rate", type=float, help="events per second when posting")
    parser.add_argument("--realtime", action="store_true",
                        help="post at the pace of the ticks' own times (starting now)")
    parser.add_argument("--labels", help="write the injected anomalies to this JSON file "
                                         "('-' for stdout)")
    parser.add_argument("--kind", choices=["market", "chain", "social", "story"], default="market",
                        help="which stream: market ticks, chain blocks, social posts, or the "
                             "whole demo story (all three over the same minutes)")
    args = parser.parse_args(argv)
    output = args.output or STDIO
    if args.labels == STDIO and not args.broker and output == STDIO:
        parser.error("--labels - needs --output FILE or --broker: the events go to stdout")
    start = datetime.now(timezone.utc).replace(microsecond=0) if args.realtime else None
    if args.kind == "market":
        sim = simulate_market(seed=args.seed, tokens=args.tokens, minutes=args.minutes,
                              step_s=args.step_s, start=start,
                              anomalies_per_token=args.anomalies_per_token)
        events = feed_events(sim, source=args.source, batch_s=args.step_s)
    else:
        sim = _other_stream(args.kind, seed=args.seed, minutes=args.minutes, start=start)
        events = sim.events
    try:
        if args.labels:
            with open_output(args.labels) as out:
                json.dump(sim.labels, out, indent=1)
                out.write("\n")
        if args.broker:
            _post_all(events, args.broker, rate=args.rate, realtime=args.realtime)
        else:
            with open_output(output) as out:
                for event in events:
                    out.write(json.dumps(to_dict(event), separators=(",", ":")) + "\n")
    except BrokerError as error:  # 3 when the broker could not be reached, 1 when it refused
        return report("simulate", str(error),
                      exitcodes.UNAVAILABLE if unreachable(error) else exitcodes.FAILURE)
    except OSError as error:
        return report("simulate", str(error))
    print(f"simulated {args.kind}: {len(sim.labels)} labelled anomalies, {len(events)} events",
          file=sys.stderr)
    return exitcodes.OK


def _other_stream(kind: str, *, seed: int, minutes: float, start: datetime | None):
    """The chain, social or whole-story simulation (imported here: they import this module)."""
    if kind == "chain":
        from kades.simulate_chain import simulate_chain
        return simulate_chain(seed=seed, minutes=minutes, start=start)
    if kind == "social":
        from kades.simulate_social import simulate_social
        return simulate_social(seed=seed, minutes=minutes, start=start)
    from kades.story import demo_story
    return demo_story(seed=seed, minutes=minutes, start=start)

