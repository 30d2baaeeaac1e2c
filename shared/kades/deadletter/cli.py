"""`kades dlq`: list the dead letters, show one whole, send them back to the broker ingress,
or drop those that should never go back."""
from __future__ import annotations

import argparse
import json
import math
import sys

import redis

from kades import clients, exitcodes
from kades.cliutil import bounded, redis_url, report_error
from kades.deadletter.store import (DeadLetter, ReplayError, drop_dead_letters, entry,
                                    list_dead_letters, replay_dead_letters)
from kades.events.envelope import to_dict
from kades.runtime.tokenfile import token_file_problem
from kades.settings import Settings, http_url_problem, redact_url, shown_url


def format_table(letters: list[DeadLetter]) -> str:
    """One row per dead letter; one that cannot be read says why after its id and time."""
    rows = [("ID", "TIME", "TYPE", "SOURCE", "CODE", "DEST")]
    rows += [(d.id, d.time, d.event.type, d.event.source, d.error_code, d.error_dest)
             if d.event is not None else (d.id, d.time, f"UNREADABLE: {d.unreadable}")
             for d in letters]
    # the reason of an unreadable row runs on past the columns: it widens none of them
    widths = [max(len(r[i]) for r in rows if len(r) == len(rows[0]) or i < 2)
              for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def main_dlq(argv: list[str]) -> int:
    """`kades dlq list [--limit N] [--json]`, `kades dlq show ID`, `kades dlq replay ID... |
    --all` and `kades dlq drop ID... | --unreadable`."""
    config = Settings.from_env()
    parser = argparse.ArgumentParser(prog="kades dlq", description=main_dlq.__doc__)
    parser.add_argument("--redis-url", default=config.redis_url, type=redis_url,
                        help="the Redis holding the dead letters (default: KADES_REDIS_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show dead letters, oldest first")
    # from 1: Redis refuses COUNT 0
    listing.add_argument("--limit", type=bounded(int, 1, math.inf, "a whole number from 1"),
                         help="show at most this many, the oldest (default: all)")
    listing.add_argument("--json", action="store_true", help="one structured event per line")
    show = commands.add_parser("show", help="one dead letter whole, as JSON: the event, or "
                                            "what was kept of a request that is none")
    show.add_argument("id", metavar="ID", help="the ID column of `kades dlq list`")
    replay = commands.add_parser("replay", help="send dead letters back to the broker")
    replay.add_argument("ids", nargs="*", metavar="ID", help="the dead letters to replay "
                                                           "(the ID column of `kades dlq list`)")
    replay.add_argument("--all", action="store_true", help="replay every dead letter")
    replay.add_argument("--ingress", default=config.sink_url,
                        help="broker ingress URL (default: KADES_SINK_URL / K_SINK)")
    replay.add_argument("--token-file", default=config.sink_token_file, metavar="FILE",
                        help="send the token in FILE as Authorization: Bearer, as the Broker "
                             "wants once sender identity is on (default: KADES_SINK_TOKEN_FILE)")
    drop = commands.add_parser("drop", help="delete dead letters for good")
    drop.add_argument("ids", nargs="*", metavar="ID", help="the dead letters to delete")
    drop.add_argument("--unreadable", action="store_true",
                      help="delete every unreadable one (replay never sends those)")
    args = parser.parse_args(argv)
    if args.command == "replay" and bool(args.ids) == args.all:
        parser.error("replay takes dead-letter ids or --all (not both)")
    if args.command == "drop" and bool(args.ids) == args.unreadable:
        parser.error("drop takes dead-letter ids or --unreadable (not both)")
    if args.command == "replay" and args.token_file and (
            problem := token_file_problem(args.token_file)):
        parser.error(problem)
    if args.command == "replay" and (problem := http_url_problem(args.ingress)):
        given = "--ingress" if args.ingress != config.sink_url else \
            "the ingress (KADES_SINK_URL / K_SINK)"
        parser.error(f"{given} {shown_url(args.ingress)!r}: {problem}")
    try:  # the broker's Redis: one server, or a Redis Cluster (KADES_REDIS_CLUSTER)
        client = clients.broker_redis(config, args.redis_url)
    except ValueError as error:  # what the scheme check leaves to redis-py (?socket_timeout=x)
        parser.error(f"--redis-url {redact_url(args.redis_url)!r}: {error}")
    except redis.RedisError as error:  # a cluster client asks for the slots when it is made
        return report_error("dlq", f"Redis at {redact_url(args.redis_url)}", error)
    try:
        if args.command == "list":
            letters = list_dead_letters(client, limit=args.limit)
            if args.json:
                for d in letters:
                    shown = ({"event": to_dict(d.event)} if d.event is not None
                             else {"unreadable": d.unreadable})
                    print(json.dumps({"id": d.id, "time": d.time, "note": d.note, **shown}))
            else:
                print(format_table(letters))
            return exitcodes.OK
        if args.command == "show":
            shown = entry(client, args.id)
            if shown is None:
                print(f"no such dead letter: {args.id}", file=sys.stderr)
                return exitcodes.FAILURE
            print(json.dumps(shown, indent=2, ensure_ascii=False))
            return exitcodes.OK
        if args.command == "drop":
            dropped, missing = drop_dead_letters(client, args.ids, unreadable=args.unreadable)
            print(f"dropped {len(dropped)} dead letter(s)")
            if missing:
                print(f"no such dead letter: {', '.join(missing)}", file=sys.stderr)
            return exitcodes.FAILURE if missing else exitcodes.OK
        count = replay_dead_letters(client, args.ingress, args.ids, all=args.all,
                                    token_file=args.token_file)
        print(f"replayed {count} dead letter(s) to {redact_url(args.ingress)}")
        return exitcodes.OK
    except ReplayError as error:
        print(f"replayed {error.replayed}; {error}", file=sys.stderr)
        for entry_id, reason in error.failures.items():
            print(f"  {entry_id}: {reason}", file=sys.stderr)
        return exitcodes.UNAVAILABLE if error.unreachable else exitcodes.FAILURE
    except redis.RedisError as error:
        return report_error("dlq", f"Redis at {redact_url(args.redis_url)}", error)
