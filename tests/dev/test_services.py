"""Local services: real servers started on free ports in a temporary data directory."""
from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest
import redis

from kades.dev import services as devservices
from kades.dev.services import free_port
from kades.settings import Settings
from kades.storage.migrate import storage_edition


def test_binaries_are_found():
    try:
        assert Path(devservices.redis_binary()).is_file()
        bindir = devservices._postgres_bindir()
    except devservices.DevServiceUnavailable as error:
        pytest.skip(str(error))
    assert (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()


def test_free_ports_are_distinct_and_below_the_ephemeral_range():
    first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50  # never the same twice in a process
    assert all(20000 <= port < first_ephemeral for port in ports)
    with socket.socket() as taken:  # each one can be listened on
        taken.bind(("127.0.0.1", ports[0]))


@pytest.mark.slow
def test_redis_is_started_once_and_stopped_by_its_pid_file(tmp_path):
    port = free_port()
    try:
        assert devservices.ensure_redis(data_dir=tmp_path, port=port) is True
        assert devservices.ensure_redis(data_dir=tmp_path, port=port) is False  # already answers
        assert redis.Redis(port=port).ping()
        # the append-only file is its one copy, kept once a second; no snapshot forks
        assert redis.Redis(port=port).config_get("appendonly") == {"appendonly": "yes"}
        assert redis.Redis(port=port).config_get("save") == {"save": ""}
        assert (tmp_path / "redis" / "redis.pid").exists()
        assert (tmp_path / "redis" / "redis.log").exists()
    finally:
        stopped = devservices.stop_all(tmp_path)
    assert stopped == ["redis"]
    assert not devservices.port_open(port)
    assert devservices.stop_all(tmp_path) == []


def test_a_redis_that_exits_at_start_fails_at_once_with_its_log(tmp_path):
    """A Redis that cannot read its append-only file exits: say so with its log, rather than
    wait out the long time a large file may take to load (REDIS_LOAD_TIMEOUT_S)."""
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "appendonly.aof").write_text("this is not an append-only file\n")
    port = free_port()
    try:
        with pytest.raises(devservices.DevServiceError, match="(?s)exited before.*Bad file format"):
            devservices.ensure_redis(data_dir=tmp_path, port=port)
    finally:
        devservices.stop_all(tmp_path)
    # its exit is seen once its command line is gone: its socket may close a moment later
    devservices.wait_until(lambda: not devservices.port_open(port), timeout_s=10,
                           what="the exited Redis's port", log=tmp_path / "redis" / "redis.log")


@pytest.mark.slow
def test_redis_writing_its_first_append_only_file_is_still_stopped(tmp_path):
    """Redis refuses a SIGTERM while it writes its first AOF (as a replica does just after a
    full sync) and never retries on its own; the stop asks again until it goes."""
    port = free_port()
    try:
        devservices.ensure_redis(data_dir=tmp_path, port=port)
        client = redis.Redis(port=port)
        client.config_set("appendonly", "no")
        client.mset({f"k{n}": n for n in range(15)})
        client.config_set("rdb-key-save-delay", 100_000)  # the rewrite: 0.1 s a key, ~1.5 s
        client.config_set("appendonly", "yes")  # starts writing the first AOF
        assert client.info("persistence")["aof_rewrite_in_progress"] == 1
        client.close()
    finally:
        stopped = devservices.stop_all(tmp_path)
    assert stopped == ["redis"]
    assert "can't exit" in (tmp_path / "redis" / "redis.log").read_text()  # refused once
    assert not devservices.port_open(port)


@pytest.mark.slow
def test_postgres_is_initialised_started_and_stopped(tmp_path):
    port = free_port()
    try:
        assert devservices.ensure_postgres(data_dir=tmp_path, port=port, database="kades") is True
        url = f"postgresql://kades@127.0.0.1:{port}/kades"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == \
                ("kades", "kades")
            assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        assert devservices.ensure_database(url, "kades_extra") is True
        assert devservices.ensure_database(url, "kades_extra") is False
        assert devservices.ensure_postgres(data_dir=tmp_path, port=port) is False
        assert list((tmp_path / "postgres" / "run").glob(".s.PGSQL.*"))  # socket in our dir
    finally:
        stopped = devservices.stop_all(tmp_path)
    assert stopped == ["postgres"]
    assert not devservices.port_open(port)


def test_a_foreign_server_on_the_port_is_an_error_not_a_second_start(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(devservices.DevServiceError, match="not Redis"):
            devservices.ensure_redis(data_dir=tmp_path, port=port)
    assert not (tmp_path / "redis").exists()


def test_a_server_that_never_answers_fails_with_its_log(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("starting\nFATAL: could not bind\n")
    with pytest.raises(devservices.DevServiceError, match="(?s)did not answer.*could not bind"):
        devservices.wait_until(lambda: False, timeout_s=0.2, what="server", log=log)


def test_services_status_prints_the_urls(kades_settings, capsys):
    config = Settings(redis_url=kades_settings.redis_url,
                      database_url=kades_settings.database_url)
    assert devservices.main_services(["status"], config=config) == 0
    out = capsys.readouterr().out
    assert f"{config.redis_url}  answering" in out
    assert f"{config.database_url}  answering" in out


def test_services_status_reports_remote_servers_as_unmanaged(capsys):
    config = Settings(redis_url="redis://cache.example:6379/0",
                      database_url="postgresql://kades@db.example:5432/kades")
    assert devservices.main_services(["status"], config=config) == 0
    assert capsys.readouterr().out.count("remote (not managed here)") == 2


def test_a_database_url_of_several_hosts_is_not_managed_here(capsys):
    """Settings take it (libpq tries each host); status raised ValueError on its port."""
    config = Settings(redis_url="redis://cache.example:6379/0",
                      database_url="postgresql://127.0.0.1:5440,127.0.0.1:5441/kades")
    assert devservices.local_port(config.database_url) is None
    assert devservices.main_services(["status"], config=config) == 0
    assert capsys.readouterr().out.count("remote (not managed here)") == 2


@pytest.mark.slow
def test_services_up_then_down(tmp_path, capsys):
    config = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0",
                      database_url=f"postgresql://kades@127.0.0.1:{free_port()}/kades_dev")
    try:
        assert devservices.main_services(["up", "--data-dir", str(tmp_path)], config=config) == 0
        out = capsys.readouterr().out
        assert f"redis    {config.redis_url}  (started)" in out
        assert f"postgres {config.database_url}  (started)" in out
        with psycopg.connect(config.database_url) as conn:  # the database of the URL exists
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        assert devservices.main_services(["down", "--data-dir", str(tmp_path)],
                                         config=config) == 0
    assert "stopped: redis, postgres" in capsys.readouterr().out


@pytest.mark.slow
def test_a_redis_of_another_checkout_is_refused_naming_it(tmp_path):
    port = free_port()
    other, ours = tmp_path / "other" / ".local", tmp_path / "ours" / ".local"
    try:
        assert devservices.ensure_redis(data_dir=other, port=port) is True
        with pytest.raises(devservices.DevServiceError) as caught:
            devservices.ensure_redis(data_dir=ours, port=port)
        message = str(caught.value)
        assert f"KADES checkout at {tmp_path / 'other'}" in message
        assert f"make -C {tmp_path / 'other'} stop" in message and "KADES_REDIS_URL" in message
        assert devservices.ensure_redis(data_dir=other, port=port) is False  # its own: fine
    finally:
        devservices.stop_all(other)
    assert not (ours / "redis").exists()


@pytest.mark.slow
def test_a_postgres_of_another_checkout_is_refused_naming_it(tmp_path):
    port = free_port()
    other, ours = tmp_path / "other" / ".local", tmp_path / "ours" / ".local"
    try:
        assert devservices.ensure_postgres(data_dir=other, port=port, edition="plain") is True
        with pytest.raises(devservices.DevServiceError,
                           match=f"KADES checkout at {tmp_path / 'other'}.*KADES_DATABASE_URL"):
            devservices.ensure_postgres(data_dir=ours, port=port, edition="plain")
    finally:
        assert devservices.stop_all(other) == ["postgres (plain)"]


def test_services_status_says_what_storage_postgres_runs_on(kades_settings, capsys):
    config = Settings(redis_url=kades_settings.redis_url,
                      database_url=kades_settings.database_url)
    devservices.main_services(["status"], config=config)
    with psycopg.connect(kades_settings.database_url) as conn:
        edition = storage_edition(conn)
    assert f"answering: {edition.description}" in capsys.readouterr().out
    assert edition.description.startswith(("TimescaleDB", "plain PostgreSQL"))


def test_urls_with_a_password_are_printed_without_it(capsys):
    config = Settings(redis_url="redis://:hunter2@cache.example:6379/0",
                      database_url="postgresql://kades:hunter2@db.example:5432/kades")
    devservices.main_services(["status"], config=config)
    out = capsys.readouterr().out
    assert "hunter2" not in out and "kades:***@db.example" in out


def test_an_unknown_edition_is_refused(tmp_path):
    with pytest.raises(ValueError, match="edition must be one of"):
        devservices.ensure_postgres(data_dir=tmp_path, port=free_port(), edition="enterprise")


@pytest.mark.slow
def test_services_for_stops_what_it_started_and_leaves_what_was_running(tmp_path):
    config = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0",
                      database_url=f"postgresql://kades@127.0.0.1:{free_port()}/kades_dev")
    redis_port = devservices.local_port(config.redis_url)
    pg_port = devservices.local_port(config.database_url)
    with devservices.services_for(config, data_dir=tmp_path):
        assert redis.Redis(port=redis_port).ping()
        with psycopg.connect(config.database_url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("kades_dev",)
    assert not devservices.port_open(redis_port) and not devservices.port_open(pg_port)
    devservices.ensure_redis(data_dir=tmp_path, port=redis_port)  # running before: stays
    try:
        with pytest.raises(RuntimeError, match="inside"):
            with devservices.services_for(config, data_dir=tmp_path):
                raise RuntimeError("inside")
        assert redis.Redis(port=redis_port).ping()
        assert not devservices.port_open(pg_port)  # started for the block: stopped on failure
    finally:
        devservices.stop_all(tmp_path)
