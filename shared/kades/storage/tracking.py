"""Tracked tokens: which caller watches which token, and from which risk it wants alerts."""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


def track_token(conn: psycopg.Connection, *, key_id: str, token: str, alert_threshold: float,
                update_interval: int) -> float:
    """Insert or update one tracking; the lowest threshold anyone set for the token."""
    conn.execute(
        "INSERT INTO tracked_tokens (key_id, token, alert_threshold, update_interval)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (key_id, token) DO UPDATE SET"
        " alert_threshold = EXCLUDED.alert_threshold,"
        " update_interval = EXCLUDED.update_interval, updated_at = now()",
        (key_id, token, alert_threshold, update_interval))
    return conn.execute("SELECT min(alert_threshold) FROM tracked_tokens WHERE token = %s",
                        (token,)).fetchone()[0]


def tracked_tokens(conn: psycopg.Connection, key_id: str | None = None) -> list[dict[str, Any]]:
    """Trackings (of one key, or all), newest first."""
    where, params = ("WHERE key_id = %s", (key_id,)) if key_id else ("", ())
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT key_id, token, alert_threshold, update_interval, created_at,"
                           f" updated_at FROM tracked_tokens {where} ORDER BY updated_at DESC",
                           params).fetchall()
