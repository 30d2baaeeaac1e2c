"""A labelled, seeded stream: market ticks, chain blocks, social posts or the whole demo story.

`kades simulate` writes it as structured CloudEvents, one per line, or posts it to a broker.
Same seed, same stream (kades.simulate.market, .chain, .social and .story make them).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time as wall_clock
from datetime import datetime, timezone

from kades import exitcodes
from kades.cliutil import STDIO, bounded, open_output, progress, report, unreachable
from kades.events.envelope import (SPECVERSION, CloudEvent, attribute_problems,
                                   control_problems, to_binary, to_dict)
from kades.settings import http_url_problem, redact_url, shown_url
from kades.simulate.chain import simulate_chain
from kades.simulate.market import epoch, feed_events, simulate_market
from kades.simulate.social import simulate_social
from kades.simulate.story import demo_story

# --kind other than market -> its simulation, each taking (seed=, minutes=, start=)
OTHER_STREAMS = {"chain": simulate_chain, "social": simulate_social, "story": demo_story}
# Bounds that keep a run in memory (the stream is built whole before it is written): a day
# of the story takes about 300 MB, 500,000 market ticks at most about 500 MB. 0.1 minute is
# one 5 s tick of the story's market: every kind makes events from there on.
MIN_MINUTES, MAX_MINUTES = 0.1, 1440.0
MIN_STEP_S = 1.0
MAX_TICKS = 500_000  # --kind market: tokens x minutes x 60 / step


class BrokerError(RuntimeError):
    """The broker refused an event or could not be reached."""


def _post_all(events: list[CloudEvent], url: str, *, rate: float | None, realtime: bool) -> None:
    import httpx  # only the broker mode needs these

    from kades.clients import http_client

    client, previous = http_client(), None
    with progress(events, desc="simulate", unit="events") as bar:
        for event in bar:
            moment = epoch(event["time"])
            if realtime and previous is not None:
                wall_clock.sleep(max(0.0, moment - previous))
            elif rate:
                wall_clock.sleep(1.0 / rate)
            previous = moment
            headers, body = to_binary(event)
            try:
                response = client.post(url, headers=headers, content=body, timeout=10.0)
            except httpx.HTTPError as error:
                raise BrokerError(f"cannot post to {redact_url(url)}: {error}") from error
            if response.status_code >= 300:
                raise BrokerError(f"broker answered {response.status_code} to event "
                                   f"{event.id}: {response.text[:200]}")


def event_source(text: str) -> str:
    """An argparse type: a CloudEvents source every function takes (an empty one was written
    into every event, and each was then refused)."""
    attrs = {"specversion": SPECVERSION, "id": "x", "type": "x", "source": text}
    problems = [p.message for p in attribute_problems(attrs) + control_problems(attrs)
                if p.field == "source"]
    if problems:
        raise argparse.ArgumentTypeError(f"{text!r}: " + "; ".join(problems))
    return text


def main_simulate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades simulate", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=bounded(int, 0, math.inf, "a whole number from 0"),
                        default=7, help="the seed: the same seed gives the same stream (default: 7)")
    parser.add_argument("--tokens", type=bounded(int, 1, MAX_TICKS, "a whole number from 1"),
                        default=5, help="how many tokens trade (default: 5)")
    parser.add_argument("--minutes", default=30,
                        type=bounded(float, MIN_MINUTES, MAX_MINUTES,
                                      f"minutes from {MIN_MINUTES:g} to {MAX_MINUTES:g}"),
                        help=f"simulated minutes of trading, {MIN_MINUTES:g} to {MAX_MINUTES:g} "
                             "(default: 30)")
    parser.add_argument("--step-s", default=5.0,
                        type=bounded(float, MIN_STEP_S, MAX_MINUTES * 60,
                                      f"seconds from {MIN_STEP_S:g} to {MAX_MINUTES * 60:g}"),
                        help=f"seconds between two ticks of a token, at least {MIN_STEP_S:g}; "
                             f"at most {MAX_TICKS:,} ticks in all (tokens x minutes x 60 / "
                             "step) (default: 5)")
    parser.add_argument("--anomalies-per-token", default=2,
                        type=bounded(int, 0, math.inf, "a whole number from 0"),
                        help="anomalies injected into each token's market (default: 2)")
    parser.add_argument("--source", default="/kades/simulator", type=event_source,
                        help="the events' CloudEvents source (default: /kades/simulator)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--output", help="write structured CloudEvents, one per line "
                                        "('-', the default, for stdout)")
    where.add_argument("--broker", help="POST each event in binary mode to this URL")
    parser.add_argument("--rate", type=bounded(float, 0.001, 1e6, "events per second from "
                                                                  "0.001 to 1000000"),
                        help="events per second when posting")
    parser.add_argument("--realtime", action="store_true",
                        help="post at the pace of the ticks' own times (starting now)")
    parser.add_argument("--labels", help="write the injected anomalies to this JSON file "
                                         "('-' for stdout)")
    parser.add_argument("--kind", choices=["market", "chain", "social", "story"], default="market",
                        help="which stream: market ticks, chain blocks, social posts, or the "
                             "whole demo story (all three over the same minutes)")
    args = parser.parse_args(argv)
    if args.broker is not None and (problem := http_url_problem(args.broker)):
        parser.error(f"--broker {shown_url(args.broker)!r}: {problem}")
    output = args.output or STDIO
    if args.labels == STDIO and not args.broker and output == STDIO:
        parser.error("--labels - needs --output FILE or --broker: the events go to stdout")
    if args.kind == "market":  # the market's size is tokens x steps: checked before it is made
        if args.step_s > args.minutes * 60:
            parser.error(f"--step-s {args.step_s:g} is longer than --minutes {args.minutes:g}: "
                         "not one tick")
        ticks = args.tokens * int(args.minutes * 60 / args.step_s)
        if ticks > MAX_TICKS:
            parser.error(f"{ticks:,} ticks is over {MAX_TICKS:,}: fewer --tokens or --minutes, "
                         "or a longer --step-s")
    start = datetime.now(timezone.utc).replace(microsecond=0) if args.realtime else None
    if args.kind == "market":
        sim = simulate_market(seed=args.seed, tokens=args.tokens, minutes=args.minutes,
                              step_s=args.step_s, start=start,
                              anomalies_per_token=args.anomalies_per_token)
        events = feed_events(sim, source=args.source, batch_s=args.step_s)
    else:
        sim = OTHER_STREAMS[args.kind](seed=args.seed, minutes=args.minutes, start=start)
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
