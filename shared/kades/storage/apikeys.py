"""API keys in PostgreSQL: create (returns the key once), find by key, list, revoke."""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from kades.apikey import TIERS, hash_key, key_id, matches, name_problem, new_key


def create_key(conn: psycopg.Connection, *, tier: str, name: str = "") -> tuple[str, str]:
    """(key id, the key itself): the key is never stored, show it to the user now."""
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
    if name_problem(name):
        raise ValueError(f"{name_problem(name)}: {name!r}")
    while True:  # a key id collision (1 in 62**8 per pair) draws a new key
        key = new_key()
        salt, digest = hash_key(key)
        inserted = conn.execute(
            "INSERT INTO api_keys (key_id, salt, key_hash, tier, name) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING", (key_id(key), salt, digest, tier, name)).rowcount
        if inserted:
            return key_id(key), key


def find_key(conn: psycopg.Connection, key: str) -> dict[str, Any] | None:
    """The live key row ({key_id, tier, name}) that `key` is, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT key_id, salt, key_hash, tier, name FROM api_keys"
                          " WHERE key_id = %s AND revoked_at IS NULL", (key_id(key),)).fetchone()
    if row is None or not matches(key, bytes(row["salt"]), bytes(row["key_hash"])):
        return None
    return {"key_id": row["key_id"], "tier": row["tier"], "name": row["name"]}


def key_exists(conn: psycopg.Connection, the_key_id: str) -> dict[str, Any] | None:
    """The live key row of a key id (JWT subjects name key ids), or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT key_id, tier, name FROM api_keys"
                           " WHERE key_id = %s AND revoked_at IS NULL", (the_key_id,)).fetchone()


def hold_live_key(conn: psycopg.Connection, the_key_id: str) -> bool:
    """Whether the key is live, its row then locked until the transaction ends: what a key
    sets up (webhooks, trackings) is written under it. A key is remembered as verified for a
    while (by the api's auth), and what it set up meanwhile outlived its revocation, which
    deletes all of it at once: signed alerts kept going to a thief's URL. Locked, a revoke
    waits for the write and deletes it too; revoked first, the write is refused. It also
    serialises one key's writes (its webhook cap counted, then inserted)."""
    return conn.execute("SELECT 1 FROM api_keys WHERE key_id = %s AND revoked_at IS NULL"
                        " FOR UPDATE", (the_key_id,)).fetchone() is not None


def revoke_key(conn: psycopg.Connection, the_key_id: str) -> bool:
    """Revoke a key by id; False when there was no live key of that id."""
    return conn.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s"
                        " AND revoked_at IS NULL", (the_key_id,)).rowcount == 1


def list_keys(conn: psycopg.Connection, *, revoked: bool = False) -> list[dict[str, Any]]:
    """Every live key ({key_id, tier, name, created_at, revoked_at}), oldest first; with
    `revoked`, the revoked ones too. The key itself is not stored, so it cannot be listed."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT key_id, tier, name, created_at, revoked_at FROM api_keys"
                           " WHERE %s OR revoked_at IS NULL ORDER BY created_at, key_id",
                           (revoked,)).fetchall()
