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
from redis.commands.core import Script

from kades.keys import ALERT_PUBLISHED, ALERT_STREAM
from kades.runtime.dedup import NotReplicated, eval_then_wait

RETAIN_S = 5 * 60
PUBLISHED_TTL_S = 24 * 3600
# Append each alert once per alert event id: a redelivered alert (or a retry after a failure)
# adds nothing. KEYS: the stream, then one "published" mark per alert; ARGV: the messages,
# then the oldest id kept and the marks' TTL. Returns per alert its entry id, or 0 when it
# was published before (a Lua false would end the reply's array there). A mark found is set
# again (its TTL): a write, which a WAIT after the script can count, and which reaches a
# replica after the append it marks (one replication stream, in order).
_APPEND_ONCE = Script(None, b"""
local n = #KEYS - 1
local ids = {}
for i = 1, n do
  if redis.call('SET', KEYS[i + 1], '1', 'NX', 'EX', ARGV[n + 2]) then
    ids[i] = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[n + 1], '*', 'alert', ARGV[i])
  else
    redis.call('EXPIRE', KEYS[i + 1], ARGV[n + 2])
    ids[i] = 0
  end
end
return ids
""")


def publish(client: redis.Redis, alert_id: str, message: dict[str, Any],
            *, now_s: float | None = None) -> str | None:
    """Append one alert message; its stream id, or None when it was published before."""
    return publish_many(client, [(alert_id, message)], now_s=now_s)[0]


def publish_many(client: redis.Redis, alerts: list[tuple[str, dict[str, Any]]],
                 *, now_s: float | None = None, replicas: int = 0,
                 wait_s: float = 1.0) -> list[str | None]:
    """Append alert messages (alert id, message), in order, in one script call (by its SHA);
    for each its stream id, or None when it was published before. With `replicas`
    (Settings.redis_wait_replicas) it returns once that many replicas have the appends, or
    a redelivery's marks, else raises NotReplicated (a 503): alert-dispatch takes no claim,
    so no done mark waits for them, and an alert acknowledged then lost with its primary
    never reached a WebSocket client."""
    now_s = time.time() if now_s is None else now_s
    oldest = f"{int((now_s - RETAIN_S) * 1000)}-0"
    keys = [ALERT_STREAM, *(ALERT_PUBLISHED.format(id=alert_id) for alert_id, _ in alerts)]
    messages = [json.dumps(message, separators=(",", ":")) for _, message in alerts]
    args = [*messages, oldest, PUBLISHED_TTL_S]
    if not replicas:
        entries = _APPEND_ONCE(keys, args, client=client)
    else:
        entries, acked = eval_then_wait(client, _APPEND_ONCE.sha, _APPEND_ONCE.script, keys,
                                        args, replicas=replicas,
                                        timeout_ms=max(1, round(wait_s * 1000)))
        if acked < replicas:
            raise NotReplicated(f"alerts appended reached {acked} of {replicas} replicas "
                                f"within {wait_s} s")
    return [entry.decode() if isinstance(entry, bytes) else None for entry in entries]


def _decode(entries) -> list[tuple[str, dict]]:
    return [(entry_id.decode(), json.loads(fields[b"alert"])) for entry_id, fields in entries]


_LAST_ID = f"{2 ** 64 - 1}-{2 ** 64 - 1}"  # no entry comes after it


def since(client: redis.Redis, last_id: str, *, count: int = 1000) -> list[tuple[str, dict]]:
    """Alerts after `last_id` still in the stream (the replay of a reconnecting client).
    None after the greatest id there can be, for which Redis answers "invalid start ID" to
    an exclusive range (a 500 on the client's WebSocket)."""
    if last_id == _LAST_ID:
        return []
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
    """Whether `text` is a stream id Redis takes: <ms>[-<seq>], each an unsigned 64-bit number
    in ASCII digits (str.isdigit also takes "²", which int() refuses)."""
    head, dash, tail = text.partition("-")
    return len(text) <= 41 and _u64(head) and (not dash or _u64(tail))


def _u64(part: str) -> bool:
    return part.isascii() and part.isdigit() and int(part) < 2 ** 64
