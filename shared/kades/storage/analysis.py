"""Reads behind GET /v1/token/{address}/analysis: metrics and risk over a time window, and
the evidence of the anomalies a risk score names."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from kades.solana.programs import WSOL
from kades.storage.repository import NEWEST_RISK_FIRST

MAX_POINTS = 500
# A metrics row's quote: what migration 0012 stores, or, for the chain's rows from before it
# ('' and a `solana:` source), the wrapped SOL mint they were priced in (read so, rather than
# updated in place: compressed chunks take no UPDATE on older TimescaleDB). Without it a
# token's SOL history before the upgrade was a series of its own, the default for a day.
_QUOTE = f"(CASE WHEN quote = '' AND source LIKE 'solana:%%' THEN '{WSOL}' ELSE quote END)"


# A series thinned where it is: per bucket of rows its first, last, lowest and highest (M4),
# at most MAX_POINTS rows in all, so that a week of a busy token (600,000 rows, 290 MB in the
# api) does not leave the database, and a 3-second flash crash or the newest risk score,
# which every n-th row left out, is still drawn where the dashboard marks it.
_THINNED = """
SELECT {columns} FROM (
    SELECT {columns}, total,
           n = min(n) OVER bucket OR n = max(n) OVER bucket
           OR row_number() OVER (PARTITION BY b ORDER BY {value} ASC NULLS LAST, n) = 1
           OR row_number() OVER (PARTITION BY b ORDER BY {value} DESC NULLS LAST, n) = 1 AS kept
    FROM (SELECT {columns}, n, total,
                 (n - 1) / ceil(total / %(buckets)s::numeric)::bigint AS b
          FROM (SELECT {columns}, row_number() OVER (ORDER BY time, {value}) AS n,
                       count(*) OVER () AS total
                FROM {table} WHERE token = %(token)s AND time >= %(since)s{where}) AS numbered
         ) AS bucketed
    WINDOW bucket AS (PARTITION BY b)) AS judged
WHERE total <= %(points)s OR kept
ORDER BY time, {value}"""


def _thinned(conn: psycopg.Connection, table: str, columns: str, value: str, token: str,
             since: datetime, quote: str | None = None) -> list[dict[str, Any]]:
    where = "" if quote is None else f" AND {_QUOTE} = %(quote)s"
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_THINNED.format(table=table, columns=columns, value=value, where=where),
                           {"token": token, "since": since, "quote": quote,
                            "points": MAX_POINTS, "buckets": MAX_POINTS // 4}).fetchall()


def metric_quotes(conn: psycopg.Connection, token: str, since: datetime) -> list[dict[str, Any]]:
    """What `token`'s metrics since `since` are priced in ("": not named), each with its
    rows, the most rows first: one series per quote (a USD feed's prices beside the chain's
    SOL ones are a hundred times apart, and their volumes no one sum)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {_QUOTE} AS quote, count(*) AS points FROM token_metrics"
                           " WHERE token = %s AND time >= %s GROUP BY 1"
                           " ORDER BY points DESC, quote", (token, since)).fetchall()


def main_quote(quotes: list[dict[str, Any]]) -> str:
    """The quote a token is read in by default: the one of metric_quotes with the most rows
    ("" for none)."""
    return quotes[0]["quote"] if quotes else ""


def metric_series(conn: psycopg.Connection, token: str, since: datetime,
                  quote: str) -> list[dict[str, Any]]:
    """Price, volume and liquidity of `token` in `quote` since `since`, oldest first, thinned
    to at most MAX_POINTS rows: of each bucket of rows, its first, last, lowest and highest
    price."""
    return _thinned(conn, "token_metrics", "time, price, volume, liquidity", "price", token,
                    since, quote)


def risk_series(conn: psycopg.Connection, token: str, since: datetime) -> list[dict[str, Any]]:
    """Risk scores of `token` since `since`, oldest first, thinned as metric_series is (by
    score): the newest always among them."""
    return _thinned(conn, "risk_scores", "time, score, level", "score", token, since)


def metric_totals(conn: psycopg.Connection, token: str, since: datetime,
                  middle: datetime, quote: str) -> dict[str, Any]:
    """Of every row in `quote` since `since` (not the thinned series'): how many, their
    volume, and the volume before and from `middle` (the window's halves in time: halves by
    rows held equal volume whenever more trading made more rows)."""
    points, volume, first, second = conn.execute(
        "SELECT count(*), sum(volume), sum(volume) FILTER (WHERE time < %(middle)s),"
        " sum(volume) FILTER (WHERE time >= %(middle)s) FROM token_metrics"
        f" WHERE token = %(token)s AND time >= %(since)s AND {_QUOTE} = %(quote)s",
        {"token": token, "since": since, "middle": middle, "quote": quote}).fetchone()
    return {"points": points, "volume": volume or 0.0, "first_half": first or 0.0,
            "second_half": second or 0.0}


def strongest_anomaly(conn: psycopg.Connection, token: str, since: datetime,
                      words: tuple[str, ...]) -> tuple[dict[str, Any] | None, int]:
    """(the highest-scored anomaly of `token` since `since` whose type holds one of `words`,
    None when none; how many such there are), over the whole timeframe: a read of the newest
    1,000 of every type missed the older ones of a busy token."""
    patterns = [f"%{word}%" for word in words]
    with conn.cursor(row_factory=dict_row) as cur:
        top = cur.execute("SELECT anomaly_type, score, details, count(*) OVER () AS hits"
                          " FROM anomaly_events WHERE token = %s AND time >= %s"
                          " AND anomaly_type LIKE ANY(%s) ORDER BY score DESC, time DESC, id"
                          " LIMIT 1", (token, since, patterns)).fetchone()
    return (top, top["hits"]) if top else (None, 0)


def latest_risks(conn: psycopg.Connection, tokens: list[str]) -> dict[str, dict[str, Any]]:
    """The newest risk score of each token that has one."""
    if not tokens:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT DISTINCT ON (token) token, time, score, level FROM risk_scores"
                           f" WHERE token = ANY(%s) ORDER BY token, {NEWEST_RISK_FIRST}",
                           (tokens,)).fetchall()
    return {row["token"]: row for row in rows}


def riskiest_tokens(conn: psycopg.Connection, since: datetime, limit: int = 20) -> list[dict]:
    """Tokens scored since `since`, by their newest score, highest first (the dashboard)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM (SELECT DISTINCT ON (token) token, time, score, level FROM risk_scores"
            f" WHERE time >= %s ORDER BY token, {NEWEST_RISK_FIRST}) latest"
            " ORDER BY score DESC, token LIMIT %s",
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
