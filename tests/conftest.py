"""Shared fixtures: real Redis and real PostgreSQL, started on demand.

`kades_settings` (session) uses the servers at KADES_REDIS_URL / KADES_DATABASE_URL (defaults
from Settings) and starts local ones through `kades.devservices` when nothing answers there.
It points Redis at database 15, creates a fresh database `kades_test`, migrates it, and stops
at the end only the servers it started itself. Tests that need no server never start one.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from kades import clients, devservices
from kades.settings import Settings
from kades.storage.migrate import migrate

# Overridable so that several test sessions can share one Redis and one PostgreSQL.
TEST_REDIS_DB = int(os.environ.get("KADES_TEST_REDIS_DB", "15"))
TEST_DATABASE = os.environ.get("KADES_TEST_DATABASE", "kades_test")


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
def kades_settings() -> Iterator[Settings]:
    """Settings pointing at a test Redis db and a fresh, migrated test database."""
    base = Settings.from_env()
    data_dir = devservices.default_data_dir()
    started = []
    redis_port = devservices.local_port(base.redis_url)
    pg_port = devservices.local_port(base.database_url)
    try:
        try:
            if redis_port is not None and devservices.ensure_redis(data_dir=data_dir,
                                                                   port=redis_port):
                started.append(devservices.stop_redis)
            if pg_port is not None:
                user = urlsplit(base.database_url).username or "kades"
                database = urlsplit(base.database_url).path.lstrip("/") or "kades"
                if devservices.ensure_postgres(data_dir=data_dir, port=pg_port, user=user,
                                               database=database):
                    started.append(devservices.stop_postgres)
        except devservices.DevServiceUnavailable as error:
            if os.environ.get("CI"):  # CI must run every test, never skip them
                raise
            pytest.skip(f"cannot start local services: {error}")
        database_url = _recreate_database(base.database_url, TEST_DATABASE)
        migrate(database_url)
        yield dataclasses.replace(base, database_url=database_url,
                                  redis_url=_with_path(base.redis_url, f"/{TEST_REDIS_DB}"))
    finally:  # also when setup failed half-way: stop only what this session started
        clients.close_all()
        for stop in started:
            stop(data_dir)


@pytest.fixture
def kades_env(kades_settings, monkeypatch) -> Iterator[Settings]:
    """Like `kades_settings`, also exported as KADES_* variables for code that reads settings()."""
    from kades.settings import settings
    monkeypatch.setenv("KADES_REDIS_URL", kades_settings.redis_url)
    monkeypatch.setenv("KADES_DATABASE_URL", kades_settings.database_url)
    settings.cache_clear()
    yield kades_settings
    settings.cache_clear()


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
