"""Reads and writes of metrics, anomalies and risk scores: plain functions over a connection.

The caller owns the transaction (`with pool.connection() as conn:` commits on exit). Every
insert is `ON CONFLICT DO NOTHING` on a key that holds the event's (source, id), so a
redelivered event inserts nothing and the functions report how many rows were new.
`time` is a timezone-aware `datetime` or an ISO 8601 string with an offset.

Row dicts (keys marked ? are optional):

token metrics  time, token, source (the feed or venue that measured it), quote? (what the
               price is in: the chain's ticks the wrapped SOL mint, "" when a feed names
               none), price?, volume?, liquidity?, event_source?, event_id?, slot? (the chain
               slot of a block's tick: the slots of one second merge into one row, see
               insert_token_metrics)
anomaly        time, token, anomaly_type, score (0..1), detector, event_source, event_id,
               severity? (label), details? (dict), anomaly_key? (tells apart several anomalies
               of one type and token raised by one event, e.g. a wallet; default "")
risk score     time, token, score (0..1), level (low|medium|high|critical), event_source,
               event_id, components? (dict), explanation? (list or dict)

`query_anomalies` returns anomaly dicts with every key above plus `id`, newest first.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, Iterable, Mapping

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

MAX_PAGE_SIZE = 1000

_METRIC_COLUMNS = ("time", "token", "source", "quote", "price", "volume", "liquidity",
                   "event_source", "event_id")
_METRIC_DEFAULTS = {"quote": "", "price": None, "volume": None, "liquidity": None,
                    "event_source": "", "event_id": ""}
_ANOMALY_COLUMNS = ("time", "token", "anomaly_type", "score", "severity", "detector", "details",
                    "event_source", "event_id", "anomaly_key")
_ANOMALY_DEFAULTS = {"severity": None, "details": {}, "anomaly_key": ""}
_RISK_COLUMNS = ("time", "token", "score", "level", "components", "explanation",
                 "event_source", "event_id")
_RISK_DEFAULTS = {"components": {}, "explanation": []}
_JSON_COLUMNS = {"details", "components", "explanation"}


def _as_time(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"time must be a timezone-aware datetime or ISO string, got {value!r}")
    return moment


def _params(rows: Iterable[Mapping[str, Any]], columns: tuple[str, ...],
            defaults: Mapping[str, Any], what: str) -> list[dict[str, Any]]:
    """Complete each row with the defaults; every missing required key is named in one error."""
    out, problems = [], []
    for index, row in enumerate(rows):
        values = {**defaults, **row}
        missing = [c for c in columns if c not in values]
        if missing:
            problems.append(f"{what} {index}: missing {', '.join(missing)}")
            continue
        params = {c: values[c] for c in columns}
        params["time"] = _as_time(params["time"])
        for column in _JSON_COLUMNS.intersection(params):
            params[column] = Jsonb(params[column])
        out.append(params)
    if problems:
        raise ValueError("; ".join(problems))
    return out


def _insert(conn: psycopg.Connection, table: str, columns: tuple[str, ...],
            params: list[dict[str, Any]]) -> int:
    if not params:
        return 0
    statement = (f"INSERT INTO {table} ({', '.join(columns)}) "
                 f"VALUES ({', '.join(f'%({c})s' for c in columns)}) ON CONFLICT DO NOTHING")
    with conn.cursor() as cur:
        cur.executemany(statement, params)  # pipelined: one round trip for the batch
        return cur.rowcount


# A chain tick's slot merged into its second's row (migration 0010): once per slot, in any
# order of arrival (the Broker's), volume summed and price and liquidity the newest slot's.
_NEWER = "EXCLUDED.slots[1] > (SELECT max(s) FROM unnest(token_metrics.slots) s)"
_MERGE_SLOT = f"""
INSERT INTO token_metrics ({', '.join(_METRIC_COLUMNS)}, slots)
VALUES ({', '.join(f'%({c})s' for c in _METRIC_COLUMNS)}, ARRAY[%(slot)s]::bigint[])
ON CONFLICT (token, time, source, quote) DO UPDATE SET
    price = CASE WHEN {_NEWER} THEN EXCLUDED.price ELSE token_metrics.price END,
    liquidity = CASE WHEN {_NEWER} THEN EXCLUDED.liquidity ELSE token_metrics.liquidity END,
    event_source = CASE WHEN {_NEWER} THEN EXCLUDED.event_source ELSE token_metrics.event_source END,
    event_id = CASE WHEN {_NEWER} THEN EXCLUDED.event_id ELSE token_metrics.event_id END,
    volume = CASE WHEN token_metrics.volume IS NULL AND EXCLUDED.volume IS NULL THEN NULL
                  ELSE coalesce(token_metrics.volume, 0) + coalesce(EXCLUDED.volume, 0) END,
    slots = token_metrics.slots || EXCLUDED.slots
WHERE token_metrics.slots <> '{{}}' AND NOT EXCLUDED.slots[1] = ANY(token_metrics.slots)
"""


def insert_token_metrics(conn: psycopg.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Store token metrics; the number of rows that were new or took in a new slot.

    A row with a `slot` (a chain block's tick) merges with the row of the same token, second
    and source that other slots made; a row without one (a feed's) is stored once per key."""
    rows = list(rows)
    params = _params(rows, _METRIC_COLUMNS, _METRIC_DEFAULTS, "token metrics")
    slots = [row.get("slot") for row in rows]
    slots = [slot if isinstance(slot, int) and 0 <= slot < 2**63 else None for slot in slots]
    plain = [p for p, slot in zip(params, slots) if slot is None]  # (a u64 slot past bigint too)
    merged = [{**p, "slot": slot} for p, slot in zip(params, slots) if slot is not None]
    count = _insert(conn, "token_metrics", _METRIC_COLUMNS, plain)
    if merged:
        with conn.cursor() as cur:
            cur.executemany(_MERGE_SLOT, merged)
            count += cur.rowcount
    return count


def insert_anomalies(conn: psycopg.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Store anomalies; the number of rows that were new."""
    params = _params(rows, _ANOMALY_COLUMNS, _ANOMALY_DEFAULTS, "anomaly")
    return _insert(conn, "anomaly_events", _ANOMALY_COLUMNS, params)


def insert_risk_score(conn: psycopg.Connection, row: Mapping[str, Any]) -> bool:
    """Store one risk score; False when the same event had stored it already."""
    params = _params([row], _RISK_COLUMNS, _RISK_DEFAULTS, "risk score")
    return _insert(conn, "risk_scores", _RISK_COLUMNS, params) == 1


def lock_risk_scores(conn: psycopg.Connection, tokens: Iterable[str]) -> None:
    """Hold, until the transaction ends, the right to write `tokens`' risk scores: an advisory
    lock each, taken in the order of their keys (two transactions never wait on each other in
    a circle). risk-scoring updates a token's Redis state before its transaction commits; another replica
    reading that state to rescore the token's rows from a late anomaly could not see the rows
    not yet committed, which then kept a risk without it. Taking the lock, it waits for them."""
    names = sorted({f"kades.risk_scores:{token}" for token in tokens})
    if names:  # one statement: a decay ping's 500 tokens were 500 round trips
        conn.execute("SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT"
                     " hashtextextended(name, 0) AS key FROM unnest(%s::text[]) AS name"
                     " ORDER BY key) AS keys", (names,))


def risk_score_times(conn: psycopg.Connection, token: str, since: Any) -> list[datetime]:
    """The distinct times of `token`'s stored risk scores from `since` on, oldest first."""
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT time FROM risk_scores WHERE token = %s AND time >= %s ORDER BY time",
        (token, _as_time(since))).fetchall()]


def update_risk_scores(conn: psycopg.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Set score, level, components and explanation of every stored risk score of each row's
    (token, time), whichever event stored it; the number of rows changed."""
    params = _params([{"event_source": "", "event_id": "", **row} for row in rows],
                     _RISK_COLUMNS, _RISK_DEFAULTS, "risk score")
    if not params:
        return 0
    with conn.cursor() as cur:
        cur.executemany("UPDATE risk_scores SET score = %(score)s, level = %(level)s,"
                        " components = %(components)s, explanation = %(explanation)s"
                        " WHERE token = %(token)s AND time = %(time)s", params)
        return cur.rowcount


def encode_cursor(time: datetime, row_id: int) -> str:
    raw = json.dumps([time.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (time, id) a page cursor points after; ValueError when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        time_text, row_id = json.loads(raw)
        if type(row_id) is not int or not 0 <= row_id < 2 ** 63:  # a bigint (1e400 was a 500)
            raise ValueError(f"row id {row_id!r}")
        return _as_time(time_text), row_id
    # bad base64, JSON (nested past what json.loads recurses: a 500), shape, time or id
    except (ValueError, TypeError, RecursionError) as error:
        raise ValueError(f"invalid cursor {cursor!r}") from error


def page_filter(filters: Iterable[tuple[str, Any]], cursor: str | None) -> tuple[str, list]:
    """The WHERE clause and its parameters of a keyset page: each (clause, value) whose value
    is not None, and the rows after `cursor` in (time, id) order, newest first."""
    conditions, params = [], []
    for clause, value in filters:
        if value is not None:
            conditions.append(clause)
            params.append(value)
    if cursor is not None:
        conditions.append("(time, id) < (%s, %s)")
        params.extend(decode_cursor(cursor))
    return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), params


def query_anomalies(conn: psycopg.Connection, *, start_time: datetime | None = None,
                    end_time: datetime | None = None, min_score: float | None = None,
                    anomaly_type: str | None = None, token: str | None = None,
                    limit: int = 100, cursor: str | None = None
                    ) -> tuple[list[dict[str, Any]], str | None]:
    """One page of anomalies, newest first, and the cursor of the next page (None at the end).

    `start_time` is inclusive, `end_time` exclusive. Pages are keyed on (time, id), so rows
    inserted while a client pages through never make it see a row twice.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    where, params = page_filter((("time >= %s", start_time), ("time < %s", end_time),
                                 ("score >= %s", min_score), ("anomaly_type = %s", anomaly_type),
                                 ("token = %s", token)), cursor)
    statement = (f"SELECT id, {', '.join(_ANOMALY_COLUMNS)} FROM anomaly_events {where} "
                 f"ORDER BY time DESC, id DESC LIMIT %s")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(statement, [*params, limit + 1]).fetchall()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]["time"], rows[-1]["id"])


# The order that makes a token's newest risk score one row, not whichever of two rows of one
# instant the planner met first (the analysis, the tracked list and the riskiest tokens agree).
NEWEST_RISK_FIRST = "time DESC, score DESC, event_id"


def latest_risk_score(conn: psycopg.Connection, token: str) -> dict[str, Any] | None:
    """The newest risk score of `token`, or None when it has none; of two at its newest time
    (two events' scores of one instant), the higher, wherever the API reads "the newest"."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {', '.join(_RISK_COLUMNS)} FROM risk_scores WHERE token = %s"
                           f" ORDER BY {NEWEST_RISK_FIRST} LIMIT 1", (token,)).fetchone()
