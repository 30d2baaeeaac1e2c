"""The alert stream in Redis: alert-dispatch appends, every api replica reads.

One Redis stream rather than pub/sub: a replica reading with XREAD BLOCK gets every alert
live, and a client that reconnects with the id of the last alert it saw gets what it missed
(XRANGE after that id) from the same structure, with no gap between "replay" and "live".
Entries older than `RETAIN_S` are trimmed at each append (XADD MINID).
"""
from __future__ import annotations

import json
import time
from typing import Any

import redis

from kades.keys import ALERT_PUBLISHED, ALERT_STREAM

RETAIN_S = 5 * 60
# Append once per alert event id: a redelivered alert (or a retry after a failure) adds nothing.
_APPEND_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then
  return redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[2], '*', 'alert', ARGV[1])
end
return false
"""


def publish(client: redis.Redis, alert_id: str, message: dict[str, Any],
            *, now_s: float | None = None) -> str | None:
    """Append one alert message; its stream id, or None when it was published before."""
    now_s = time.time() if now_s is None else now_s
    oldest = f"{int((now_s - RETAIN_S) * 1000)}-0"
    entry = client.eval(_APPEND_ONCE, 2, ALERT_STREAM, ALERT_PUBLISHED.format(id=alert_id),
                        json.dumps(message, separators=(",", ":")), oldest, 24 * 3600)
    return entry.decode() if isinstance(entry, bytes) else entry


def _decode(entries) -> list[tuple[str, dict]]:
    return [(entry_id.decode(), json.loads(fields[b"alert"])) for entry_id, fields in entries]


def since(client: redis.Redis, last_id: str, *, count: int = 1000) -> list[tuple[str, dict]]:
    """Alerts after `last_id` still in the stream (the replay of a reconnecting client)."""
    return _decode(client.xrange(ALERT_STREAM, min=f"({last_id}", count=count))


def wait(client: redis.Redis, last_id: str, *, block_ms: int = 1000,
         count: int = 1000) -> list[tuple[str, dict]]:
    """Alerts after `last_id`, waiting up to `block_ms` for the first ('$': only new ones)."""
    answer = client.xread({ALERT_STREAM: last_id}, block=block_ms, count=count)
    return _decode(answer[0][1]) if answer else []


def last_id(client: redis.Redis) -> str:
    """The id of the newest alert ('0-0' when there is none)."""
    newest = client.xrevrange(ALERT_STREAM, count=1)
    return newest[0][0].decode() if newest else "0-0"


def valid_id(text: str) -> bool:
    head, _, tail = text.partition("-")
    return head.isdigit() and (tail == "" or tail.isdigit()) and len(text) <= 41
