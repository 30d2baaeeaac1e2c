"""Webhooks and the queue of their deliveries (a table: claimed with SKIP LOCKED).

A delivery row is queued once per (webhook, alert event); workers claim due rows by moving
their `next_attempt_at` a lease ahead, so a worker that dies mid-send is retried later.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

LEVELS = ("low", "medium", "high", "critical")
_COLUMNS = "id, url, min_level, tokens, created_at"


def create_webhook(conn: psycopg.Connection, *, key_id: str, url: str, secret: str,
                   min_level: str = "high", tokens: list[str] | None = None) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "INSERT INTO webhooks (id, key_id, url, secret, min_level, tokens)"
            f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (uuid.uuid4(), key_id, url, secret, min_level, tokens or [])).fetchone()


def list_webhooks(conn: psycopg.Connection, key_id: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {_COLUMNS} FROM webhooks WHERE key_id = %s AND"
                           " deleted_at IS NULL ORDER BY created_at", (key_id,)).fetchall()


def delete_webhook(conn: psycopg.Connection, key_id: str, webhook_id: uuid.UUID) -> bool:
    """Soft delete (pending deliveries stop); False when the key has no such webhook."""
    return conn.execute("UPDATE webhooks SET deleted_at = now() WHERE id = %s AND key_id = %s"
                        " AND deleted_at IS NULL", (webhook_id, key_id)).rowcount == 1


def delete_webhooks_of(conn: psycopg.Connection, key_id: str) -> int:
    """Soft delete every webhook of a key (revoked): their pending deliveries stop; how many."""
    return conn.execute("UPDATE webhooks SET deleted_at = now() WHERE key_id = %s"
                        " AND deleted_at IS NULL", (key_id,)).rowcount


def live_webhooks(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every live webhook with what it wants (see `wants`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT id, min_level, tokens FROM webhooks"
                           " WHERE deleted_at IS NULL").fetchall()


def wants(webhook: dict[str, Any], *, token: str, level: str) -> bool:
    """Whether `webhook` wants an alert of `level` about `token`."""
    return (LEVELS.index(level) >= LEVELS.index(webhook["min_level"])
            and (not webhook["tokens"] or token in webhook["tokens"]))


def queue_deliveries(conn: psycopg.Connection, webhook_ids: list[uuid.UUID], alert_id: str,
                     payload: dict) -> int:
    """Queue one delivery per webhook (nothing twice for one alert); how many are new."""
    if not webhook_ids:
        return 0
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO webhook_deliveries (webhook_id, alert_id, payload)"
                        " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                        [(w, alert_id, Jsonb(payload)) for w in webhook_ids])
        return cur.rowcount


def claim_due(conn: psycopg.Connection, *, limit: int, lease_s: float) -> list[dict[str, Any]]:
    """Claim up to `limit` due deliveries for `lease_s` seconds (commit to make it stick)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "UPDATE webhook_deliveries d SET next_attempt_at = now() + %s, attempts = attempts + 1,"
            " updated_at = now() FROM webhooks w WHERE d.webhook_id = w.id AND d.id IN ("
            "  SELECT d2.id FROM webhook_deliveries d2 WHERE d2.status = 'pending'"
            "  AND d2.next_attempt_at <= now() ORDER BY d2.next_attempt_at LIMIT %s"
            "  FOR UPDATE SKIP LOCKED)"
            " RETURNING d.id, d.alert_id, d.payload, d.attempts, w.url, w.secret,"
            " w.deleted_at IS NOT NULL AS webhook_deleted",
            (timedelta(seconds=lease_s), limit)).fetchall()


def record_attempt(conn: psycopg.Connection, delivery_id: int, attempts: int, *, status: str,
                   http_status: int | None, error: str | None, retry_in_s: float | None) -> bool:
    """Store how an attempt went: delivered, dead, or pending again after `retry_in_s`;
    only while the delivery is still the claim that made it (`attempts`, which each claim
    counts up): an attempt recorded after its lease ran out, when another replica had
    claimed it again, set "pending" over that one's "delivered", and it was sent a third
    time. Whether it was recorded."""
    # on the database's clock, as claims compare it: this process's, ahead or behind, made
    # every retry that much sooner or later
    return conn.execute("UPDATE webhook_deliveries SET status = %s, last_status = %s,"
                        " last_error = %s, next_attempt_at = now() + make_interval(secs => %s),"
                        " updated_at = now() WHERE id = %s AND attempts = %s",
                        (status, http_status, error, float(retry_in_s or 0), delivery_id,
                         attempts)).rowcount == 1


def deliveries(conn: psycopg.Connection, *, status: str | None = None) -> list[dict[str, Any]]:
    where, params = ("WHERE status = %s", (status,)) if status else ("", ())
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT id, webhook_id, alert_id, status, attempts, last_status,"
                           f" last_error FROM webhook_deliveries {where} ORDER BY id",
                           params).fetchall()
