"""The migration runner on every storage edition: TimescaleDB community, TimescaleDB Apache-2
and plain PostgreSQL (tests/storage/conftest.py runs each test once per edition)."""
from __future__ import annotations

import dataclasses

import threading

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from kades.dev import services as devservices
from kades.storage import migrate as migrations
from kades.storage.migrate import Edition, MigrationError, discover, migrate, status
from kades.storage.retention import apply_retention, main_retention

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


def _edition(url: str) -> Edition:
    with psycopg.connect(url) as conn:
        return migrations.storage_edition(conn)


def test_discover_orders_files_and_reads_what_each_needs():
    found = [(m.version, m.name, m.needs) for m in discover()]
    assert found[:2] == [("0001", "core", "postgres"), ("0002", "hypertables", "community")]
    assert ("0007", "hypertables", "timescale") in found
    assert [v for v, _, _ in found] == sorted(v for v, _, _ in found)


def test_discover_rejects_unknown_names_and_duplicate_versions(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    (tmp_path / "oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError) as caught:
        discover(tmp_path)
    assert "oops.sql" in str(caught.value) and "0001 used twice" in str(caught.value)


def test_first_run_applies_what_the_edition_can_run_and_second_run_nothing(fresh_database_url):
    edition = _edition(fresh_database_url)
    expected = [m.version for m in discover() if edition.can_run(m)]
    assert migrate(fresh_database_url) == expected
    assert migrate(fresh_database_url) == []
    assert {r["state"] for r in status(fresh_database_url) if r["version"] in expected} == \
        {"applied"}


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


def test_what_an_edition_cannot_run_stays_pending_with_the_reason(kades_settings):
    edition = _edition(kades_settings.database_url)
    rows = {row["version"]: row for row in status(kades_settings.database_url)}
    skipped = {v for v, row in rows.items() if row["state"] == "skipped"}
    expected = {"community": set(), "apache": {"0002", "0006"},
                "postgres": {"0002", "0006", "0007"}}[edition.name]
    assert skipped == expected
    assert rows["0001"]["state"] == rows["0008"]["state"] == "applied"
    for version in skipped:
        assert rows[version]["reason"].startswith("needs ") and edition.description in \
            rows[version]["reason"]
    with psycopg.connect(kades_settings.database_url) as conn:
        recorded = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    assert not recorded & skipped  # not marked done: applied once the edition allows


def test_pending_file_is_applied_once_the_edition_can_run_it(
        fresh_database_url, tmp_path, monkeypatch):
    # The runner's bookkeeping only (the real editions are covered by the other tests): the
    # "extension" files here create plain tables.
    (tmp_path / "0001_base.sql").write_text("CREATE TABLE base (x int);")
    (tmp_path / "0002_extra.timescale.sql").write_text("CREATE TABLE extra (x int);")
    (tmp_path / "0003_policy.community.sql").write_text("CREATE TABLE policy (x int);")
    (tmp_path / "0004_later.sql").write_text("CREATE TABLE later (x int);")
    for edition, expected in (("postgres", ["0001", "0004"]), ("apache", ["0002"]),
                              ("community", ["0003"]), ("community", [])):
        monkeypatch.setattr(migrations, "storage_edition",
                            lambda conn, name=edition: Edition(name, name))
        assert migrate(fresh_database_url, directory=tmp_path) == expected


def test_every_table_retention_deletes_from_has_an_index_led_by_what_it_deletes_by(db_conn):
    """On plain PostgreSQL token_metrics and temporal_scores were keyed by token first: every
    hourly retention run read them whole to find the old rows (a hypertable's chunks are
    dropped instead, and it has its own time index)."""
    def leading(table: str) -> set[str]:
        return {row[0] for row in db_conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE i.indrelid = %s::regclass", (table,))}
    for table in (*TABLES, "temporal_scores", "alerts"):
        assert "time" in leading(table), table
    assert "updated_at" in leading("webhook_deliveries")
    removed = {row[0]: row[2] for row in apply_retention(db_conn)}
    assert set(removed) == {*TABLES, "temporal_scores", "alerts", "webhook_deliveries"}


def test_storage_has_the_shape_of_its_edition(db_conn):
    edition = migrations.storage_edition(db_conn)
    hypertables, jobs, compressed = set(), set(), set()
    if edition.name != "postgres":
        hypertables = {r[0] for r in db_conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables")}
        compressed = {r[0] for r in db_conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
            " WHERE compression_enabled")}
        jobs = {(r[0], r[1]) for r in db_conn.execute(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
            " WHERE hypertable_name IS NOT NULL")}
    daily_kind = db_conn.execute("SELECT relkind FROM pg_class"
                                 " WHERE relname = 'token_metrics_daily'").fetchone()[0]
    series = set(TABLES) | {"temporal_scores"}
    caggs = 0
    if edition.name != "postgres":
        caggs = db_conn.execute("SELECT count(*) FROM timescaledb_information."
                                "continuous_aggregates WHERE view_name = 'token_metrics_daily'"
                                ).fetchone()[0]
    if edition.name == "community":
        assert hypertables >= series and compressed >= series
        assert {("policy_retention", t) for t in series} <= jobs
        assert {("policy_compression", t) for t in series} <= jobs
        assert ("policy_refresh_continuous_aggregate", "token_metrics_daily") in jobs
        assert caggs == 1
    elif edition.name == "apache":
        assert hypertables == series and not compressed and not jobs
        assert caggs == 0  # the plain view of 0001
    else:
        assert db_conn.execute("SELECT count(*) FROM pg_extension"
                               " WHERE extname = 'timescaledb'").fetchone()[0] == 0
    assert daily_kind == "v"


def _seed_ages(conn, days: list[float]) -> None:
    for i, age in enumerate(days):
        when = f"now() - interval '{age} days'"
        conn.execute(f"INSERT INTO token_metrics (time, token, source) VALUES ({when}, 'M', 's')")
        conn.execute(f"INSERT INTO risk_scores (time, token, score, level, event_source, event_id)"
                     f" VALUES ({when}, 'M', 0.1, 'low', 'src', 'e{i}')")
        conn.execute(f"INSERT INTO temporal_scores (time, token, score) VALUES ({when}, 'M', 0.1)")
        conn.execute(f"INSERT INTO anomaly_events (time, token, anomaly_type, score, detector,"
                     f" event_source, event_id) VALUES ({when}, 'M', 'x', 0.5, 'd', 's', 'e{i}')")
        conn.execute(f"INSERT INTO alerts (time, token, kind, level, score, data, event_source,"
                     f" event_id) VALUES ({when}, 'M', 'raised', 'high', 0.8, '{{}}', 's', 'e{i}')")
    conn.commit()


def _seed_deliveries(conn, rows: list[tuple[str, float]]) -> None:
    """A webhook and one delivery of it per (status, days since it was last touched)."""
    conn.execute("INSERT INTO api_keys (key_id, salt, key_hash, tier) VALUES"
                 " ('retention', '\\x00', '\\x00', 'standard')")
    webhook = conn.execute("INSERT INTO webhooks (id, key_id, url, secret) VALUES"
                           " (gen_random_uuid(), 'retention', 'https://example.com/hook', 's')"
                           " RETURNING id").fetchone()[0]
    for i, (state, age) in enumerate(rows):
        conn.execute("INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, status,"
                     " updated_at) VALUES (%s, %s, '{}', %s, now() - make_interval(days => %s))",
                     (webhook, f"a{i}", state, age))
    conn.commit()


def test_retention_removes_only_what_is_past_the_horizon(db_conn):
    _seed_ages(db_conn, [120, 100, 3, 0.5])
    removed = {table: (count, unit) for table, count, unit in apply_retention(db_conn)}
    db_conn.commit()
    assert set(removed) == set(TABLES) | {"temporal_scores", "alerts", "webhook_deliveries"}
    for table in set(removed) - {"webhook_deliveries"}:
        left = db_conn.execute(f"SELECT count(*), min(time) > now() - interval '90 days'"
                               f" FROM {table}").fetchone()
        assert left == (2, True), table
        assert removed[table][0] >= 1  # rows, or the chunks that held them
    assert all(count == 0 for _, count, _ in apply_retention(db_conn))  # nothing left
    with pytest.raises(ValueError):
        apply_retention(db_conn, keep_days=0)


def test_retention_removes_settled_webhook_deliveries_past_the_horizon(db_conn):
    """Delivered and dead deliveries last touched before the horizon go; newer ones stay, and
    so does a pending one however old (it is still being retried)."""
    _seed_deliveries(db_conn, [("delivered", 120), ("dead", 95), ("pending", 120),
                               ("delivered", 10), ("dead", 1)])
    removed = {table: count for table, count, _ in apply_retention(db_conn)}
    db_conn.commit()
    assert removed["webhook_deliveries"] == 2
    left = db_conn.execute("SELECT status, updated_at > now() - interval '90 days'"
                           " FROM webhook_deliveries ORDER BY id").fetchall()
    assert left == [("pending", False), ("delivered", True), ("dead", True)]


def test_kades_retention_command(kades_settings, db_conn, capsys):
    _seed_ages(db_conn, [200])
    assert main_retention(["--database-url", kades_settings.database_url]) == 0
    out = capsys.readouterr().out
    assert "token_metrics" in out and "removed" in out
    assert db_conn.execute("SELECT count(*) FROM token_metrics").fetchone()[0] == 0
    away = "postgresql://kades@127.0.0.1:1/kades?connect_timeout=1"
    assert main_retention(["--database-url", away]) == 3


def test_a_failing_file_rolls_back_and_is_not_recorded(fresh_database_url, tmp_path):
    (tmp_path / "0001_bad.sql").write_text("CREATE TABLE half (x int); SELECT no_such_function();")
    with pytest.raises(MigrationError, match="0001_bad.sql"):
        migrate(fresh_database_url, directory=tmp_path)
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 0


def test_a_failing_extension_file_stays_pending_and_the_plain_ones_after_it_apply(
        fresh_database_url, tmp_path, monkeypatch):
    """A TimescaleDB file that failed (a managed server refusing a policy) left every plain
    file after it unapplied: the schema short of its newest version, every function unready."""
    (tmp_path / "0001_base.sql").write_text("CREATE TABLE base (x int);")
    (tmp_path / "0002_policy.timescale.sql").write_text(  # TimescaleDB's own SQLSTATE
        "CREATE TABLE half (x int);"
        " DO $$ BEGIN RAISE EXCEPTION 'no_such_function' USING ERRCODE = 'TS201'; END $$;")
    (tmp_path / "0003_later.sql").write_text("CREATE TABLE later (x int);")
    monkeypatch.setattr(migrations, "storage_edition", lambda conn: Edition("community", "c"))
    with pytest.raises(MigrationError, match=r"(?s)0002_policy.timescale.sql failed: .*no_such_funct"
                                             r".*left pending; applied: 0001, 0003"):
        migrate(fresh_database_url, directory=tmp_path)
    states = {row["version"]: row["state"] for row in status(fresh_database_url,
                                                             directory=tmp_path)}
    assert states == {"0001": "applied", "0002": "pending", "0003": "applied"}
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone()[0] is None
    (tmp_path / "0004_bad.sql").write_text("SELECT no_such_function();")
    with pytest.raises(MigrationError, match="(?s)0002_policy.*; 0004_bad.sql failed"):
        migrate(fresh_database_url, directory=tmp_path)  # a plain file's failure stops the run


def test_an_applied_file_that_changed_is_refused(fresh_database_url, tmp_path):
    path = tmp_path / "0001_base.sql"
    path.write_text("CREATE TABLE base (x int);")
    migrate(fresh_database_url, directory=tmp_path)
    path.write_text("CREATE TABLE base (x bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(fresh_database_url, directory=tmp_path)


def test_main_migrate_reports_what_it_did(kades_settings, capsys):
    assert migrations.main_migrate(["--database-url", kades_settings.database_url]) == 0
    out = capsys.readouterr().out
    assert "applied: nothing (up to date)" in out and "0001 core" in out
    assert f"storage: {_edition(kades_settings.database_url).description}" in out


def test_main_migrate_says_when_the_database_is_away(capsys):
    url = "postgresql://kades@127.0.0.1:1/kades?connect_timeout=1"
    assert migrations.main_migrate(["--database-url", url]) == 3  # a dependency is away
    assert "the database is unreachable" in capsys.readouterr().err


def test_retention_and_migrate_say_a_database_that_does_not_exist_is_no_outage(kades_settings,
                                                                               capsys):
    """Both said 'cannot reach the database' and exit 3, as if waiting would help."""
    url = kades_settings.database_url.rsplit("/", 1)[0] + "/no_such_database"
    for command in (migrations.main_migrate, main_retention):
        assert command(["--database-url", url]) == 1, command
        err = capsys.readouterr().err
        assert 'database "no_such_database" does not exist' in err and err.count("\n") == 1, err


def test_a_function_is_ready_only_once_its_migrations_are_applied(fresh_database_url,
                                                                  monkeypatch):
    """Applied with the functions, the migration Job may land minutes after them: a function
    whose /ready ran SELECT 1 took events into missing tables (a 500 each, dead-lettered).
    Knative routes nothing to a replica that is not ready."""
    from kades.runtime.endpoint import probe_response
    from kades.runtime.function import Context
    from kades.settings import Settings
    monkeypatch.setenv("KADES_DATABASE_URL", fresh_database_url)
    ctx = Context("risk-scoring", Settings.from_env())
    unmigrated = probe_response("/ready", ctx, uses_database=True)
    assert unmigrated.status_code == 503
    assert "not applied" in unmigrated.get_json()["checks"]["database"]
    migrate(fresh_database_url)
    assert probe_response("/ready", ctx, uses_database=True).status_code == 200


def test_migrate_waits_for_a_database_that_is_not_up_yet():
    """On a first install the migration Job starts beside the database: it exited 3 at once,
    and the Job's backoff could outlast its retries."""
    from kades.storage.migrate import wait_for
    now, naps = [0.0], []

    def sleep(seconds):
        naps.append(seconds)
        now[0] += seconds
    with pytest.raises(psycopg.OperationalError):
        wait_for("postgresql://kades@127.0.0.1:1/kades", 5.0, sleep=sleep, clock=lambda: now[0])
    assert naps == [2.0, 2.0, 2.0]  # tried at 0, 2, 4 and 6 s: past the 5 s it waits


def test_a_database_owner_that_is_no_superuser_migrates_on_its_edition(kades_settings, capsys):
    """`shared_preload_libraries` is for superusers and pg_read_all_settings only: a database's
    owner (CloudNativePG's `app`, a managed cloud's user) got a traceback and no migration."""
    role, name = "kades_test_owner", "kades_test_owned"
    admin = make_conninfo(kades_settings.database_url, dbname="postgres")
    drop = [sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
            sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role))]
    with psycopg.connect(admin, autocommit=True) as conn:
        for statement in drop:
            conn.execute(statement)
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                                  sql.Identifier(role)))
    as_superuser = make_conninfo(kades_settings.database_url, dbname=name)
    as_owner = make_conninfo(as_superuser, user=role)
    try:
        with psycopg.connect(as_owner) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT current_setting('shared_preload_libraries')")
        expected = _edition(as_superuser)
        assert _edition(as_owner).name == expected.name
        applied = migrate(as_owner)
        assert applied == [m.version for m in discover() if expected.can_run(m)]
        assert applied[0] == "0001"
        guest = "kades_test_guest"  # no owner: may not create in schema public (PostgreSQL 15)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(guest)))
        drop.append(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(guest)))
        fresh = make_conninfo(kades_settings.database_url, dbname="kades_test_migrate_guest")
        drop.insert(0, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier("kades_test_migrate_guest")))
        devservices.ensure_database(kades_settings.database_url, "kades_test_migrate_guest")
        code = migrations.main_migrate(["--database-url", make_conninfo(fresh, user=guest)])
        assert code == 1
        err = capsys.readouterr().err
        assert err.startswith("kades migrate: ") and "permission denied" in err, err
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for statement in drop:
                conn.execute(statement)


def test_a_rolled_back_release_migrates_past_what_a_newer_one_applied(fresh_database_url,
                                                                      tmp_path, capsys):
    """After a rollback the migration Job failed on every run ("0003: applied but its file
    is gone"), and `make deploy` with it; a file gone from the middle is still refused."""
    for version in ("0001", "0002", "0003"):
        (tmp_path / f"{version}_step.sql").write_text(f"CREATE TABLE step_{version} (x int);")
    assert migrate(fresh_database_url, directory=tmp_path) == ["0001", "0002", "0003"]
    (tmp_path / "0003_step.sql").unlink()
    assert migrate(fresh_database_url, directory=tmp_path) == []
    rows = status(fresh_database_url, directory=tmp_path)
    assert [(r["version"], r["state"]) for r in rows] == [
        ("0001", "applied"), ("0002", "applied"), ("0003", "applied")]
    assert "newer release" in rows[-1]["reason"]
    (tmp_path / "0002_step.sql").unlink()
    (tmp_path / "0003_step.sql").write_text("CREATE TABLE step_0003 (x int);")
    with pytest.raises(MigrationError, match="0002: applied but its file is gone"):
        migrate(fresh_database_url, directory=tmp_path)


def test_a_replica_whose_handlers_hold_every_connection_is_busy_not_unready(fresh_database_url,
                                                                            monkeypatch):
    """/ready waited in line for a pooled connection, past the probe's own timeout: a replica
    at its busiest was judged unready and taken out of service. Busy is ready; a database
    away is still not."""
    from kades import clients
    from kades.runtime.endpoint import probe_response
    from kades.runtime.function import Context
    from kades.settings import Settings
    migrate(fresh_database_url)
    monkeypatch.setenv("KADES_DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("KADES_DATABASE_POOL_SIZE", "1")
    monkeypatch.setenv("KADES_DATABASE_TIMEOUT_S", "1")
    ctx = Context("risk-scoring", Settings.from_env())
    assert probe_response("/ready", ctx, uses_database=True).status_code == 200
    holding, release = threading.Event(), threading.Event()

    def handler():  # a handler's long transaction on the pool's only connection
        with ctx.db():
            holding.set()
            release.wait(10)
    worker = threading.Thread(target=handler)
    worker.start()
    try:
        assert holding.wait(5)
        busy = probe_response("/ready", ctx, uses_database=True)
        assert busy.status_code == 200, busy.get_json()
    finally:
        release.set()
        worker.join()
        clients.close_all()
    away = dataclasses.replace(Settings.from_env(), database_url="postgresql://kades@127.0.0.1:1/x")
    assert probe_response("/ready", Context("risk-scoring", away), uses_database=True).status_code == 503


def test_a_database_without_the_tables_is_told_to_migrate(fresh_database_url, monkeypatch, capsys):
    """`kades apikey list` on a database never migrated said UndefinedTable and no more."""
    from kades.cli import main
    from kades import exitcodes
    monkeypatch.setenv("KADES_DATABASE_URL", fresh_database_url)
    assert main(["apikey", "list"]) == exitcodes.FAILURE
    err = capsys.readouterr().err
    assert "UndefinedTable" in err and "run kades migrate" in err and err.count("\n") == 1
