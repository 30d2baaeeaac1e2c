"""Dead letters: stored in one Redis stream, listed and replayed by `kades dlq`.

Two writers share the stream `kades.keys.DLQ`: the dead-letter sink function (every event the
Broker dead-letters to it) and the development broker itself, which parks an event there
when the dead-letter sink cannot take it (or none is configured), so nothing is lost.
Each entry holds the event as received (structured JSON, with its `knativeerror*`
extensions) and a few columns for listing. Replay strips the Knative error extensions and
the broker TTL, posts the event back to the broker ingress and deletes what was accepted.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

import httpx
import redis

from kades import clients, exitcodes
from kades.cliutil import report_error
from kades.errors import KadesError
from kades.keys import DLQ
from kades.events.envelope import (
    BROKER_SPECVERSIONS, CloudEvent, from_structured, to_binary, to_dict)

ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")
TTL_EXTENSION = "knativebrokerttl"


class ReplayError(KadesError, RuntimeError):
    """Some dead letters could not be replayed; `replayed` others were."""

    def __init__(self, message: str, *, replayed: int, failures: dict[str, str],
                 unreachable: bool = False):
        super().__init__(message)
        self.replayed, self.failures = replayed, failures
        self.unreachable = unreachable  # the ingress could not be reached at all


@dataclass(frozen=True)
class DeadLetter:
    id: str
    time: str
    event: CloudEvent
    note: str = ""

    @property
    def error_code(self) -> str:
        return self.event.get("knativeerrorcode") or ""

    @property
    def error_dest(self) -> str:
        return self.event.get("knativeerrordest") or ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dead_letter_fields(event: CloudEvent, note: str = "") -> dict[str, str]:
    """The stream entry of one dead letter."""
    return {"event": json.dumps(to_dict(event), separators=(",", ":"), ensure_ascii=False),
            "time": _now(), "note": note}


def store_dead_letter(client: redis.Redis, event: CloudEvent, note: str = "") -> str:
    """Keep one dead letter; its id."""
    entry_id = client.xadd(DLQ, dead_letter_fields(event, note))
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _dead_letter(entry_id, fields) -> DeadLetter:
    fields = {_text(k): _text(v) for k, v in fields.items()}
    return DeadLetter(_text(entry_id), fields.get("time", ""),
                      from_structured(json.loads(fields["event"]), specversions=BROKER_SPECVERSIONS),
                      fields.get("note", ""))


def list_dead_letters(client: redis.Redis, *, limit: int | None = None) -> list[DeadLetter]:
    """Dead letters, oldest first."""
    return [_dead_letter(i, f) for i, f in client.xrange(DLQ, count=limit)]


def for_replay(event: CloudEvent) -> CloudEvent:
    """The event as it was first sent: without the Knative error extensions and the TTL."""
    dropped = (*ERROR_EXTENSIONS, TTL_EXTENSION)
    attributes = {k: v for k, v in event.attributes.items() if k not in dropped}
    return CloudEvent(attributes, event.data, _has_data=event.has_data)


def post_event(url: str, event: CloudEvent, *, timeout_s: float = 10.0) -> tuple[int, bytes]:
    """POST in binary mode; (status, body), status 0 when the server cannot be reached."""
    headers, body = to_binary(event)
    try:
        response = clients.http_client().post(url, content=body, headers=headers,
                                              timeout=timeout_s)
    except httpx.TransportError as error:
        return 0, str(error).encode()
    return response.status_code, response.content


def replay_dead_letters(client: redis.Redis, ingress_url: str, ids: Iterable[str] | None = None,
                        all: bool = False) -> int:
    """Post dead letters back to the broker ingress, delete the accepted ones; how many.

    Raises ReplayError (after replaying what it could) naming every id that failed.
    """
    letters = {d.id: d for d in list_dead_letters(client)}
    if all:
        selected = list(letters)
    else:
        selected = list(ids or [])
        unknown = [i for i in selected if i not in letters]
        if unknown:
            raise ReplayError(f"no such dead letter: {', '.join(unknown)}", replayed=0,
                              failures={i: "not found" for i in unknown})
    replayed, failures, unreachable = 0, {}, False
    for entry_id in selected:
        status, body = post_event(ingress_url, for_replay(letters[entry_id].event))
        if 200 <= status < 300:
            client.xdel(DLQ, entry_id)
            replayed += 1
        else:
            unreachable = unreachable or status == 0
            failures[entry_id] = f"ingress answered {status or 'nothing'}: {body[:300]!r}"
    if failures:
        raise ReplayError(f"{len(failures)} dead letter(s) not replayed", replayed=replayed,
                          failures=failures, unreachable=unreachable)
    return replayed


# --- `kades dlq` ----------------------------------------------------------------------------

def format_table(letters: list[DeadLetter]) -> str:
    rows = [("ID", "TIME", "TYPE", "SOURCE", "CODE", "DEST")]
    rows += [(d.id, d.time, d.event.type, d.event.source, d.error_code, d.error_dest)
             for d in letters]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def main_dlq(argv: list[str]) -> int:
    """`kades dlq list [--limit N] [--json]` and `kades dlq replay ID... | --all`."""
    from kades.settings import Settings, redact_url

    config = Settings.from_env()
    parser = argparse.ArgumentParser(prog="kades dlq", description=main_dlq.__doc__)
    parser.add_argument("--redis-url", default=config.redis_url,
                        help="the Redis holding the dead letters (default: KADES_REDIS_URL)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show dead letters, oldest first")
    listing.add_argument("--limit", type=int, default=None,
                         help="show at most this many, the oldest (default: all)")
    listing.add_argument("--json", action="store_true", help="one structured event per line")
    replay = commands.add_parser("replay", help="send dead letters back to the broker")
    replay.add_argument("ids", nargs="*", metavar="ID", help="the dead letters to replay "
                                                           "(the ID column of `kades dlq list`)")
    replay.add_argument("--all", action="store_true", help="replay every dead letter")
    replay.add_argument("--ingress", default=config.sink_url,
                        help="broker ingress URL (default: KADES_SINK_URL / K_SINK)")
    args = parser.parse_args(argv)
    if args.command == "replay" and bool(args.ids) == args.all:
        parser.error("replay takes dead-letter ids or --all (not both)")
    client = redis.Redis.from_url(args.redis_url, socket_timeout=config.redis_timeout_s,
                                  socket_connect_timeout=config.redis_timeout_s)
    try:
        if args.command == "list":
            letters = list_dead_letters(client, limit=args.limit)
            if args.json:
                for d in letters:
                    print(json.dumps({"id": d.id, "time": d.time, "note": d.note,
                                      "event": to_dict(d.event)}))
            else:
                print(format_table(letters))
            return exitcodes.OK
        count = replay_dead_letters(client, args.ingress, args.ids, all=args.all)
        print(f"replayed {count} dead letter(s) to {redact_url(args.ingress)}")
        return exitcodes.OK
    except ReplayError as error:
        print(f"replayed {error.replayed}; {error}", file=sys.stderr)
        for entry_id, reason in error.failures.items():
            print(f"  {entry_id}: {reason}", file=sys.stderr)
        return exitcodes.UNAVAILABLE if error.unreachable else exitcodes.FAILURE
    except redis.RedisError as error:
        return report_error("dlq", f"Redis at {redact_url(args.redis_url)}", error)


# --- the dead-letter sink function (functions/dead-letter) ----------------------------------

def _dead_letter_identity(event: CloudEvent) -> str:
    # The same event may be dead-lettered again after a replay (new arrival time) and must
    # be kept again; a Broker retry of one dead-letter delivery must not be kept twice.
    return "\n".join([event.source, event.id, event.get("knativearrivaltime") or "",
                      event.get("knativeerrordest") or ""])


def _keep(event: CloudEvent, ctx) -> None:
    store_dead_letter(ctx.redis, event)


def _function():
    from kades.runtime import ANY_TYPE, Function
    return Function("dead-letter", ANY_TYPE, _keep, identity=_dead_letter_identity)


FUNCTION = _function()
