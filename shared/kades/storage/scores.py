"""Per-tick anomaly scores of temporal-analysis: one row per (token, time), the highest
score given at that time, read back as a token's score history.

Row keys: time (aware datetime or ISO string), token, score (0..1), top_detector,
event_source, event_id.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

import psycopg
from psycopg.rows import dict_row

_COLUMNS = ("time", "token", "score", "top_detector", "event_source", "event_id")


def insert_scores(conn: psycopg.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert scores; a (token, time) already stored keeps the higher score (two ticks of one
    second, a trade and a pull in the next block, are both scored). Inserting a row again
    changes nothing. How many rows were inserted or raised."""
    params = [tuple(row[c] for c in _COLUMNS) for row in rows]
    if not params:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO temporal_scores ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(_COLUMNS))}) ON CONFLICT (token, time) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[2:])
            + " WHERE EXCLUDED.score > temporal_scores.score",
            params, returning=False)
        return max(cur.rowcount, 0)


def score_history(conn: psycopg.Connection, token: str, *, since: datetime,
                  limit: int = 10_000) -> list[dict[str, Any]]:
    """The token's scores since `since`, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT time, score, top_detector FROM temporal_scores "
                    "WHERE token = %s AND time >= %s ORDER BY time LIMIT %s",
                    (token, since, limit))
        return cur.fetchall()
