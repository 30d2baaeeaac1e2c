"""`kades run-function`: events from a file or stdin (`-`), replies on stdout, and the exit
code table: 1 for a refused event or an unreadable file, 3 only when a dependency is away."""
from __future__ import annotations

import dataclasses
import io
import json

import psycopg
import pytest

from kades import exitcodes, runfunction
from kades.cli import main
from kades.events.envelope import from_structured, to_dict
from kades.simulate.market import feed_events, simulate_market


def feed_lines() -> str:
    """A minute of the demo market feed, as recorded JSON lines."""
    events = feed_events(simulate_market(seed=4, tokens=1, minutes=1), source="/kades/simulator")
    return "".join(json.dumps(to_dict(event)) + "\n" for event in events)


def test_dash_reads_events_from_stdin_and_prints_the_replies(kades_env, redis_conn, db_conn,
                                                              monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(feed_lines()))
    assert main(["run-function", "market-aggregator", "--input", "-"]) == exitcodes.OK
    replies = [from_structured(json.loads(line)) for line in capsys.readouterr().out.splitlines()]
    assert len(replies) == 12 and {r.type for r in replies} == {"ai.kades.market.tick.v1"}


def test_a_refused_event_is_a_failure_and_the_rest_still_run(kades_env, redis_conn, db_conn,
                                                              tmp_path, capsys):
    (tmp_path / "events.jsonl").write_text("{not json\n" + feed_lines())
    assert main(["run-function", "market-aggregator", "--input",
                 str(tmp_path / "events.jsonl")]) == exitcodes.FAILURE
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 12
    assert json.loads(captured.err.splitlines()[0])["line"] == 1


def test_json_is_as_strict_as_over_http(kades_env, redis_conn, db_conn, tmp_path, capsys):
    """Python's json reads NaN and Infinity, and a JSON Schema's `exclusiveMinimum: 0` lets
    NaN through (NaN <= 0 is false): the file is read as the functions read a request body."""
    line = json.loads(feed_lines().splitlines()[0])
    line["data"]["ticks"][0]["price"] = float("nan")
    (tmp_path / "events.jsonl").write_text(json.dumps(line) + "\n" + feed_lines())
    assert "NaN" in (tmp_path / "events.jsonl").read_text()
    assert main(["run-function", "market-aggregator", "--input",
                 str(tmp_path / "events.jsonl")]) == exitcodes.FAILURE
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 12
    refusal = json.loads(captured.err.splitlines()[0])
    assert refusal["line"] == 1 and "NaN is not JSON" in refusal["error"]


def test_an_unreadable_input_is_a_failure_not_a_traceback(capsys):
    assert main(["run-function", "dead-letter", "--input", "/nonexistent/events.jsonl"]) == 1
    assert capsys.readouterr().err == ("kades run-function: cannot read "
                                       "/nonexistent/events.jsonl: No such file or directory\n")


def test_redis_away_is_exit_code_3_in_one_line_without_passwords(fresh_settings, monkeypatch,
                                                                 capsys):
    fresh_settings.setenv("KADES_REDIS_URL", "redis://:s3cret@127.0.0.1:1/0")
    fresh_settings.setenv("KADES_DATABASE_URL", "postgresql://kades:s3cret@127.0.0.1:1/kades")
    monkeypatch.setattr("sys.stdin", io.StringIO(feed_lines()))
    assert main(["run-function", "dead-letter", "--input", "-"]) == exitcodes.UNAVAILABLE
    err = capsys.readouterr().err
    assert err.startswith("kades run-function: a dependency (Redis redis://:***@127.0.0.1:1/0, "
                          "PostgreSQL postgresql://kades:***@127.0.0.1:1/kades) is unreachable")
    assert err.count("\n") == 1 and "s3cret" not in err


def test_postgresql_away_is_one_line_not_the_pools_warnings_too(kades_settings, tmp_path):
    """psycopg's pool logged each failed connection (two lines each, through logging's last
    resort) before the one line that says it all."""
    import os
    import subprocess
    import sys
    events = tmp_path / "events.jsonl"
    events.write_text(feed_lines())
    env = {**os.environ, "KADES_REDIS_URL": kades_settings.redis_url,
           "KADES_DATABASE_URL": "postgresql://kades@127.0.0.1:1/kades",
           "KADES_DATABASE_TIMEOUT_S": "1"}
    done = subprocess.run([sys.executable, "-m", "kades.cli", "run-function", "market-aggregator",
                           "--input", str(events)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == exitcodes.UNAVAILABLE, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("kades run-function: a dependency"), done.stderr


def test_a_temporary_error_from_a_server_that_is_there_is_a_failure(monkeypatch, capsys):
    # A cancelled query is one of the errors a deployed function answers 503 to, but the
    # database answered it: no dependency is away, so 1, not 3.
    def cancelled(event, ctx):
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")

    function = dataclasses.replace(runfunction.load("dead-letter"), handle=cancelled)
    monkeypatch.setattr(runfunction, "load", lambda name: function)
    monkeypatch.setattr("sys.stdin", io.StringIO(feed_lines()))
    assert main(["run-function", "dead-letter", "--input", "-"]) == exitcodes.FAILURE
    assert "QueryCanceled: canceling statement" in capsys.readouterr().err


def test_a_handler_bug_shows_as_one_not_as_a_refused_event(monkeypatch):
    """A ValueError of the handler (a 500 when deployed) was printed as refused input with no
    details, which hid the crashes a hunt then found over HTTP."""
    def broken(event, ctx):
        raise ValueError("year 0 is out of range")

    function = dataclasses.replace(runfunction.load("dead-letter"), handle=broken)
    monkeypatch.setattr(runfunction, "load", lambda name: function)
    monkeypatch.setattr("sys.stdin", io.StringIO(feed_lines()))
    with pytest.raises(ValueError, match="year 0"):
        main(["run-function", "dead-letter", "--input", "-"])
