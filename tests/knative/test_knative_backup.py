"""The nightly backup script and the documented restore, round trip on the local PostgreSQL.

Runs knative/base/backup/backup.sh and restore.sh exactly as the CronJob and the runbook do,
against the migrated test database of `kades_settings` (tests/conftest.py).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from deploy_helpers import ROOT, in_ci as _in_ci
from storage_editions import kades_settings  # noqa: F401 - backups must restore on every edition

pytestmark = pytest.mark.slow  # starts processes

SCRIPTS = ROOT / "knative" / "base" / "backup"
RESTORE_DATABASE = "kades_restore_test"
TABLES = ("token_metrics", "anomaly_events", "risk_scores", "schema_migrations")


@pytest.fixture(scope="module")
def pg_tools():
    missing = [t for t in ("pg_dump", "pg_restore", "psql") if shutil.which(t) is None]
    if missing:
        if _in_ci():
            pytest.fail(f"PostgreSQL client tools missing in CI: {missing}")
        pytest.skip(f"PostgreSQL client tools not installed: {missing}")


def _run(script: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(["sh", str(SCRIPTS / script), *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _fresh_database(url: str, name: str) -> str:
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _contents(url: str) -> dict:
    with psycopg.connect(url) as conn:
        rows = {t: conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(
            sql.Identifier(t))).fetchall() for t in TABLES}
        rows["indexes"] = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = "
                                       "'public' ORDER BY 1").fetchall()
    return rows


def _seed(conn) -> None:
    # Recent rows: on the community edition the restored database's retention jobs run at
    # once (their schedule is not part of a dump) and drop chunks past 90 days, as the source
    # itself would within the day.
    conn.execute("INSERT INTO token_metrics (time, token, source, price, volume) VALUES "
                 "(now() - interval '2 hours', 'MintA', 'raydium', 1.5, 10)")
    conn.execute("INSERT INTO anomaly_events (time, token, anomaly_type, score, detector, details,"
                 " event_source, event_id) VALUES (now() - interval '2 hours', 'MintA',"
                 " 'flash_crash', 0.9, 'temporal', '{\"drop\": 0.4}', '/kades/test', 'e1')")
    conn.execute("INSERT INTO risk_scores (time, token, score, level, event_source, event_id) "
                 "VALUES (now() - interval '1 hour', 'MintA', 0.8, 'high', '/kades/test', 'e2')")
    conn.commit()


def _timescale_shape(url: str) -> dict:
    """Hypertables, their chunks and jobs, the kind of the daily view: what a restore must keep."""
    with psycopg.connect(url) as conn:
        shape = {"daily view": conn.execute(
            "SELECT relkind FROM pg_class WHERE relname = 'token_metrics_daily'").fetchone()}
        if conn.execute("SELECT to_regclass('timescaledb_information.hypertables')").fetchone()[0]:
            shape["hypertables"] = conn.execute(
                "SELECT hypertable_name, num_chunks FROM timescaledb_information.hypertables"
                " ORDER BY 1").fetchall()
            shape["jobs"] = conn.execute(
                "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
                " WHERE hypertable_name IS NOT NULL ORDER BY 1, 2").fetchall()
    return shape


def test_backup_then_restore_gives_back_the_same_database(pg_tools, kades_settings, db_conn,
                                                          tmp_path):
    _seed(db_conn)
    env = {"DATABASE_URL": kades_settings.database_url, "BACKUP_DIR": str(tmp_path), "KEEP_DAYS": "7"}
    _run("backup.sh", env)
    (dump,) = tmp_path.glob("kades-*.dump")
    assert not list(tmp_path.glob("*.partial"))
    restored = _fresh_database(kades_settings.database_url, RESTORE_DATABASE)
    _run("restore.sh", {"DATABASE_URL": restored}, str(dump))
    original = _contents(kades_settings.database_url)
    assert original["anomaly_events"] and original["indexes"]
    assert _contents(restored) == original
    assert _timescale_shape(restored) == _timescale_shape(kades_settings.database_url)
    with psycopg.connect(restored) as conn:  # identity columns carry on after the restore
        (new_id,) = conn.execute(
            "INSERT INTO anomaly_events (time, token, anomaly_type, score, detector, event_source,"
            " event_id) VALUES (now(), 'MintB', 'volume_spike', 0.5, 't', '/kades/test', 'e3')"
            " RETURNING id").fetchone()
        assert new_id > original["anomaly_events"][0][0]


def test_backup_keeps_seven_days(pg_tools, kades_settings, tmp_path):
    old, recent = tmp_path / "kades-20000101T000000Z.dump", tmp_path / "kades-20000102T000000Z.dump"
    for path, age_days in ((old, 8), (recent, 6)):
        path.write_bytes(b"")
        stamp = time.time() - age_days * 86400
        os.utime(path, (stamp, stamp))
    _run("backup.sh", {"DATABASE_URL": kades_settings.database_url, "BACKUP_DIR": str(tmp_path)})
    left = sorted(p.name for p in tmp_path.iterdir())
    assert old.name not in left and recent.name in left and len(left) == 2
