"""Tracked tokens: which caller watches which token, and from which risk it wants alerts.

Changes to one token's trackings are serialised (a transaction-scoped advisory lock), so the
lowest threshold each change returns is the one its commit leaves; the caller publishes it to
Redis (`publish_threshold`) before committing, still under the lock, so two changes never
publish out of order.
"""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from kades.keys import TRACKED_THRESHOLDS


class TrackingLimit(Exception):
    """The key already tracks as many tokens as it may."""

    def __init__(self, tracked: int):
        super().__init__(f"{tracked} tokens tracked")
        self.tracked = tracked


def _lock(conn: psycopg.Connection, name: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))


def _lock_token(conn: psycopg.Connection, token: str) -> None:
    _lock(conn, f"kades.tracked_tokens:{token}")


def _lowest_threshold(conn: psycopg.Connection, token: str) -> float | None:
    return conn.execute("SELECT min(alert_threshold) FROM tracked_tokens WHERE token = %s",
                        (token,)).fetchone()[0]


def track_token(conn: psycopg.Connection, *, key_id: str, token: str, alert_threshold: float,
                update_interval: int, limit: int | None = None) -> float:
    """Insert or update one tracking; the lowest threshold anyone set for the token.
    TrackingLimit when the key tracks `limit` tokens already and not this one (the key's
    changes are serialised too, so two at once cannot both take the last place; the key's
    lock is always taken before a token's)."""
    if limit is not None:
        _lock(conn, f"kades.tracked_tokens.key:{key_id}")
        tracked, this = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE token = %s) FROM tracked_tokens"
            " WHERE key_id = %s", (token, key_id)).fetchone()
        if tracked >= limit and not this:
            raise TrackingLimit(tracked)
    _lock_token(conn, token)
    conn.execute(
        "INSERT INTO tracked_tokens (key_id, token, alert_threshold, update_interval)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (key_id, token) DO UPDATE SET"
        " alert_threshold = EXCLUDED.alert_threshold,"
        " update_interval = EXCLUDED.update_interval, updated_at = now()",
        (key_id, token, alert_threshold, update_interval))
    return _lowest_threshold(conn, token)


def untrack_token(conn: psycopg.Connection, *, key_id: str,
                  token: str) -> tuple[bool, float | None]:
    """Remove one tracking: whether there was one, and the lowest threshold left (None: nobody
    tracks the token any more)."""
    _lock_token(conn, token)
    removed = conn.execute("DELETE FROM tracked_tokens WHERE key_id = %s AND token = %s",
                           (key_id, token)).rowcount > 0
    return removed, _lowest_threshold(conn, token)


def untrack_all(conn: psycopg.Connection, *, key_id: str) -> dict[str, float | None]:
    """Remove every tracking of a key (revoked): each token it tracked -> the lowest threshold
    left, to publish."""
    tokens = [row[0] for row in conn.execute(
        "SELECT token FROM tracked_tokens WHERE key_id = %s ORDER BY token", (key_id,))]
    return {token: untrack_token(conn, key_id=key_id, token=token)[1] for token in tokens}


def publish_threshold(client, token: str, lowest: float | None) -> None:
    """A token's lowest threshold, for risk-scoring (it reads the hash on each score); none
    left drops the field, so the default applies and the hash holds only tracked tokens.
    Called inside the tracking's transaction, under its lock: changes publish in the order
    they commit. A commit that fails after this leaves the value the caller asked for, who
    gets an error and retries; `restore_thresholds` mends it if they do not."""
    if lowest is None:
        client.hdel(TRACKED_THRESHOLDS, token)
    else:
        client.hset(TRACKED_THRESHOLDS, token, lowest)


def restore_thresholds(conn: psycopg.Connection, client) -> int:
    """Make Redis's thresholds the database's (risk-scoring's decay job, every 5 minutes): a
    tracked token's lowest where Redis lost it or holds another, no field for a token nobody
    tracks. Redis could lose a change in a failover after the caller was answered, or keep
    one whose commit then failed, and only missing fields were written again (HSETNX): a
    changed or dropped threshold stayed wrong, and alerts came at it. Each token that differs
    is published under its lock, read again there (a change publishing meanwhile is waited
    for); in sorted order, so two runs take the locks alike. How many were published."""
    lowest = dict(conn.execute("SELECT token, min(alert_threshold) FROM tracked_tokens"
                               " GROUP BY token").fetchall())
    published = {field.decode(): float(value)
                 for field, value in client.hgetall(TRACKED_THRESHOLDS).items()}
    differing = sorted(token for token in lowest.keys() | published.keys()
                       if lowest.get(token) != published.get(token))
    for token in differing:
        _lock_token(conn, token)
        publish_threshold(client, token, _lowest_threshold(conn, token))
    return len(differing)


def tracked_tokens(conn: psycopg.Connection, key_id: str | None = None) -> list[dict[str, Any]]:
    """Trackings (of one key, or all), newest first."""
    where, params = ("WHERE key_id = %s", (key_id,)) if key_id else ("", ())
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT key_id, token, alert_threshold, update_interval, created_at,"
                           f" updated_at FROM tracked_tokens {where} ORDER BY updated_at DESC",
                           params).fetchall()
