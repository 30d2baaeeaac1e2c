"""Keys are never stored or logged in clear; no secret value appears in an error message or
a log line, even when a dependency whose URL carries a password is away."""
from __future__ import annotations

import json
import socket
from pathlib import Path

from functions_framework import create_app
from psycopg import sql

from api.apiclient import api_client

COUNTER = Path(__file__).resolve().parents[1] / "runtime" / "functions" / "counter" / "main.py"
DB_PASSWORD = "S3cretPw0rd-db-do-not-leak"
REDIS_PASSWORD = "R3disPw0rd-do-not-leak"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def every_text_value(conn) -> list[str]:
    """Every value of every column of every table in the public schema, as text."""
    values = []
    tables = [r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    for table in tables:
        rows = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall()
        for row in rows:
            for value in row:
                if isinstance(value, (bytes, memoryview)):
                    value = bytes(value).decode("latin-1")
                values.append(str(value))
    return values


def every_redis_value(redis_conn) -> list[str]:
    out = []
    for key in redis_conn.scan_iter(count=1000):
        out.append(key.decode("latin-1"))
        kind = redis_conn.type(key).decode()
        if kind == "string":
            out.append(redis_conn.get(key).decode("latin-1"))
        elif kind == "hash":
            out += [v.decode("latin-1") for v in redis_conn.hvals(key)]
        elif kind == "stream":
            out += [json.dumps({k.decode("latin-1"): v.decode("latin-1") for k, v in f.items()})
                    for _, f in redis_conn.xrange(key)]
    return out


def test_api_keys_are_never_stored_or_logged_in_clear(api, make_key, db_conn, redis_conn,
                                                      log_lines):
    key_id, key = make_key("standard")
    client = api_client(key)
    assert client.get("/v1/anomalies").status_code == 200
    assert client.get("/v1/tokens/tracked").status_code == 200
    created = client.post("/v1/webhooks", json={"url": "https://example.org/hook"})
    assert created.status_code == 201
    secret = created.get_json()["secret"]
    listed = client.get("/v1/webhooks").get_json()
    assert secret not in json.dumps(listed), "the webhook secret is shown once, at creation"
    stored = every_text_value(db_conn)
    assert any(key_id in value for value in stored), "the key id (not secret) is stored"
    assert not any(key in value for value in stored), "an API key is stored in clear"
    assert not any(key in value for value in every_redis_value(redis_conn))
    assert not any(key in line for line in log_lines)
    assert not any(secret in line for line in log_lines)


def test_dependency_urls_with_passwords_never_reach_answers_or_logs(kades_env, fresh_settings,
                                                                     log_lines):
    from kades import clients
    fresh_settings.setenv("KADES_DATABASE_URL",
                          f"postgresql://kades:{DB_PASSWORD}@127.0.0.1:{free_port()}/kades")
    fresh_settings.setenv("KADES_REDIS_URL",
                          f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0")
    fresh_settings.setenv("KADES_DATABASE_TIMEOUT_S", "1")
    fresh_settings.setenv("KADES_REDIS_TIMEOUT_S", "0.5")
    clients.close_all()
    try:
        answers = [api_client("kades_" + "B" * 32).get("/v1/anomalies"),
                   api_client(None).get("/v1/ready")]
        function = create_app("handle", str(COUNTER), "http").test_client()
        answers.append(function.post("/", headers={
            "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/sec",
            "ce-type": "ai.kades.market.tick.v1", "content-type": "application/json"},
            data=json.dumps({"ticks": [{"token": "T", "time": "2026-11-26T08:00:00Z",
                                        "price": 1.0}]})))
        answers.append(function.get("/ready"))
    finally:
        clients.close_all()
    assert [a.status_code for a in answers] == [503] * 4
    seen = [a.get_data(as_text=True) for a in answers] + log_lines
    for secret in (DB_PASSWORD, REDIS_PASSWORD):
        assert not any(secret in text for text in seen), secret
