"""`kades broker` and `kades dlq` as commands: exit code 3 and one line when Redis or the
ingress is away, 1 for a broken configuration, and never a password in what they print."""
from __future__ import annotations

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
