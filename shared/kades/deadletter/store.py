"""The dead-letter stream `kades.keys.DLQ`: its entries, listing and replay.

Each entry holds the event as received (structured JSON, with its `knativeerror*`
extensions) and a few columns for listing; one the dead-letter function could not decode
holds the request as it came ('undecodable'), and one too large to keep whole its headers and
its body's size, sha256 and first bytes ('truncated'): both are listed as unreadable and never
replayed. Replay strips the Knative error extensions and the broker TTL, posts the event
back to the broker ingress and deletes what was accepted. An operator reads one entry whole
(`entry`, `kades dlq show`) and drops what should never be replayed (`drop_dead_letters`).
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Iterable

import httpx
import redis

from kades import clients
from kades.errors import InvalidEventError, KadesError
from kades.keys import DLQ, DLQ_REPLAYING as REPLAYING
from kades.runtime import tokenfile
from kades.events.envelope import (
    BROKER_SPECVERSIONS, CloudEvent, from_structured, parse_json, to_binary, to_dict)

ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")
# The stream keeps the newest dead letters only: a sink that fails for days (or a source
# flooding bad events) would otherwise fill Redis, which every function shares.
MAX_DEAD_LETTERS = 100_000
TTL_EXTENSION = "knativebrokerttl"

REPLAY_LEASE_S = 60  # longer than a replay's post of one letter (its timeout)


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
    event: CloudEvent | None  # None: the entry cannot be read, `unreadable` says why
    note: str = ""
    unreadable: str = ""

    @property
    def error_code(self) -> str:
        return (self.event.get("knativeerrorcode") or "") if self.event is not None else ""

    @property
    def error_dest(self) -> str:
        return (self.event.get("knativeerrordest") or "") if self.event is not None else ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dead_letter_fields(event: CloudEvent, note: str = "") -> dict[str, str]:
    """The stream entry of one dead letter."""
    return {"event": json.dumps(to_dict(event), separators=(",", ":"), ensure_ascii=False),
            "time": _now(), "note": note}


def append(client, fields: dict[str, str]):
    """Add an entry to the stream (a client's answer: its id; a pipeline's: queued), the
    oldest going past MAX_DEAD_LETTERS: the dead-letter function's and the broker's parking."""
    return client.xadd(DLQ, fields, maxlen=MAX_DEAD_LETTERS, approximate=False)


def store_dead_letter(client: redis.Redis, event: CloudEvent, note: str = "") -> str:
    """Keep one dead letter; its id."""
    return _text(append(client, dead_letter_fields(event, note)))


def request_headers(headers) -> dict[str, str]:
    """The headers of a request kept as it came: its ce-* (the attributes, in binary mode)
    and Content-Type, names in lower case."""
    return {name.lower(): value for name, value in headers.items()
            if name.lower().startswith("ce-") or name.lower() == "content-type"}


def store_undecodable(client: redis.Redis, headers, body: bytes, problems) -> str:
    """Keep a request that is no valid event as it came (its request_headers, its body), for
    an operator to read: a Knative Broker drops what its dead-letter sink refuses. Listed as
    unreadable with its problems; never replayed."""
    request = {"headers": request_headers(headers),
               "body_base64": base64.b64encode(body).decode()}
    note = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return _store_request(client, "undecodable", request, note)


def store_too_large(client: redis.Redis, headers, head: bytes, size: int, sha256: str) -> str:
    """Keep what can be kept of a request whose body was over the size limit: its
    request_headers, its body's size, sha256 and first bytes (`head`). Listed as unreadable
    and truncated; never replayed, as it is not whole."""
    request = {"headers": request_headers(headers), "size": size, "sha256": sha256,
               "head_base64": base64.b64encode(head).decode()}
    note = f"body of {size} bytes, over the size limit: its first {len(head)} bytes kept"
    return _store_request(client, "truncated", request, note)


def _store_request(client: redis.Redis, field: str, request: dict, note: str) -> str:
    return _text(append(client, {field: json.dumps(request, separators=(",", ":")),
                                 "time": _now(), "note": note}))


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _dead_letter(entry_id, fields) -> DeadLetter:
    """One stream entry. Anyone with access to Redis may have written it: an entry that is no
    dead letter comes back with `event` None and why (one such entry must not stop the
    listing or the replay of the others)."""
    fields = {_text(k): v for k, v in fields.items()}
    letter = DeadLetter(_text(entry_id), _text(fields.get("time", "")), None,
                        _text(fields.get("note", "")))
    if "undecodable" in fields:
        return replace(letter, unreadable="no valid CloudEvent as received (the request is "
                                          f"kept in 'undecodable'): {letter.note}")
    if "truncated" in fields:
        return replace(letter, unreadable="truncated, too large to keep whole (its headers, size, "
                                          f"sha256 and head are in 'truncated'): {letter.note}")
    if "event" not in fields:
        return replace(letter, unreadable="no 'event' field")
    try:
        event = from_structured(parse_json(fields["event"]), specversions=BROKER_SPECVERSIONS)
    except InvalidEventError as error:
        return replace(letter, unreadable="'event' is not a CloudEvent: " + "; ".join(
            f"{p.field}: {p.message}" for p in error.problems))
    except ValueError as error:  # not UTF-8, not JSON, nested too deeply
        return replace(letter, unreadable=f"'event' is not JSON: {error}")
    return replace(letter, event=event)


def list_dead_letters(client: redis.Redis, *, limit: int | None = None) -> list[DeadLetter]:
    """Dead letters, oldest first."""
    return [_dead_letter(i, f) for i, f in client.xrange(DLQ, count=limit)]


def entry(client: redis.Redis, entry_id: str) -> dict | None:
    """One dead letter whole, for reading (None: no such entry): id, time, note, and the event
    as received, or why it cannot be read with what was kept of the request: its headers, and
    its body (as text where it is UTF-8, else base64) or its size, sha256 and first bytes."""
    found = client.xrange(DLQ, entry_id, entry_id) if _is_entry_id(entry_id) else []
    if not found:
        return None
    letter = _dead_letter(*found[0])
    shown = {"id": letter.id, "time": letter.time, "note": letter.note}
    if letter.event is not None:
        return {**shown, "event": to_dict(letter.event)}
    shown["unreadable"] = letter.unreadable
    fields = {_text(k): v for k, v in found[0][1].items()}
    for field in ("undecodable", "truncated"):
        if field in fields:
            try:
                kept = json.loads(fields[field])
            except ValueError:  # written by something else: shown as it is
                kept = _text(fields[field])
            if isinstance(kept, dict) and isinstance(kept.get("body_base64"), str):
                try:
                    kept["body"] = base64.b64decode(kept["body_base64"]).decode()
                except ValueError:  # not base64, or not UTF-8: base64 it stays
                    pass
                else:
                    del kept["body_base64"]
            shown[field] = kept
    if "event" in fields:
        shown["event_as_kept"] = _text(fields["event"])
    return shown


def _is_entry_id(text: str) -> bool:
    """A stream entry id (`ms-seq`): what XRANGE takes as one (it would read `-` as all)."""
    ms, _, seq = text.partition("-")
    return ms.isdigit() and seq.isdigit() and ms.isascii() and seq.isascii()


def drop_dead_letters(client: redis.Redis, ids: Iterable[str] = (), *,
                      unreadable: bool = False) -> tuple[list[str], list[str]]:
    """Delete the named dead letters, or every unreadable one (those replay never sends):
    (the ids dropped, the ids named that were not there)."""
    if unreadable:
        ids = [d.id for d in list_dead_letters(client) if d.event is None]
    dropped, missing = [], []
    for entry_id in dict.fromkeys(ids):
        deleted = client.xdel(DLQ, entry_id) if _is_entry_id(entry_id) else 0
        (dropped if deleted else missing).append(entry_id)
    return dropped, missing


def for_replay(event: CloudEvent) -> CloudEvent:
    """The event as it was first sent: without the Knative error extensions and the TTL."""
    dropped = (*ERROR_EXTENSIONS, TTL_EXTENSION)
    attributes = {k: v for k, v in event.attributes.items() if k not in dropped}
    return CloudEvent(attributes, event.data, _has_data=event.has_data)


def post_event(url: str, event: CloudEvent, *, timeout_s: float = 10.0,
               token_file: str = "") -> tuple[int, bytes]:
    """POST in binary mode, with the bearer token in `token_file` if one is given (the
    Broker's EventPolicy names who may send once sender identity is on); (status, body),
    status 0 when the server cannot be reached."""
    headers, body = to_binary(event)
    headers.update(tokenfile.authorization(token_file))
    try:
        response = clients.http_client().post(url, content=body, headers=headers,
                                              timeout=timeout_s)
    except httpx.TransportError as error:
        return 0, str(error).encode()
    return response.status_code, response.content


def replay_dead_letters(client: redis.Redis, ingress_url: str, ids: Iterable[str] | None = None,
                        all: bool = False, token_file: str = "") -> int:
    """Post dead letters back to the broker ingress, delete the accepted ones; how many.

    Raises ReplayError (after replaying what it could) naming every id that failed.
    """
    letters = {d.id: d for d in list_dead_letters(client)}
    if all:
        selected = list(letters)
    else:
        selected = list(dict.fromkeys(ids or []))  # an id given twice is replayed once
        unknown = [i for i in selected if i not in letters]
        if unknown:
            raise ReplayError(f"no such dead letter: {', '.join(unknown)}", replayed=0,
                              failures={i: "not found" for i in unknown})
    replayed, failures, unreachable = 0, {}, False
    for entry_id in selected:
        if letters[entry_id].event is None:  # skipped, and named as a failure
            failures[entry_id] = f"unreadable, not replayed: {letters[entry_id].unreadable}"
            continue
        # one replay at a time sends a letter: two run together both sent every one
        taken = client.set(REPLAYING.format(id=entry_id), 1, nx=True, ex=REPLAY_LEASE_S)
        if not taken:
            failures[entry_id] = "being replayed by another replay"
            continue
        status, body = post_event(ingress_url, for_replay(letters[entry_id].event),
                                  token_file=token_file)
        if 200 <= status < 300:
            client.xdel(DLQ, entry_id)  # the lease then lapses: the id is gone
            replayed += 1
        else:
            client.delete(REPLAYING.format(id=entry_id))
            unreachable = unreachable or status == 0
            failures[entry_id] = f"ingress answered {status or 'nothing'}: {body[:300]!r}"
    if failures:
        raise ReplayError(f"{len(failures)} dead letter(s) not replayed", replayed=replayed,
                          failures=failures, unreachable=unreachable)
    return replayed
