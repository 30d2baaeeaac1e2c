"""`kades solana-source` as a command: `--replay -` reads stdin, and every way it can end has
its exit code (1 for a bad recording, 3 when the sink, the node or Redis is away), with no
password in what it prints. Needs no recorded material: a minimal transaction will do."""
from __future__ import annotations

import functools
import io
import json

import pytest

from kades import exitcodes
from kades.cli import main
from kades.events.catalogue import CHAIN_BLOCK
from kades.events.envelope import from_structured
from kades.solana import poll
from kades.solana.rpc import SolanaRpc

SYSTEM_PROGRAM = "11111111111111111111111111111111"


def transaction(slot: int) -> dict:
    """The smallest recorded getTransaction result the source turns into a block."""
    return {"slot": slot, "blockTime": 1_700_000_000 + slot,
            "transaction": {"signatures": [f"sig{slot}"],
                            "message": {"accountKeys": [SYSTEM_PROGRAM], "instructions": []}},
            "meta": {"err": None, "preBalances": [0], "postBalances": [0],
                     "preTokenBalances": [], "postTokenBalances": []}}


def test_replay_dash_reads_stdin_as_a_file_would(tmp_path, monkeypatch, capsys):
    document = [transaction(7), transaction(5)]
    (tmp_path / "recorded.json").write_text(json.dumps(document))
    assert main(["solana-source", "--replay", str(tmp_path / "recorded.json"), "--stdout"]) == 0
    from_file = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(document)))
    assert main(["solana-source", "--replay", "-", "--stdout"]) == exitcodes.OK
    from_stdin = capsys.readouterr().out
    events = [from_structured(json.loads(line)) for line in from_stdin.splitlines()]
    assert [e.data["slot"] for e in events] == [5, 7] and events[0].type == CHAIN_BLOCK
    assert from_stdin == from_file


@pytest.mark.parametrize("stdin, message", [("{not json", "Expecting property name"),
                                            ("42", "expected a JSON object or array")])
def test_a_malformed_recording_is_a_failure(monkeypatch, capsys, stdin, message):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["solana-source", "--replay", "-", "--stdout"]) == exitcodes.FAILURE
    assert message in capsys.readouterr().err


def test_a_missing_file_is_a_failure(capsys):
    code = main(["solana-source", "--replay", "/nonexistent/file.json", "--stdout"])
    assert code == exitcodes.FAILURE
    assert "no such file" in capsys.readouterr().err


def test_an_unreachable_sink_is_exit_code_3_without_its_password(tmp_path, capsys):
    (tmp_path / "recorded.json").write_text(json.dumps(transaction(5)))
    code = main(["solana-source", "--replay", str(tmp_path / "recorded.json"),
                 "--sink", "http://kades:s3cret@127.0.0.1:1/kades/kades"])
    assert code == exitcodes.UNAVAILABLE
    err = capsys.readouterr().err
    assert "http://kades:***@127.0.0.1:1/kades/kades is unreachable" in err
    errors = [line for line in err.splitlines() if not line.startswith("programs ")]  # not the summary
    assert "s3cret" not in err and len(errors) == 1


def test_rpc_mode_with_redis_away_is_exit_code_3(fresh_settings, capsys):
    fresh_settings.setenv("KADES_REDIS_URL", "redis://:s3cret@127.0.0.1:1/0")
    code = main(["solana-source", "--rpc", "http://127.0.0.1:1/", "--stdout", "--max-slots", "1"])
    assert code == exitcodes.UNAVAILABLE
    err = capsys.readouterr().err
    assert "Redis at redis://:***@127.0.0.1:1/0 is unreachable" in err and "s3cret" not in err


def test_rpc_mode_with_the_node_away_is_exit_code_3(kades_env, redis_conn, monkeypatch, capsys):
    # The node's retries (with their back-off) happen, without the waiting.
    monkeypatch.setattr(poll, "SolanaRpc", functools.partial(SolanaRpc, sleep=lambda s: None))
    code = main(["solana-source", "--rpc", "http://127.0.0.1:1/?api-key=s3cret", "--stdout",
                 "--start-slot", "5", "--max-slots", "1"])
    assert code == exitcodes.UNAVAILABLE
    err = capsys.readouterr().err
    assert "is unreachable" in err and "getSlot" in err and "api-key=***" in err
    assert "s3cret" not in err
