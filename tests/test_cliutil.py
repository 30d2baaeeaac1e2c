"""What the subcommands share: `-` for stdin/stdout, quiet progress off a terminal, and
dependency errors told apart from other failures, in one line without a password."""
from __future__ import annotations

import io

import httpx
import psycopg
import pytest
import redis

from kades import cliutil, clients, exitcodes
from kades.errors import TemporaryFailure
from kades.settings import Settings
from terminal import Terminal


def test_dash_is_stdin_and_stdout_and_is_left_open(monkeypatch, tmp_path):
    monkeypatch.setattr("sys.stdin", io.StringIO("from stdin\n"))
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    with cliutil.open_input("-") as source, cliutil.open_output("-") as target:
        target.write(source.read())
    assert out.getvalue() == "from stdin\n" and not out.closed
    with cliutil.open_output(str(tmp_path / "f.txt")) as target:
        target.write("to a file")
    with cliutil.open_input(str(tmp_path / "f.txt")) as source:
        assert source.read() == "to a file"


def test_progress_is_quiet_when_stderr_is_not_a_terminal(monkeypatch):
    redirected = io.StringIO()
    monkeypatch.setattr("sys.stderr", redirected)
    assert sum(cliutil.progress(range(50), total=50)) == sum(range(50))
    assert redirected.getvalue() == ""


def test_progress_draws_a_bar_on_a_terminal_and_can_be_forced(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    list(cliutil.progress(range(50), total=50, desc="rows"))
    assert "\r" in terminal.getvalue() and "50/50" in terminal.getvalue()
    redirected = io.StringIO()
    monkeypatch.setattr("sys.stderr", redirected)
    list(cliutil.progress(range(5), total=5, show=True))
    assert "5/5" in redirected.getvalue()
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    list(cliutil.progress(range(5), total=5, show=False))
    assert terminal.getvalue() == ""


@pytest.mark.parametrize("text, expected", [
    ("redis://:s3cret@127.0.0.1:6390/0", "redis://:***@127.0.0.1:6390/0"),
    ("at postgresql://kades:pa@ss@db:5432/kades now",
     "at postgresql://kades:***@db:5432/kades now"),
    ("https://rpc.example/?api-key=abc123&commitment=confirmed",
     "https://rpc.example/?api-key=***&commitment=confirmed"),
    ("http://127.0.0.1:8090/kades/kades", "http://127.0.0.1:8090/kades/kades"),
    ("redis://user@host/0", "redis://user@host/0"),
])
def test_passwords_in_messages_are_redacted(text, expected):
    assert cliutil.redact_text(text) == expected


def test_one_line_keeps_the_first_line_and_names_the_error():
    error = psycopg.OperationalError('connection failed: port 1\n\tIs the server running?')
    assert cliutil.one_line(error) == "OperationalError: connection failed: port 1"
    assert cliutil.one_line(TemporaryFailure("")) == "TemporaryFailure"


def closed_port_errors() -> list[BaseException]:
    """Real errors of the three clients (Redis's as one server and as a cluster) against a
    port nothing listens on."""
    errors = []
    cluster = Settings(redis_url="redis://127.0.0.1:1/0", redis_cluster=True)
    for attempt in (lambda: redis.Redis.from_url("redis://127.0.0.1:1/0").ping(),
                    lambda: psycopg.connect("postgresql://kades:pw@127.0.0.1:1/kades"),
                    lambda: httpx.get("http://127.0.0.1:1/"),
                    lambda: clients.new_redis(cluster)):
        with pytest.raises(Exception) as caught:
            attempt()
        errors.append(caught.value)
    return errors


def test_an_unreachable_dependency_is_told_apart_from_other_failures():
    errors = closed_port_errors()
    assert all(cliutil.unreachable(error) for error in errors)
    # the broker and the CLIs catch Redis's failures as RedisError, a cluster's away too
    assert type(errors[-1]) is clients.ClusterUnreachable and isinstance(errors[-1], redis.RedisError)
    wrapped = RuntimeError("could not post")
    wrapped.__cause__ = httpx.ConnectError("refused")
    assert cliutil.unreachable(wrapped)
    assert cliutil.unreachable(TemporaryFailure("sink away"))
    # Answers of a server that is there: no outage.
    assert not cliutil.unreachable(redis.ResponseError("WRONGTYPE"))
    assert not cliutil.unreachable(psycopg.errors.QueryCanceled("statement timeout"))
    assert not cliutil.unreachable(ValueError("bad row"))


def test_a_database_that_turns_the_connection_away_is_no_outage(kades_settings):
    """A database or role that does not exist, a wrong password or a malformed option were
    called unreachable (exit 3, as if waiting would help): psycopg gives no SQLSTATE for them."""
    from urllib.parse import urlsplit
    parts = urlsplit(kades_settings.database_url)
    server = f"{parts.hostname}:{parts.port}"
    for url in (f"postgresql://{parts.username}@{server}/no_such_database",
                f"postgresql://no_such_role@{server}/postgres",
                f"{kades_settings.database_url}?sslmode=bogus"):
        with pytest.raises(psycopg.OperationalError) as caught:
            psycopg.connect(url, connect_timeout=5).close()
        assert not cliutil.unreachable(caught.value), caught.value
    # still an outage: a server that is starting, or full
    for said in ('connection failed: FATAL:  the database system is starting up',
                 'connection failed: FATAL:  sorry, too many clients already'):
        assert cliutil.unreachable(psycopg.OperationalError(said))


def test_report_error_exit_codes_and_one_line(capsys):
    refused = closed_port_errors()[1]
    # Even a caller that forgets redact_url prints no password.
    code = cliutil.report_error("demo", "PostgreSQL at postgresql://kades:pw@127.0.0.1:1/kades",
                                refused)
    assert code == exitcodes.UNAVAILABLE
    err = capsys.readouterr().err
    assert err.startswith("kades demo: PostgreSQL at postgresql://kades:***@127.0.0.1:1/kades "
                          "is unreachable (OperationalError: connection failed")
    assert err.count("\n") == 1 and ":pw@" not in err
    code = cliutil.report_error("demo", "Redis", redis.ResponseError("WRONGTYPE"))
    assert code == exitcodes.FAILURE
    assert capsys.readouterr().err == "kades demo: Redis: ResponseError: WRONGTYPE\n"
