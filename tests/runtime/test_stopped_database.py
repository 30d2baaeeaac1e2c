"""A database stopped without closing (its processes frozen: a stalled disk, a paused VM). Its
kernel still acknowledges what is sent and answers the keepalive probes, so only the client's
own deadline ends a wait (kades.clients.AnswerBoundedConnection): a statement, /ready and a
handler each give up in bounded time, and the Broker's retry is stored once the database is
back. On a PostgreSQL of this module's own, every process of it stopped (SIGSTOP)."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest
from functions_framework import create_app

from kades import clients
from kades.dev import services as devservices
from kades.dev.services import free_port
from kades.events.catalogue import MARKET_FEED, example, new_event
from kades.events.envelope import to_binary
from kades.manifests import PROBE_TIMEOUT_S
from kades.runtime.endpoint import DATABASE_PROBE_S, READY_S, probe_response
from kades.runtime.function import Context
from kades.settings import Settings
from kades.storage.migrate import migrate

ROOT = Path(__file__).resolve().parents[2]
STATEMENT_TIMEOUT_S = 0.5  # the server's own limit, which a stopped server cannot enforce
DEADLINE_S = STATEMENT_TIMEOUT_S + clients.ANSWER_MARGIN_S


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """(its URL, its postmaster's pid) of a migrated PostgreSQL of this module's own."""
    data_dir = tmp_path_factory.mktemp("stopped-database")
    port = free_port()
    devservices.ensure_postgres(data_dir=data_dir, port=port, edition="plain")
    url = f"postgresql://kades@127.0.0.1:{port}/kades"
    migrate(url)
    pid_file = devservices.postgres_dir(data_dir, "plain") / "pgdata" / "postmaster.pid"
    yield url, int(pid_file.read_text().split()[0])
    clients.close_all()
    devservices.stop_postgres(data_dir, edition="plain")


@contextlib.contextmanager
def stopped(server: int, *, at_most_s: float = 15.0):
    """Every process of the server stopped within the block (PostgreSQL's postmaster forks no
    more), and going on after `at_most_s` at the latest: a wait that nothing ends fails its
    test rather than hanging the suite."""
    pids = [server] + [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                       and _parent(p) == server]

    def resume():
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    timer = threading.Timer(at_most_s, resume)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        resume()


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None  # gone meanwhile


def _settings(url: str) -> Settings:
    return dataclasses.replace(Settings.from_env(), database_url=url, database_timeout_s=1.0,
                               database_statement_timeout_s=STATEMENT_TIMEOUT_S)


def test_a_statement_to_a_stopped_database_ends_at_its_deadline(database):
    url, postmaster = database
    pool = clients.db_pool(_settings(url))
    with pool.connection() as conn:
        conn.execute("SELECT 1")
        with stopped(postmaster):
            began = time.monotonic()
            with pytest.raises(clients.DatabaseSilent):
                conn.execute("SELECT 1")
            waited = time.monotonic() - began
        assert conn.closed  # cut off mid-answer: the pool drops it
    assert DEADLINE_S - 0.1 <= waited < DEADLINE_S + 2, waited
    with pool.connection() as conn:  # back: a fresh connection
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_ready_answers_within_the_probes_timeout_while_the_database_is_stopped(database):
    url, postmaster = database
    ctx = Context("risk-scoring", _settings(url))
    assert probe_response("/ready", ctx, uses_database=True).status_code == 200
    with stopped(postmaster):
        # once with the pool's idle connection (its check meets silence), once with none
        # left (a new connection's start-up meets it)
        for _ in range(2):
            began = time.monotonic()
            answer = probe_response("/ready", ctx, uses_database=True)
            waited = time.monotonic() - began
            assert answer.status_code == 503, answer.get_json()
            assert answer.get_json()["checks"]["database"].startswith("unavailable"), answer.get_json()
            assert waited < DATABASE_PROBE_S + 0.5 < PROBE_TIMEOUT_S, waited
    assert probe_response("/ready", ctx, uses_database=True).status_code == 200


def test_ready_answers_within_the_probes_timeout_with_redis_stopped_as_well(database, tmp_path):
    """The Redis ping takes up to redis_timeout_s (2 s) before the database is asked: the
    database gets what is left of READY_S."""
    url, postmaster = database
    port = free_port()
    devservices.ensure_redis(data_dir=tmp_path, port=port)
    redis_pid = int((devservices.redis_dir(tmp_path) / "redis.pid").read_text())
    try:
        ctx = Context("risk-scoring", dataclasses.replace(
            _settings(url), redis_url=f"redis://127.0.0.1:{port}/0"))
        assert probe_response("/ready", ctx, uses_database=True).status_code == 200
        with stopped(postmaster), stopped(redis_pid):
            began = time.monotonic()
            answer = probe_response("/ready", ctx, uses_database=True)
            waited = time.monotonic() - began
        checks = answer.get_json()["checks"]
        assert answer.status_code == 503
        assert checks["redis"].startswith("unavailable") and checks["database"].startswith("unavailable")
        assert waited < READY_S + 0.5 <= PROBE_TIMEOUT_S, waited
        assert probe_response("/ready", ctx, uses_database=True).status_code == 200
    finally:
        devservices.stop_redis(tmp_path)


def test_an_event_meeting_a_stopped_database_is_503_and_its_retry_stored_once(
        database, kades_env, fresh_settings, redis_conn, recording_sink):
    url, postmaster = database
    fresh_settings.setenv("KADES_DATABASE_URL", url)
    fresh_settings.setenv("KADES_DATABASE_TIMEOUT_S", "1")
    fresh_settings.setenv("KADES_DATABASE_STATEMENT_TIMEOUT_S", str(STATEMENT_TIMEOUT_S))
    app = create_app("handle", str(ROOT / "functions" / "market-aggregator" / "main.py"),
                     "http").test_client()
    tick = example(MARKET_FEED)["ticks"][0]
    events = {name: new_event(MARKET_FEED, "/tests/stopped", {"ticks": [{**tick, "time": at}]},
                              event_id=name)
              for name, at in (("before", "2026-11-26T08:00:00Z"), ("during", "2026-11-26T08:01:00Z"))}
    headers, body = to_binary(events["before"])
    assert app.post("/", headers=headers, data=body).status_code == 200
    headers, body = to_binary(events["during"])
    with stopped(postmaster):
        began = time.monotonic()
        answer = app.post("/", headers=headers, data=body)
        waited = time.monotonic() - began
    assert answer.status_code == 503, answer.get_json()
    assert answer.headers["Retry-After"] == "1"
    # the idle connection's check meets silence, then a new one's start-up, within the pool's wait
    assert waited < DEADLINE_S + 1.0 + 2, waited
    for _ in range(2):  # the Broker's retry, then a duplicate of it
        assert app.post("/", headers=headers, data=body).status_code == 200
    with psycopg.connect(url) as conn:
        stored = dict(conn.execute("SELECT event_id, count(*) FROM token_metrics"
                                   " WHERE event_id IN ('before', 'during') GROUP BY event_id"))
    assert stored == {"before": 1, "during": 1}
