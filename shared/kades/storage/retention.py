"""`kades retention`: remove stored rows past the retention horizon (90 days by default).

On TimescaleDB's community edition the retention policies of the migrations do this by
themselves; plain PostgreSQL and the Apache-2 edition have no job scheduler, so the CronJob
`kades-retention` runs this command (knative/base/520-retention.yaml). It calls the SQL
function `kades_apply_retention` (migration 0008, which 0009 and 0011 extend to alerts and
settled webhook deliveries): whole chunks are dropped from hypertables, rows deleted from
plain tables.
"""
from __future__ import annotations

import argparse

import psycopg

from kades import exitcodes
from kades.cliutil import bounded, database_url, report_error
from kades.settings import Settings


def apply_retention(conn: psycopg.Connection, *, keep_days: float = 90.0) -> list[tuple]:
    """Remove what is older than `keep_days`; (table, how many removed, unit) per table."""
    if keep_days <= 0:
        raise ValueError(f"keep_days must be positive, not {keep_days}")
    return conn.execute("SELECT table_name, removed, unit FROM kades_apply_retention("
                        "make_interval(secs => %s))", (keep_days * 86400,)).fetchall()


def main_retention(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kades retention", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, type=database_url,
                        help="default: KADES_DATABASE_URL or the local development database")
    parser.add_argument("--keep-days", type=bounded(float, 0.001, 36500, "days from 0.001 to 36500"),
                        default=90.0,
                        help="keep rows newer than this many days (default 90, as the "
                             "TimescaleDB policies)")
    args = parser.parse_args(argv)
    url = args.database_url or Settings.from_env().database_url
    try:
        with psycopg.connect(url) as conn:
            removed = apply_retention(conn, keep_days=args.keep_days)
    except psycopg.Error as error:  # away (3); refused, or not migrated (1): report_error says
        return report_error("retention", "the database", error)
    for table, count, unit in removed:
        print(f"{table:<16} {count} {unit} removed")
    return exitcodes.OK
