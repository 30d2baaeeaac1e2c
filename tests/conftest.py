"""Shared fixtures: real Redis and real PostgreSQL, started on demand.

`kades_settings` (session) uses the servers at KADES_REDIS_URL / KADES_DATABASE_URL (defaults
from Settings) and starts local ones through `kades.dev.services` when nothing answers there.
It points Redis at database 15, creates a fresh database `kades_test`, migrates it, and stops
at the end only the servers it started itself. Tests that need no server never start one.

PostgreSQL is TimescaleDB (community edition) wherever the extension is installed; as root,
with `../shared/vendor/` beside the repository, kades.dev.services installs it first. The storage
tests run on every edition (`edition_settings`): community, Apache-2 (a second server with
`timescaledb.license = 'apache'`, on the next port) and plain PostgreSQL (a third, without
the extension, on the port after). An edition that cannot run here is skipped with the
reason, except in CI with the vendored build beside the repository, where it must run.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kades import clients
from kades.alerts import delivery
from kades.dev import redisgroups, services as devservices
from kades.events.envelope import decode
from kades.settings import Settings, settings
from kades.storage.migrate import migrate, storage_edition

# Overridable so that several test sessions can share one Redis and one PostgreSQL.
TEST_REDIS_DB = int(os.environ.get("KADES_TEST_REDIS_DB", "15"))
TEST_DATABASE = os.environ.get("KADES_TEST_DATABASE", "kades_test")
# KADES_TEST_REDIS_CLUSTER=1: every test that uses Redis runs on a local three-node Redis
# Cluster (`redis_cluster_settings`) instead of the single server.
TEST_REDIS_CLUSTER = os.environ.get("KADES_TEST_REDIS_CLUSTER", "").lower() in ("1", "true", "yes")


def pytest_ignore_collect(collection_path, config):
    """Under tests/, collect only test modules: --doctest-modules (pytest.ini) is for the
    package, and would otherwise import every helper, conftest and function folder here."""
    if collection_path.suffix == ".py" and not collection_path.name.startswith("test_"):
        return True
    return None


def _migrate_test_database(database_url: str) -> None:
    """Migrate, then pause TimescaleDB's policy jobs: tests insert rows at fixed dates months
    ago, which a retention job firing mid-test would drop. The tests of retention run it."""
    migrate(database_url)
    with psycopg.connect(database_url) as conn:
        if conn.execute("SELECT to_regclass('timescaledb_information.jobs')").fetchone()[0]:
            conn.execute("SELECT alter_job(job_id, scheduled => false)"
                         " FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL")


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def _recreate_database(database_url: str, name: str) -> str:
    """Drop and create database `name` next to `database_url`; its URL."""
    with psycopg.connect(make_conninfo(database_url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(name)))
    devservices.ensure_database(database_url, name)
    return _with_path(database_url, f"/{name}")


@pytest.fixture(scope="session")
def base_settings() -> Iterator[Settings]:
    """Settings pointing at a test Redis db and a fresh, migrated test database."""
    base = Settings.from_env()
    try:
        with devservices.services_for(base):
            database_url = _recreate_database(base.database_url, TEST_DATABASE)
            _migrate_test_database(database_url)
            yield dataclasses.replace(base, database_url=database_url,
                                      redis_url=_with_path(base.redis_url, f"/{TEST_REDIS_DB}"))
            delivery.stop_all()  # the workers in-process alert-dispatch apps started
            clients.close_all()
    except devservices.DevServiceUnavailable as error:
        if os.environ.get("CI"):  # CI must run every test, never skip them
            raise
        pytest.skip(f"cannot start local services: {error}")
    finally:
        clients.close_all()


@pytest.fixture(autouse=True, scope="module")
def _delivery_workers_stop_with_their_module() -> Iterator[None]:
    """Webhook delivery workers started by a module's alert-dispatch apps stop when it ends.
    Left running they poll the database all session, and the pool's threads then draw from
    the global `random` (psycopg_pool's jitter) at any moment: Hypothesis, generating an
    example meanwhile, warns that a strategy uses `random`."""
    yield
    delivery.stop_all()


@pytest.fixture(scope="session")
def redis_cluster_settings(base_settings) -> Iterator[Settings]:
    """`base_settings` with Redis on a local three-node Redis Cluster (the same redis-server
    in cluster mode, kades.dev.redisgroups.ensure_redis_cluster): started the first time a test
    asks for it, stopped at the end of the session if it was not running before."""
    data_dir = devservices.default_data_dir()
    try:
        started = redisgroups.ensure_redis_cluster(data_dir=data_dir)
    except devservices.DevServiceUnavailable as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot start a local Redis Cluster: {error}")
    yield dataclasses.replace(
        base_settings, redis_cluster=True,
        redis_url=f"redis://{devservices.HOST}:{redisgroups.CLUSTER_PORTS[0]}/0")
    if started:
        redisgroups.stop_redis_cluster(data_dir)


@pytest.fixture(scope="session")
def kades_settings(base_settings, request) -> Settings:
    """The settings of most tests (tests/storage overrides it with one per edition); on the
    Redis Cluster with KADES_TEST_REDIS_CLUSTER=1."""
    if TEST_REDIS_CLUSTER:
        return request.getfixturevalue("redis_cluster_settings")
    return base_settings


_EDITION_PORT_OFFSET = {"apache": 1, "plain": 2}  # beside the main server's port


def _edition_of(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        name = storage_edition(conn).name
    return "plain" if name == "postgres" else name


def _unavailable(edition: str, why: str) -> None:
    """Skip a storage edition that cannot run here, but never in CI when the vendored build
    is beside the repository: there every edition must run."""
    if os.environ.get("CI") and _vendored_timescale():
        pytest.fail(f"storage edition {edition} must run in CI: {why}")
    pytest.skip(f"storage edition {edition}: {why}")


def _vendored_timescale() -> bool:
    return any((devservices.repo_root().parent / "shared" / "vendor").glob("timescaledb-*"))


@pytest.fixture(scope="session")
def edition_settings(base_settings) -> Iterator[Callable[[str], Settings]]:
    """`edition_settings(name)`: Settings whose database is a fresh, migrated test database
    on a server of storage edition `name` (community, apache or plain), started on demand."""
    data_dir = devservices.default_data_dir()
    main_edition = _edition_of(base_settings.database_url)
    main_port = devservices.local_port(base_settings.database_url)
    made: dict[str, Settings] = {main_edition: base_settings}
    started: list[str] = []

    def settings_for(edition: str) -> Settings:
        if edition in made:
            return made[edition]
        if edition == "community":
            _unavailable(edition, f"the main test server runs {main_edition} (TimescaleDB is "
                                  "not installed for this PostgreSQL)")
        if main_port is None:
            _unavailable(edition, "the test database is remote: only its own edition runs")
        port = main_port + _EDITION_PORT_OFFSET[edition]
        try:
            if devservices.ensure_postgres(data_dir=data_dir, port=port, edition=edition):
                started.append(edition)
        except devservices.DevServiceUnavailable as error:
            _unavailable(edition, str(error))
        server = urlunsplit(urlsplit(base_settings.database_url)._replace(
            netloc=f"kades@127.0.0.1:{port}"))
        database_url = _recreate_database(server, TEST_DATABASE)
        _migrate_test_database(database_url)
        assert _edition_of(database_url) == edition, f"{edition} server runs something else"
        made[edition] = dataclasses.replace(base_settings, database_url=database_url)
        return made[edition]

    yield settings_for
    for edition in started:
        devservices.stop_postgres(data_dir, edition=edition)


class SettingsEnv:
    """KADES_* variables for code that reads `settings()`: each change is seen at once, and
    the test's monkeypatch undoes them all (one place, not `settings.cache_clear()` pairs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self._monkeypatch = monkeypatch

    def setenv(self, name: str, value: str) -> None:
        self._monkeypatch.setenv(name, value)
        settings.cache_clear()

    def delenv(self, name: str) -> None:
        self._monkeypatch.delenv(name, raising=False)
        settings.cache_clear()


@pytest.fixture
def fresh_settings(monkeypatch) -> Iterator[SettingsEnv]:
    """Settings read anew from the environment this test sets, and forgotten after it."""
    settings.cache_clear()
    yield SettingsEnv(monkeypatch)
    settings.cache_clear()


@pytest.fixture
def kades_env(kades_settings, fresh_settings) -> Settings:
    """Like `kades_settings`, also exported as KADES_* variables for code that reads settings()."""
    fresh_settings.setenv("KADES_REDIS_URL", kades_settings.redis_url)
    fresh_settings.setenv("KADES_REDIS_CLUSTER", str(kades_settings.redis_cluster).lower())
    fresh_settings.setenv("KADES_DATABASE_URL", kades_settings.database_url)
    return kades_settings


@pytest.fixture
def redis_conn(kades_settings):
    """The shared Redis client of `kades_settings`, its test database emptied first."""
    client = clients.redis_client(kades_settings)
    client.flushdb()
    return client


@pytest.fixture
def db_conn(kades_settings):
    """A connection to the test database, every table (but the migration history) emptied."""
    with psycopg.connect(kades_settings.database_url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'schema_migrations'")]
        truncate = sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
            sql.SQL(", ").join(sql.Identifier(t) for t in tables))
        for attempt in range(5):
            try:
                if tables:
                    conn.execute(truncate)
                conn.commit()
                break
            except psycopg.errors.DeadlockDetected:
                # A background thread of an earlier test (a webhook worker polling its
                # tables) held one table while TRUNCATE locked the next: PostgreSQL broke
                # the tie against us, so go again.
                conn.rollback()
                if attempt == 4:
                    raise
        yield conn
        conn.rollback()


class RecordedEvents(list):
    """The events a stand-in ingress received; `headers`: each request's headers."""

    def __init__(self):
        super().__init__()
        self.headers: list[dict[str, str]] = []


@pytest.fixture
def recording_sink(monkeypatch) -> Iterator[RecordedEvents]:
    """A stand-in Broker ingress set as KADES_SINK_URL: a real HTTP server that answers 202
    and records the CloudEvents posted to it, in any mode (a batch as its events), and each
    request's headers in `.headers`."""
    received = RecordedEvents()

    @Request.application
    def ingress(request):
        received.headers.append(dict(request.headers))
        received.extend(decode(request.headers, request.get_data()))
        return Response(status=202)

    server = make_server("127.0.0.1", 0, ingress, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("KADES_SINK_URL", f"http://127.0.0.1:{server.server_port}/kades/kades")
    yield received
    server.shutdown()
    server.server_close()
