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


def test_a_recording_nested_too_deeply_is_a_failure(tmp_path, capsys):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)  # was a RecursionError
    code = main(["solana-source", "--replay", str(tmp_path / "deep.json"), "--stdout"])
    assert code == exitcodes.FAILURE
    assert capsys.readouterr().err == f"kades solana-source: {tmp_path / 'deep.json'}: JSON nested too deeply\n"


def test_a_folder_with_nothing_to_read_is_a_failure(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no recording here")  # was exit 0, "programs read: none"
    assert main(["solana-source", "--replay", str(tmp_path), "--stdout"]) == exitcodes.FAILURE
    captured = capsys.readouterr()
    assert captured.err == f"kades solana-source: nothing to read: no *.json file in {tmp_path}\n"
    assert captured.out == ""


@pytest.mark.parametrize("document, message", [
    ({"meta": 5, "transaction": 5}, "meta is a number, not an object"),
    ({"meta": {}, "transaction": 5}, "transaction is a number, not an object"),
    ({"meta": {}}, "missing 'transaction'"),
    ({"meta": {}, "transaction": {"message": [], "signatures": ["s"]}},
     "transaction.message is an array, not an object"),
    ({"meta": {}, "transaction": {"message": {"accountKeys": []}, "signatures": []}},
     "transaction.signatures is empty"),
])
def test_a_transaction_of_the_wrong_shape_says_what_is_wrong(document, message, monkeypatch,
                                                             capsys):
    # was "missing 'int' object is not subscriptable"
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(document)))
    assert main(["solana-source", "--replay", "-", "--stdout"]) == exitcodes.FAILURE
    assert f"not a Solana transaction: {message}" in capsys.readouterr().err


def test_a_field_of_the_wrong_shape_deeper_in_is_left_out_not_a_traceback(monkeypatch, capsys):
    odd = transaction(6)
    odd["meta"]["loadedAddresses"] = 5  # was an AttributeError traceback
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps([transaction(5), odd])))
    assert main(["solana-source", "--replay", "-", "--stdout"]) == exitcodes.OK
    out, err = capsys.readouterr()
    assert [json.loads(line)["data"]["slot"] for line in out.splitlines()] == [5]
    assert "left out, unreadable: -: sig6: AttributeError" in err


@pytest.mark.parametrize("options, message", [
    (["--sink", "notaurl"], "--sink 'notaurl': expected an http:// or https:// URL"),
    (["--sink", "ftp://kades:s3cret@x/"],
     "--sink 'ftp://kades:***@x/': expected an http:// or https:// URL"),
    (["--sink", "http://127.0.0.1:1/", "--sink-token-file", "/nonexistent"],
     "cannot read the sink token file /nonexistent: No such file or directory"),
])
def test_a_wrong_sink_or_token_file_is_a_usage_error(tmp_path, options, message, capsys):
    # was exit 3, the sink "unreachable"
    (tmp_path / "recorded.json").write_text(json.dumps(transaction(5)))
    for mode in (["--replay", str(tmp_path / "recorded.json")], ["--rpc", "http://127.0.0.1:1/"]):
        with pytest.raises(SystemExit) as stop:
            main(["solana-source", *mode, *options])
        assert stop.value.code == exitcodes.USAGE
        err = capsys.readouterr().err
        assert f"kades solana-source: error: {message}\n" in err and "s3cret" not in err


@pytest.mark.parametrize("options, env, message", [
    (["--rpc", "notaurl"], {}, "--rpc 'notaurl': expected an http:// or https:// URL"),
    ([], {"SOLANA_RPC_URL": "ws://u:s3cret@node/"},
     "SOLANA_RPC_URL 'ws://u:***@node/': expected an http:// or https:// URL"),
])
def test_a_wrong_rpc_url_is_a_usage_error(options, env, message, monkeypatch, capsys):
    # was exit 3 ("Redis ... is unreachable" when Redis was away), else the poller's retries
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stop:
        main(["solana-source", *options, "--stdout"])
    assert stop.value.code == exitcodes.USAGE
    err = capsys.readouterr().err
    assert f"kades solana-source: error: {message}\n" in err and "s3cret" not in err


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


@pytest.mark.parametrize("status, code", [(400, exitcodes.FAILURE), (403, exitcodes.FAILURE),
                                          (429, exitcodes.UNAVAILABLE),
                                          (503, exitcodes.UNAVAILABLE)])
def test_a_sink_that_refuses_the_event_is_a_failure_not_unreachable(tmp_path, capsys, status,
                                                                     code):
    """A 400 from the sink (the event refused) was exit 3, "the sink is unreachable", which
    sends an operator after the network; it answered, and retrying sends the same again."""
    import threading
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    @Request.application
    def refusing(request):
        return Response('{"error": "no"}', status=status)

    server = make_server("127.0.0.1", 0, refusing, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        (tmp_path / "recorded.json").write_text(json.dumps(transaction(5)))
        assert main(["solana-source", "--replay", str(tmp_path / "recorded.json"), "--sink",
                     f"http://127.0.0.1:{server.server_port}/kades/kades"]) == code
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert f"answered {status} to event" in err
    assert ("unreachable" in err) == (code == exitcodes.UNAVAILABLE)
