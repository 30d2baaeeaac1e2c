"""Reads behind GET /v1/token/{address}/analysis: metrics and risk over a time window, and
the evidence of the anomalies a risk score names."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

MAX_POINTS = 500


# A series thinned where it is: every n-th row of the window and its newest, so that a week
# of a busy token (600,000 rows, 290 MB in the api) does not leave the database to be cut
# to MAX_POINTS in Python.
_THINNED = """
SELECT {columns} FROM (
    SELECT {columns}, row_number() OVER (ORDER BY time) AS n, count(*) OVER () AS total
    FROM {table} WHERE token = %(token)s AND time >= %(since)s) AS window_rows
WHERE (n - 1) %% ceil(total / %(points)s::numeric)::bigint = 0 OR (%(newest)s AND n = total)
ORDER BY time"""


def _thinned(conn: psycopg.Connection, table: str, columns: str, token: str, since: datetime,
             *, newest: bool) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_THINNED.format(table=table, columns=columns),
                           {"token": token, "since": since, "points": MAX_POINTS,
                            "newest": newest}).fetchall()


def metric_series(conn: psycopg.Connection, token: str, since: datetime) -> list[dict[str, Any]]:
    """Price, volume and liquidity of `token` since `since`, oldest first, thinned to at most
    MAX_POINTS rows (every n-th; the newest row is always kept)."""
    return _thinned(conn, "token_metrics", "time, price, volume, liquidity", token, since,
                    newest=True)


def risk_series(conn: psycopg.Connection, token: str, since: datetime) -> list[dict[str, Any]]:
    """Risk scores of `token` since `since`, oldest first, thinned to at most MAX_POINTS
    (every n-th)."""
    return _thinned(conn, "risk_scores", "time, score, level", token, since, newest=False)


def latest_risks(conn: psycopg.Connection, tokens: list[str]) -> dict[str, dict[str, Any]]:
    """The newest risk score of each token that has one."""
    if not tokens:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT DISTINCT ON (token) token, time, score, level FROM risk_scores"
                           " WHERE token = ANY(%s) ORDER BY token, time DESC", (tokens,)).fetchall()
    return {row["token"]: row for row in rows}


def riskiest_tokens(conn: psycopg.Connection, since: datetime, limit: int = 20) -> list[dict]:
    """Tokens scored since `since`, by their newest score, highest first (the dashboard)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM (SELECT DISTINCT ON (token) token, time, score, level FROM risk_scores"
            " WHERE time >= %s ORDER BY token, time DESC) latest ORDER BY score DESC LIMIT %s",
            (since, limit)).fetchall()


_NAMES = {"time", "anomaly_type", "score"}  # what an explanation entry names its anomaly by


def _moment(value: datetime | str) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return value


def with_evidence(conn: psycopg.Connection, token: str, explanation: list[dict]) -> list[dict]:
    """The risk score's explanation entries, each with `details`: the stored anomaly's evidence
    (None when it was not stored). An entry names its anomaly by type, time, detector and
    score; several stored rows alike (two wallets in one event) go to entries in turn."""
    named = [e for e in explanation if isinstance(e, dict) and _NAMES <= e.keys()]
    if not named:
        return explanation  # nothing that names an anomaly (older or foreign shapes)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT time, anomaly_type, detector, score, details FROM anomaly_events"
            " WHERE token = %s AND time = ANY(%s) ORDER BY time, id",
            (token, sorted({_moment(e["time"]) for e in named}))).fetchall()
    stored: dict[tuple, list[dict]] = {}
    for row in rows:
        key = (row["time"], row["anomaly_type"], row["detector"], round(row["score"], 4))
        stored.setdefault(key, []).append(row["details"])
    entries = []
    for entry in explanation:
        if entry in named:
            found = stored.get((_moment(entry["time"]), entry["anomaly_type"],
                                entry.get("detector", ""), round(float(entry["score"]), 4)))
            entry = {**entry, "details": found.pop(0) if found else None}
        entries.append(entry)
    return entries
