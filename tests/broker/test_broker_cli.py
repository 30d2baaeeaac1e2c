"""`kades broker` and `kades dlq` as commands: exit code 3 and one line when Redis or the
ingress is away, 1 for a broken configuration, and never a password in what they print."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from brokertest import event_attrs
from kades import exitcodes
from kades.deadletter.cli import main_dlq
from kades.deadletter.store import list_dead_letters, store_dead_letter
from kades.events.envelope import CloudEvent

CLOSED_REDIS = "redis://:s3cret@127.0.0.1:1/0"
REPO = Path(__file__).resolve().parents[2]


def one_line_without_secret(err: str) -> str:
    assert err.count("\n") == 1 and "s3cret" not in err, err
    return err


def test_dlq_with_redis_away_is_exit_code_3(capsys):
    for argv in (["list"], ["replay", "--all"]):
        assert main_dlq(["--redis-url", CLOSED_REDIS, *argv]) == exitcodes.UNAVAILABLE
        err = one_line_without_secret(capsys.readouterr().err)
        assert err.startswith("kades dlq: Redis at redis://:***@127.0.0.1:1/0 is unreachable")


def test_dlq_replay_with_the_ingress_away_is_exit_code_3(kades_settings, redis_conn, capsys):
    store_dead_letter(redis_conn, CloudEvent(event_attrs("ai.kades.test.v1", "e1"), {"n": 1}))
    code = main_dlq(["--redis-url", kades_settings.redis_url, "replay", "--all",
                     "--ingress", "http://kades:s3cret@127.0.0.1:1/kades/kades"])
    assert code == exitcodes.UNAVAILABLE
    assert "s3cret" not in capsys.readouterr().err
    assert len(list_dead_letters(redis_conn)) == 1  # kept for the next try


def test_dlq_replay_of_an_unknown_id_is_a_failure(kades_settings, redis_conn, capsys):
    assert main_dlq(["--redis-url", kades_settings.redis_url, "replay", "0-1"]) == exitcodes.FAILURE
    assert "no such dead letter: 0-1" in capsys.readouterr().err


def test_dlq_replay_output_redacts_the_ingress(kades_settings, redis_conn, capsys):
    # Nothing to replay: it succeeds at once, and still says where it sent.
    code = main_dlq(["--redis-url", kades_settings.redis_url, "replay", "--all",
                     "--ingress", "http://kades:s3cret@127.0.0.1:1/kades/kades"])
    assert code == exitcodes.OK
    assert capsys.readouterr().out == ("replayed 0 dead letter(s) to "
                                       "http://kades:***@127.0.0.1:1/kades/kades\n")


# Anyone with access to Redis may add to the stream: no `event`, not JSON, no object, not UTF-8.
MALFORMED = [({"time": "t"}, "no 'event' field"), ({"event": "{not json"}, "'event' is not JSON"),
             ({"event": "[1, 2]"}, "'event' is not a CloudEvent: body: a structured event is a "
                                   "JSON object"),
             ({"event": b"\xff\xfe"}, "'event' is not JSON: 'utf-8' codec can't decode")]


def malformed_entries(redis_conn) -> dict[str, str]:
    """The MALFORMED entries added to the dead-letter stream: id -> why it cannot be read."""
    from kades.keys import DLQ
    added = {redis_conn.xadd(DLQ, fields): why for fields, why in MALFORMED}
    return {i.decode() if isinstance(i, bytes) else i: why for i, why in added.items()}


def test_dlq_list_shows_a_malformed_entry_as_unreadable(kades_settings, redis_conn, capsys):
    store_dead_letter(redis_conn, CloudEvent(event_attrs("ai.kades.test.v1", "e1"), {"n": 1}))
    unreadable = malformed_entries(redis_conn)
    assert main_dlq(["--redis-url", kades_settings.redis_url, "list"]) == exitcodes.OK
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 1 + len(MALFORMED) and "ai.kades.test.v1" in lines[1]
    for line, (entry_id, why) in zip(lines[2:], unreadable.items()):
        assert line.startswith(entry_id) and f"UNREADABLE: {why}" in line, line
    assert main_dlq(["--redis-url", kades_settings.redis_url, "list", "--json"]) == exitcodes.OK
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed[0]["event"]["id"] == "e1"
    assert [(d["id"], "event" in d) for d in listed[1:]] == [(i, False) for i in unreadable]
    assert all(why in d["unreadable"] for d, why in zip(listed[1:], unreadable.values()))


def test_dlq_replay_skips_a_malformed_entry_and_replays_the_rest(kades_settings, redis_conn,
                                                                 recording_sink, capsys):
    store_dead_letter(redis_conn, CloudEvent(event_attrs("ai.kades.test.v1", "e1"), {"n": 1}))
    unreadable = malformed_entries(redis_conn)
    code = main_dlq(["--redis-url", kades_settings.redis_url, "replay", "--all",
                     "--ingress", os.environ["KADES_SINK_URL"]])
    assert code == exitcodes.FAILURE
    assert [e.id for e in recording_sink] == ["e1"]
    err = capsys.readouterr().err
    assert f"replayed 1; {len(MALFORMED)} dead letter(s) not replayed" in err
    assert all(f"{i}: unreadable, not replayed: {why}" in err for i, why in unreadable.items())
    assert "Traceback" not in err
    assert [d.id for d in list_dead_letters(redis_conn)] == list(unreadable)  # kept, for a look


@pytest.mark.parametrize("argv, message", [
    (["list", "--limit", "0"], "--limit: expected a whole number from 1, got '0'"),
    (["list", "--limit", "-1"], "--limit: expected a whole number from 1, got '-1'"),
    (["--redis-url", "notaurl", "list"],
     "--redis-url: 'notaurl': expected a redis://, rediss:// or unix:// URL"),
    (["--redis-url", "redis://:s3cret@127.0.0.1:1/abc", "list"],
     "--redis-url: 'redis://:***@127.0.0.1:1/abc': expected a database number, got 'abc'"),
    # was exit 3, the ingress "unreachable"
    (["replay", "--all", "--ingress", "notaurl"],
     "--ingress 'notaurl': expected an http:// or https:// URL"),
    (["replay", "--all", "--ingress", "ftp://kades:s3cret@x/"],
     "--ingress 'ftp://kades:***@x/': expected an http:// or https:// URL"),
    (["replay", "--all", "--ingress", "http://[x/"],
     "--ingress 'http://[x/': expected an http:// or https:// URL (Invalid IPv6 URL)"),
])
def test_dlq_usage_errors_are_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main_dlq(argv)
    assert stop.value.code == exitcodes.USAGE
    err = capsys.readouterr().err
    assert message in err and "s3cret" not in err and "Traceback" not in err


def run_broker(*options: str) -> tuple[int, str]:
    """`kades broker` in a process of its own (it sets up logging): exit code, stderr."""
    run = subprocess.run([sys.executable, "-m", "kades.cli", "broker", *options],
                         capture_output=True, text=True, timeout=60)
    return run.returncode, run.stderr


@pytest.mark.slow
def test_broker_with_redis_away_is_exit_code_3():
    code, err = run_broker("--eventing-dir", str(REPO / "eventing"), "--redis-url", CLOSED_REDIS,
                           "--redis-wait-s", "0")
    assert code == exitcodes.UNAVAILABLE
    err = one_line_without_secret(err)
    assert err.startswith("kades broker: Redis at redis://:***@127.0.0.1:1/0 is unreachable")


@pytest.mark.slow
def test_broker_with_broken_manifests_is_a_failure(tmp_path):
    (tmp_path / "broker.yaml").write_text("kind: Broker\n  bad: [indent\n")
    code, err = run_broker("--eventing-dir", str(tmp_path), "--redis-url", CLOSED_REDIS)
    assert code == exitcodes.FAILURE and "not valid YAML" in err


def test_dlq_show_prints_one_letter_whole_and_what_was_kept_of_an_undecodable_one(
        kades_settings, redis_conn, capsys):
    """An operator could list dead letters but read none whole: the event's data, or the
    request kept of one that was no event, only with redis-cli."""
    import base64
    from kades.deadletter.store import store_undecodable
    from kades.errors import Problem
    url = kades_settings.redis_url
    kept = store_dead_letter(redis_conn, CloudEvent(event_attrs("ai.kades.test.v1", "e1"),
                                                    {"n": 1}), note="gave up after 3")
    broken = store_undecodable(redis_conn, {"ce-id": "b1", "Content-Type": "application/json",
                                            "X-Other": "dropped"}, b'{"price": ',
                               [Problem("body", "not JSON")])
    binary = store_undecodable(redis_conn, {"ce-id": "b2"}, b"\xff\x00", [Problem("body", "x")])
    assert main_dlq(["--redis-url", url, "show", kept]) == exitcodes.OK
    shown = json.loads(capsys.readouterr().out)
    assert (shown["id"], shown["note"], shown["event"]["data"]) == (kept, "gave up after 3", {"n": 1})
    assert main_dlq(["--redis-url", url, "show", broken]) == exitcodes.OK
    shown = json.loads(capsys.readouterr().out)
    assert "event" not in shown and "no valid CloudEvent" in shown["unreadable"]
    assert shown["undecodable"] == {"headers": {"ce-id": "b1", "content-type": "application/json"},
                                    "body": '{"price": '}
    assert main_dlq(["--redis-url", url, "show", binary]) == exitcodes.OK
    shown = json.loads(capsys.readouterr().out)["undecodable"]
    assert base64.b64decode(shown["body_base64"]) == b"\xff\x00" and "body" not in shown
    for missing in ("0-1", "-", "+", "nonsense"):  # XRANGE would read - and + as every entry
        assert main_dlq(["--redis-url", url, "show", missing]) == exitcodes.FAILURE
        assert capsys.readouterr().err == f"no such dead letter: {missing}\n"


def test_dlq_drop_deletes_named_or_unreadable_letters_only(kades_settings, redis_conn, capsys):
    url = kades_settings.redis_url
    first, second = (store_dead_letter(redis_conn, CloudEvent(event_attrs("ai.kades.test.v1", i),
                                                              {"n": 1})) for i in ("e1", "e2"))
    unreadable = malformed_entries(redis_conn)
    assert main_dlq(["--redis-url", url, "drop", "--unreadable"]) == exitcodes.OK
    assert capsys.readouterr().out == f"dropped {len(MALFORMED)} dead letter(s)\n"
    assert [d.id for d in list_dead_letters(redis_conn)] == [first, second]
    assert main_dlq(["--redis-url", url, "drop", second, second, "0-1", "-"]) == exitcodes.FAILURE
    out, err = capsys.readouterr()
    assert out == "dropped 1 dead letter(s)\n" and err == "no such dead letter: 0-1, -\n"
    assert [d.id for d in list_dead_letters(redis_conn)] == [first]
    with pytest.raises(SystemExit) as usage:
        main_dlq(["--redis-url", url, "drop", first, "--unreadable"])
    assert usage.value.code == 2 and not unreadable.keys() & {first}
    with pytest.raises(SystemExit):
        main_dlq(["--redis-url", url, "drop"])
    assert [d.id for d in list_dead_letters(redis_conn)] == [first]


@pytest.mark.parametrize("command, variable", [(["broker", "--help"], "KADES_BROKER_PORT"),
                                               (["broker", "--help"], "KADES_BROKER_WORKERS"),
                                               (["up", "--no-demo", "--root", "/nonexistent"],
                                                "KADES_BROKER_PORT")])
def test_a_malformed_broker_variable_is_one_line_and_exit_2(command, variable):
    """int() of it raised: a traceback and exit 1, even for --help (kades up reads it before
    it starts anything). In a process of its own: the broker takes over the logging."""
    done = subprocess.run([sys.executable, "-m", "kades.cli", *command], capture_output=True,
                          text=True, timeout=60, env={**os.environ, variable: "8o90"})
    assert done.returncode == exitcodes.USAGE, done.stderr
    assert done.stderr.count("\n") == 1 and f"{variable}='8o90'" in done.stderr
