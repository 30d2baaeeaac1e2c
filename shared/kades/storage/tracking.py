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

from kades.errors import TemporaryFailure
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


def publish_threshold(client, token: str, lowest: float | None, *, replicas: int = 0,
                      wait_s: float = 0.5) -> None:
    """A token's lowest threshold, for risk-scoring (it reads the hash on each score); none
    left drops the field, so the default applies and the hash holds only tracked tokens.
    Called inside the tracking's transaction, under its lock: changes publish in the order
    they commit. A commit that fails after this leaves the value the caller asked for, who
    gets an error and retries. With `replicas` (Settings.redis_wait_replicas) it returns once
    that many replicas have it, else raises TemporaryFailure (a 503; the transaction rolls
    back): `restore_thresholds` only fills fields Redis lost, so a change lost in a failover
    after the caller was answered stayed lost, and risk-scoring alerted at the old one."""
    pipe = client.pipeline(transaction=False)  # one connection: WAIT counts its writes
    if lowest is None:
        pipe.hdel(TRACKED_THRESHOLDS, token)
    else:
        pipe.hset(TRACKED_THRESHOLDS, token, lowest)
    if replicas:
        pipe.execute_command("WAIT", replicas, max(1, round(wait_s * 1000)))
    acked = pipe.execute()[-1]
    if replicas and acked < replicas:
        raise TemporaryFailure(f"the alert threshold of {token} reached {acked} of {replicas} "
                               f"replicas within {wait_s} s")


def restore_thresholds(conn: psycopg.Connection, client) -> int:
    """Publish again every tracked token's lowest threshold that Redis lost (a Redis moved
    without its keys, a failover that dropped a recent write): risk-scoring then fell back
    to the default without a sign, while the api still listed the caller's threshold. Only
    missing fields are written (HSETNX): a value present is the newest, published under the
    token's lock. How many were restored."""
    lowest = conn.execute("SELECT token, min(alert_threshold) FROM tracked_tokens"
                          " GROUP BY token").fetchall()
    if not lowest:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for token, threshold in lowest:
            pipe.hsetnx(TRACKED_THRESHOLDS, token, threshold)
        return sum(pipe.execute())


def tracked_tokens(conn: psycopg.Connection, key_id: str | None = None) -> list[dict[str, Any]]:
    """Trackings (of one key, or all), newest first."""
    where, params = ("WHERE key_id = %s", (key_id,)) if key_id else ("", ())
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT key_id, token, alert_threshold, update_interval, created_at,"
                           f" updated_at FROM tracked_tokens {where} ORDER BY updated_at DESC",
                           params).fetchall()
