"""Every line a function process writes is a JSON line, and no log line holds a password.

The process is started as `kades up` and the image start it (`python -m kades.runtime.serve`,
stdout and stderr into one log file), so gunicorn, psycopg's pool, Flask's tracebacks, a
crashed thread and `warnings.warn` all go through the same formatter.
"""
from __future__ import annotations

import json
import logging
import re
import sys

import httpx
import pytest

from kades.logs import JsonLineFormatter
from kades.settings import redact_url
from runtimetest import binary, log_lines, start_function, stop, tick_data, wait_for_line

PASSWORD = "s3cret-pw"
# Port 9 (discard) has no PostgreSQL: every connection attempt fails at once.
DATABASE_URL = f"postgresql://kades:{PASSWORD}@127.0.0.1:9/kades"


@pytest.fixture
def noisy(kades_settings, redis_conn, tmp_path):
    """The noisy function served by gunicorn (info level: its start and stop are logged)."""
    log_path = tmp_path / "noisy.log"
    process = start_function(
        "noisy", log_path, KADES_REDIS_URL=kades_settings.redis_url,
        KADES_REDIS_CLUSTER=str(kades_settings.redis_cluster),
        KADES_DATABASE_URL=DATABASE_URL, KADES_DATABASE_TIMEOUT_S="1",
        KADES_SINK_URL="http://127.0.0.1:9/kades/kades", KADES_REDIS_URLL="typo",
        GUNICORN_LOG_LEVEL="info", THREADS="4")
    try:
        listening = wait_for_line(log_path, lambda l: "Listening at" in l["message"],
                                  process=process)
        url = re.search(r"http://[\d.]+:\d+", listening["message"]).group(0)
        yield url, log_path, process
    finally:
        stop(process)


def post_tick(url: str, source: str) -> int:
    headers, body = binary(event_id=f"noise-{source}", data=tick_data(source=source))
    return httpx.post(url + "/", headers=headers, content=body, timeout=10).status_code


@pytest.mark.slow
def test_every_line_of_a_function_process_is_json(noisy):
    url, log_path, process = noisy
    assert httpx.get(url + "/health", timeout=5).status_code == 200
    headers, body = binary(event_id="noise-crash", data=tick_data(source="crash"))
    crashed = httpx.post(url + "/", headers=headers, content=body, timeout=10)
    assert crashed.status_code == 500  # a bug: the Broker retries, then dead-letters
    assert crashed.headers["content-type"] == "application/problem+json"  # was Flask's HTML
    assert crashed.json()["error"]["code"] == "internal_error"
    assert post_tick(url, "database") == 503
    assert post_tick(url, "warn") == 202
    assert post_tick(url, "thread") == 202
    assert post_tick(url, "url") == 202
    wait_for_line(log_path, lambda l: l["logger"].startswith("psycopg"))
    wait_for_line(log_path, lambda l: "doomed" in l["message"])
    stop(process)

    lines = log_lines(log_path)
    by_logger = {}
    for line in lines:
        by_logger.setdefault(line["logger"], []).append(line)
    gunicorn = [line["message"] for line in by_logger["gunicorn.error"]]
    assert gunicorn[0].startswith("Starting gunicorn") and gunicorn[-1] == "Shutting down: Master"
    crash = [l for l in lines if "RuntimeError: forced crash" in l.get("exception", "")]
    assert crash and crash[0]["level"] == "error"  # the traceback of the 500
    pool = [l for l in lines if l["logger"].startswith("psycopg")]
    assert pool and pool[0]["level"] in ("warning", "error")
    assert any("forced warnings.warn" in l["message"] for l in by_logger["py.warnings"])
    assert "ZeroDivisionError" in by_logger["kades.process"][0]["exception"]
    typo = by_logger["kades.settings"][0]
    assert (typo["variable"], typo["closest"]) == ("KADES_REDIS_URLL", "KADES_REDIS_URL")
    assert any(l["message"] == "temporary failure" for l in by_logger["kades.runtime"])
    assert any(l.get("url") == redact_url(DATABASE_URL) for l in by_logger["kades.tests.noisy"])
    assert PASSWORD not in log_path.read_text()


@pytest.mark.slow
def test_a_function_that_cannot_start_says_why_in_json(tmp_path):
    log_path = tmp_path / "broken.log"
    process = start_function("broken", log_path)
    assert process.wait(timeout=30) == 1
    (line,) = log_lines(log_path)
    assert line["logger"] == "kades.process" and line["level"] == "critical"
    assert "No module named 'kades.no_such_module'" in line["exception"]


@pytest.mark.slow
def test_malformed_settings_stop_the_start_with_every_problem(tmp_path):
    log_path = tmp_path / "noisy.log"
    process = start_function("noisy", log_path, KADES_DEDUP_TTL_S="7d",
                             KADES_WEBHOOK_ALLOW_PRIVATE="maybe")
    assert process.wait(timeout=30) == 2  # kades.exitcodes.USAGE
    (line,) = log_lines(log_path)
    assert line["message"] == "invalid settings: not started"
    assert line["problems"] == [
        "KADES_DEDUP_TTL_S='7d': expected a whole number of seconds",
        "KADES_WEBHOOK_ALLOW_PRIVATE='maybe': expected true or false (also 1/0, yes/no, on/off)"]


@pytest.mark.parametrize("url,expected", [
    ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
    ("postgresql://kades:hunter2@db:5432/kades", "postgresql://kades:***@db:5432/kades"),
    ("postgresql://kades@db/kades", "postgresql://kades@db/kades"),  # nothing to hide
    ("rediss://user:p%40ss@cache/0?ssl=true", "rediss://user:***@cache/0?ssl=true"),
    ("redis://cache:6379/0", "redis://cache:6379/0"),
])
def test_redact_url_hides_only_the_password(url, expected):
    assert redact_url(url) == expected


def test_the_formatter_hides_passwords_and_keys_in_messages_fields_and_tracebacks():
    url = "postgresql://kades:hunter2@db:5432/kades"
    try:
        raise ValueError(f"cannot reach {url}")
    except ValueError:
        record = logging.LogRecord("psycopg.pool", logging.WARNING, __file__, 1,
                                   "error connecting to %s", (url,), sys.exc_info())
    record.fields = {"url": url, "attempts": 3, "rpc": "https://rpc.example/?api-key=k3y"}
    line = JsonLineFormatter().format(record)
    assert "hunter2" not in line and "k3y" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "error connecting to postgresql://kades:***@db:5432/kades"
    assert (parsed["url"], parsed["attempts"]) == ("postgresql://kades:***@db:5432/kades", 3)


@pytest.mark.slow
def test_an_idle_connection_stays_open_as_long_as_knatives_queue_proxy_keeps_it(noisy):
    """gunicorn closed a connection idle 2 s, and queue-proxy (90 s idle) sent requests on
    connections gunicorn was closing: now a request 3 s after the last one on the same
    connection is answered."""
    import http.client
    import time

    from kades.runtime.serve import KEEPALIVE_S
    assert KEEPALIVE_S > 90
    url, _, _ = noisy
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        sockets = []
        for pause_s in (0, 3):
            time.sleep(pause_s)
            connection.request("GET", "/health")  # (closed by the server: RemoteDisconnected)
            answer = connection.getresponse()
            assert answer.status == 200 and answer.read(), pause_s
            sockets.append(connection.sock)
        assert sockets[0] is sockets[1]  # the same connection, not a new one
    finally:
        connection.close()
