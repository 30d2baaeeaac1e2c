"""Schema migrations: plain SQL files applied in order, each once, recorded in `schema_migrations`.

File names in `migrations/` say what a file needs:
- `NNNN_name.sql` runs on every PostgreSQL;
- `NNNN_name.timescale.sql` needs the `timescaledb` extension, in either edition (hypertables);
- `NNNN_name.community.sql` needs its community edition (the Timescale License): retention
  and compression policies, continuous aggregates. On the Apache-2 edition
  (`timescaledb.license = 'apache'`, what some managed clouds ship) these fail, so they stay
  pending there and the plain equivalents of the other files serve instead (the plain daily
  view, retention by `kades retention`).
A file whose needs are not met stays pending (reported as skipped, with the reason) and a
later run applies it once they are. So does an extension's file that fails (a managed
TimescaleDB that refuses a policy): the plain files after it are applied all the same, since
they hold on plain PostgreSQL too, and the run then fails naming it. Such a failure had left
every later plain file unapplied, and every function unready for a missing migration.

Each file runs in its own transaction, together with its row in `schema_migrations`. A
session advisory lock serialises concurrent runners (two replicas starting at once, a
migration Job racing a developer), and a second run applies nothing.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from kades import exitcodes
from kades.cliutil import bounded, database_url, report_error
from kades.errors import KadesError
from kades.settings import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ADVISORY_LOCK_KEY = 0x4B41444553  # "KADES"
_FILE_NAME = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<needs>timescale|community))?\.sql$")
# What each storage edition can run, from the least to the most.
EDITIONS = {"postgres": {"postgres"}, "apache": {"postgres", "timescale"},
            "community": {"postgres", "timescale", "community"}}


class MigrationError(KadesError, RuntimeError):
    """The migration files or the recorded history are inconsistent."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    needs: str = "postgres"   # postgres | timescale | community: see the module's docstring

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in `directory`, in version order; unknown `.sql` names are errors."""
    migrations, problems = [], []
    for path in sorted(Path(directory).glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            problems.append(f"{path.name}: expected NNNN_name.sql, NNNN_name.timescale.sql"
                            " or NNNN_name.community.sql")
            continue
        migrations.append(Migration(match["version"], match["name"], path,
                                    needs=match["needs"] or "postgres"))
    versions = [m.version for m in migrations]
    problems += [f"version {v} used twice" for v in sorted(set(versions)) if versions.count(v) > 1]
    if problems:
        raise MigrationError("bad migration files: " + "; ".join(problems))
    return migrations


@dataclass(frozen=True)
class Edition:
    """Which storage a database runs on: `name` is postgres, apache or community."""

    name: str
    description: str

    def can_run(self, migration: Migration) -> bool:
        return migration.needs in EDITIONS[self.name]


def storage_edition(conn: psycopg.Connection) -> Edition:
    """The storage `conn` runs on: plain PostgreSQL, or TimescaleDB in one of its editions
    (where the extension is installed, or can be created because the server preloads it).

    Whether the server preloads it is read from the loader's own setting, which any role may
    read: `shared_preload_libraries` is for superusers and pg_read_all_settings only, and a
    database's owner (CloudNativePG's `app`, a managed cloud's user) got a traceback there."""
    server, available, version, loader, license_ = conn.execute(
        "SELECT current_setting('server_version'),"
        "       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),"
        "       (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
        "       current_setting('timescaledb.disable_load', true),"
        "       current_setting('timescaledb.license', true)").fetchone()
    plain = f"plain PostgreSQL {server.split()[0]}"
    if version is None:
        if not available:
            return Edition("postgres", plain + " (timescaledb extension not installed)")
        if loader is None:  # the loader registers it when preloaded, in every database
            return Edition("postgres", plain + " (timescaledb installed but not in "
                                               "shared_preload_libraries)")
        version = conn.execute("SELECT default_version FROM pg_available_extensions"
                               " WHERE name = 'timescaledb'").fetchone()[0]
    if license_ == "apache":
        return Edition("apache", f"TimescaleDB {version} Apache-2 edition on PostgreSQL "
                                 f"{server.split()[0]} (hypertables; plain retention and "
                                 "daily view)")
    return Edition("community", f"TimescaleDB {version} community edition on PostgreSQL "
                                f"{server.split()[0]}")


_CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


@functools.cache
def needed_version(directory: Path = MIGRATIONS_DIR) -> str:
    """The newest migration every edition applies: a database without it is not this code's."""
    return max(m.version for m in discover(directory) if m.needs == "postgres")


def schema_problem(conn: psycopg.Connection) -> str | None:
    """Why this code cannot use the database yet (its migrations not applied), or None."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
    newest = needed_version()
    if exists and conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s",
                               (newest,)).fetchone():
        return None
    return f"migration {newest} not applied (kades migrate)"


def _applied(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())


def _check_history(migrations: list[Migration], applied: dict[str, str]) -> list[str]:
    """The versions a newer release applied (past every file here: a rollback of the code,
    whose schema stays, as docs/operations.md's "Roll out and roll back" says); raises
    MigrationError for a file gone from the middle of the history or changed since."""
    known = {m.version: m for m in migrations}
    newest = max(known, default="")
    newer = sorted(v for v in applied if v not in known and v > newest)
    problems = [f"{v}: applied but its file is gone" for v in applied
                if v not in known and v not in newer]
    problems += [f"{v}: {known[v].path.name} changed after it was applied"
                 for v in applied if v in known and known[v].checksum != applied[v]]
    if problems:
        raise MigrationError("migration history does not match the files: " + "; ".join(problems))
    return newer


def migrate(database_url: str, *, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration that can run here; the versions applied, in order."""
    migrations = discover(directory)
    done: list[str] = []
    failed: list[str] = []  # extensions' files that failed, left pending (the module's doc)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            conn.execute(_CREATE_HISTORY)
            applied = _applied(conn)
            _check_history(migrations, applied)
            edition = storage_edition(conn)
            for migration in migrations:
                if migration.version in applied or not edition.can_run(migration):
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql)
                        conn.execute("INSERT INTO schema_migrations (version, name, checksum)"
                                     " VALUES (%s, %s, %s)",
                                     (migration.version, migration.name, migration.checksum))
                except psycopg.OperationalError:
                    raise  # the connection, not the file: said as such (main_migrate)
                except psycopg.DatabaseError as error:  # TimescaleDB's own too (XX000, TS...)
                    failed.append(f"{migration.path.name} failed: {error}")
                    if migration.needs == "postgres":
                        raise MigrationError("; ".join(failed)) from error
                    continue
                done.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    if failed:
        raise MigrationError("; ".join(failed) + " (left pending; applied: "
                             + (", ".join(done) or "nothing") + ")")
    return done


def status(database_url: str, *, directory: Path = MIGRATIONS_DIR) -> list[dict[str, str]]:
    """One row per migration file: version, name, state (applied / pending / skipped), reason."""
    migrations = discover(directory)
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
        applied = _applied(conn) if exists else {}
        names = dict(conn.execute("SELECT version, name FROM schema_migrations")) if exists else {}
        edition = storage_edition(conn)
    newest = max((m.version for m in migrations), default="")
    rows = [{"version": v, "name": names[v], "state": "applied",
             "reason": "by a newer release: no file here, its schema stays"}
            for v in sorted(applied) if v > newest]
    for m in migrations:
        if m.version in applied:
            state, reason = "applied", ""
        elif not edition.can_run(m):
            state, reason = "skipped", f"needs {m.needs}; this is {edition.description}"
        else:
            state, reason = "pending", ""
        rows.append({"version": m.version, "name": m.name, "state": state, "reason": reason})
    return sorted(rows, key=lambda row: row["version"])


def wait_for(database_url: str, wait_s: float, *, sleep=time.sleep, clock=time.monotonic) -> None:
    """Return once the database takes a connection; its last OperationalError after `wait_s`."""
    deadline = clock() + wait_s
    while True:
        try:
            psycopg.connect(database_url, connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if clock() >= deadline:
                raise
            sleep(2.0)


def main_migrate(argv: list[str] | None = None) -> int:
    """`kades migrate [--database-url URL] [--status] [--wait-s S]`."""
    parser = argparse.ArgumentParser(prog="kades migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, type=database_url,
                        help="default: KADES_DATABASE_URL or the local development database")
    parser.add_argument("--status", action="store_true", help="show the state, apply nothing")
    parser.add_argument("--wait-s", type=bounded(float, 0, 86400, "seconds from 0 to 86400"),
                        default=0.0,
                        help="wait up to this long for the database to take connections "
                             "(a first install: it starts beside the migration Job)")
    args = parser.parse_args(argv)
    url = args.database_url or Settings.from_env().database_url
    try:
        wait_for(url, args.wait_s)
        applied = [] if args.status else migrate(url)
        rows = status(url)
        with psycopg.connect(url) as conn:
            edition = storage_edition(conn)
    except MigrationError as error:
        print(f"kades migrate: {error}", file=sys.stderr)
        return exitcodes.FAILURE
    except psycopg.Error as error:  # away (3), or refused: no such database, a privilege (1)
        return report_error("migrate", "the database", error)
    print(f"storage: {edition.description}")
    if not args.status:
        print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    for row in rows:
        reason = f"  ({row['reason']})" if row["reason"] else ""
        print(f"{row['version']} {row['name']:<24} {row['state']}{reason}")
    return exitcodes.OK
