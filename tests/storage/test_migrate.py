"""The migration runner against a real PostgreSQL (plain, or TimescaleDB where installed)."""
from __future__ import annotations

import re
import threading

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from kades import devservices
from kades.storage import migrate as migrations
from kades.storage.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate, status

TABLES = ("token_metrics", "anomaly_events", "risk_scores")


@pytest.fixture
def fresh_database_url(kades_settings):
    """An empty database of its own, dropped afterwards."""
    name = "kades_test_migrate"
    admin = make_conninfo(kades_settings.database_url, dbname="postgres")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(drop)
    devservices.ensure_database(kades_settings.database_url, name)
    yield make_conninfo(kades_settings.database_url, dbname=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(drop)


def _timescale(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return migrations.timescale_usable(conn)[0]


def test_discover_orders_files_and_marks_timescale_ones():
    found = [(m.version, m.name, m.needs_timescale) for m in discover()]
    assert found[:2] == [("0001", "core", False), ("0002", "hypertables", True)]
    assert [v for v, _, _ in found] == sorted(v for v, _, _ in found)


def test_discover_rejects_unknown_names_and_duplicate_versions(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    (tmp_path / "oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError) as caught:
        discover(tmp_path)
    assert "oops.sql" in str(caught.value) and "0001 used twice" in str(caught.value)


def test_first_run_applies_everything_usable_and_second_run_nothing(fresh_database_url):
    expected = ["0001"] + (["0002"] if _timescale(fresh_database_url) else [])
    assert migrate(fresh_database_url)[:len(expected)] == expected
    assert migrate(fresh_database_url) == []


def test_concurrent_runners_apply_each_migration_once(fresh_database_url):
    results, errors = [], []

    def run():
        try:
            results.append(migrate(fresh_database_url))
        except psycopg.Error as error:  # recorded, then asserted empty below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    applied = [version for result in results for version in result]
    assert "0001" in applied and len(applied) == len(set(applied))


def test_tables_indexes_and_daily_view_exist(db_conn):
    tables = {r[0] for r in db_conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert set(TABLES) | {"schema_migrations"} <= tables
    indexes = {r[0]: r[1] for r in db_conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")}
    for name, columns in {
            "anomaly_events_time_idx": "(\"time\" DESC, id DESC)",
            "anomaly_events_token_time_idx": "(token, \"time\" DESC, id DESC)",
            "anomaly_events_type_time_idx": "(anomaly_type, \"time\" DESC, id DESC)",
            "anomaly_events_score_idx": "(score DESC, \"time\" DESC)",
            "risk_scores_token_time_idx": "(token, \"time\" DESC)",
            "token_metrics_token_time_idx": "(token, \"time\" DESC)"}.items():
        assert indexes[name].endswith(columns), indexes.get(name)
    # every unique key holds `time`, as hypertables require
    for table in TABLES:
        keys = db_conn.execute(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index"
            " WHERE indrelid = %s::regclass AND indisunique", (table,)).fetchall()
        assert keys and all('"time"' in key for (key,) in keys), (table, keys)
    columns = [r[0] for r in db_conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'token_metrics_daily' ORDER BY ordinal_position")]
    assert columns == ["bucket", "token", "open", "high", "low", "close", "volume",
                       "avg_liquidity"]


def test_timescale_migration_is_skipped_and_left_pending_on_plain_postgres(kades_settings):
    if _timescale(kades_settings.database_url):
        pytest.skip("timescaledb is usable here: the plain-PostgreSQL path does not apply")
    rows = {row["version"]: row for row in status(kades_settings.database_url)}
    assert rows["0001"]["state"] == "applied"
    assert rows["0002"]["state"] == "skipped"
    assert "timescaledb" in rows["0002"]["reason"]
    with psycopg.connect(kades_settings.database_url) as conn:
        recorded = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    assert "0002" not in recorded  # not marked done: applied once the extension is there


def test_pending_timescale_file_is_applied_once_the_extension_is_usable(
        fresh_database_url, tmp_path, monkeypatch):
    # The runner's bookkeeping only: TimescaleDB itself is not installed on this machine,
    # so the "extension" file here creates a plain table.
    (tmp_path / "0001_base.sql").write_text("CREATE TABLE base (x int);")
    (tmp_path / "0002_extra.timescale.sql").write_text("CREATE TABLE extra (x int);")
    (tmp_path / "0003_later.sql").write_text("CREATE TABLE later (x int);")
    monkeypatch.setattr(migrations, "timescale_usable", lambda conn: (False, "absent"))
    assert migrate(fresh_database_url, directory=tmp_path) == ["0001", "0003"]
    monkeypatch.setattr(migrations, "timescale_usable", lambda conn: (True, "present"))
    assert migrate(fresh_database_url, directory=tmp_path) == ["0002"]
    assert migrate(fresh_database_url, directory=tmp_path) == []


def test_a_failing_file_rolls_back_and_is_not_recorded(fresh_database_url, tmp_path):
    (tmp_path / "0001_bad.sql").write_text("CREATE TABLE half (x int); SELECT no_such_function();")
    with pytest.raises(MigrationError, match="0001_bad.sql"):
        migrate(fresh_database_url, directory=tmp_path)
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 0


def test_an_applied_file_that_changed_is_refused(fresh_database_url, tmp_path):
    path = tmp_path / "0001_base.sql"
    path.write_text("CREATE TABLE base (x int);")
    migrate(fresh_database_url, directory=tmp_path)
    path.write_text("CREATE TABLE base (x bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(fresh_database_url, directory=tmp_path)


def test_timescale_file_converts_every_table_and_matches_the_plain_view():
    # TimescaleDB cannot run here, so this checks the text only — not that it executes.
    text = (MIGRATIONS_DIR / "0002_hypertables.timescale.sql").read_text()
    assert "CREATE EXTENSION IF NOT EXISTS timescaledb" in text
    for table in TABLES:
        assert re.search(rf"create_hypertable\('{table}', 'time'.*?if_not_exists => TRUE,"
                         rf"\s*migrate_data => TRUE\)", text, re.S), table
        assert f"add_retention_policy('{table}', INTERVAL '90 days'" in text
        assert re.search(rf"ALTER TABLE {table} SET \(timescaledb.compress,"
                         rf"\s*timescaledb.compress_segmentby = 'token'", text), table
        assert f"add_compression_policy('{table}'" in text
    assert "WITH (timescaledb.continuous)" in text and "WITH NO DATA" in text
    assert "add_continuous_aggregate_policy('token_metrics_daily'" in text
    assert "first(price, time)" in text and "last(price, time)" in text

    def aliases(sql_text: str) -> list[str]:
        start = re.search(r"CREATE (MATERIALIZED )?VIEW token_metrics_daily", sql_text).end()
        view = sql_text[start:sql_text.index("FROM token_metrics", start)]
        return re.findall(r"\bAS (\w+)", view)

    plain = (MIGRATIONS_DIR / "0001_core.sql").read_text()
    assert aliases(text) == aliases(plain) == ["bucket", "open", "high", "low", "close",
                                                "volume", "avg_liquidity"]


def test_main_migrate_reports_what_it_did(kades_settings, capsys):
    assert migrations.main_migrate(["--database-url", kades_settings.database_url]) == 0
    out = capsys.readouterr().out
    assert "applied: nothing (up to date)" in out and "0001 core" in out


def test_main_migrate_says_when_the_database_is_away(capsys):
    url = "postgresql://kades@127.0.0.1:1/kades?connect_timeout=1"
    assert migrations.main_migrate(["--database-url", url]) == 2
    assert "cannot reach the database" in capsys.readouterr().err
