"""Alerts as alert-dispatch received them (table `alerts`, migration 0009): written once per
alert event, read back newest first for GET /v1/alerts and the dashboard's feed on load.

The Redis alert stream (kades.alerts.stream) keeps only 5 minutes, for WebSocket replay;
this is the record that outlives it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from kades.storage.repository import MAX_PAGE_SIZE, encode_cursor, page_filter


def insert_alert(conn: psycopg.Connection, data: dict[str, Any], *, event_source: str,
                 event_id: str) -> bool:
    """Store one alert (the data of an `ai.kades.alert.issued.v1` event); False when stored
    before."""
    return insert_alerts(conn, [(data, event_source, event_id)]) == [True]


def insert_alerts(conn: psycopg.Connection,
                  alerts: list[tuple[dict[str, Any], str, str]]) -> list[bool]:
    """Store alerts given as (data, event source, event id), in one round trip; for each,
    whether it was stored now (False: stored before, by an earlier delivery of its event)."""
    rows = [(datetime.fromisoformat(data["time"]), data["token"], data["kind"], data["level"],
             data["score"], Jsonb(data), event_source, event_id)
            for data, event_source, event_id in alerts]
    if not rows:
        return []
    with conn.cursor() as cur:
        stored = {tuple(row) for row in cur.execute(
            "INSERT INTO alerts (time, token, kind, level, score, data, event_source, event_id)"
            " SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::text[], %s::text[],"
            " %s::float8[], %s::jsonb[], %s::text[], %s::text[])"
            " ON CONFLICT DO NOTHING RETURNING event_source, event_id",
            [list(column) for column in zip(*rows)]).fetchall()}
    return [(event_source, event_id) in stored for _, event_source, event_id in alerts]


def recent_alerts(conn: psycopg.Connection, *, token: str | None = None,
                  start_time: datetime | None = None, limit: int = 50,
                  cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of alerts, newest first: each the stored data (`time` as a datetime) plus
    `alert_id` (the event id, as WebSocket frames carry it), and the cursor of the next page
    (None at the end)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    where, params = page_filter((("token = %s", token), ("time >= %s", start_time)), cursor)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT id, time, event_id, data FROM alerts {where}"
                           " ORDER BY time DESC, id DESC LIMIT %s", [*params, limit + 1]).fetchall()
    page = [{**row["data"], "time": row["time"], "alert_id": row["event_id"]}
            for row in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return page, encode_cursor(last["time"], last["id"]) if last else None
