"""Recordings as they come, and the odd transaction a node may serve: one transaction that
cannot be read is left out and named (with its file) and the rest goes on, in a replay and in
the RPC poller (which would otherwise stop on the same slot after every restart); an RPC error
or a block recorded without its transactions is refused with what to record instead; JSON
lines are read as an array is; a signature recorded twice is read once."""
from __future__ import annotations

import json
import logging

from test_source_cli import transaction

from kades import exitcodes
from kades.cli import main
from kades.events.envelope import from_structured
from kades.keys import SOLANA_LAST_SLOT
from kades.solana.poll import follow


def odd(slot: int) -> dict:
    """A transaction whose instruction names a program past its account keys."""
    tx = transaction(slot)
    tx["transaction"]["signatures"] = [f"odd{slot}"]
    tx["transaction"]["message"]["instructions"] = [{"programIdIndex": 9, "accounts": [], "data": ""}]
    return tx


def replay(tmp_path, capsys, document, *, name="recorded.json", text=None) -> tuple[int, list, str]:
    path = tmp_path / name
    path.write_text(text if text is not None else json.dumps(document))
    code = main(["solana-source", "--replay", str(path), "--stdout"])
    out, err = capsys.readouterr()
    return code, [from_structured(json.loads(line)) for line in out.splitlines()], err


def test_an_unreadable_transaction_is_left_out_named_and_counted(tmp_path, capsys):
    bad_time = transaction(7) | {"blockTime": "yesterday"}
    code, events, err = replay(tmp_path, capsys, [transaction(5), odd(5), bad_time, transaction(8)])
    assert code == exitcodes.OK
    assert [e.data["slot"] for e in events] == [5, 8]
    assert events[0].data["stats"] | {"skipped_programs": {}} == {
        "transactions": 1, "failed": 0, "unreadable": 1, "skipped_programs": {}}
    left_out = [line for line in err.splitlines() if line.startswith("left out")]
    assert len(left_out) == 2, err
    assert "recorded.json: odd5: IndexError" in left_out[0]
    assert "sig7: MalformedTransaction: blockTime is not a Unix time" in left_out[1]


def test_a_recording_with_nothing_readable_fails_with_the_reason(tmp_path, capsys):
    compressed = transaction(5) | {"transaction": ["KLUv/QBYAQAA", "base64+zstd"]}
    code, events, err = replay(tmp_path, capsys, [compressed])
    assert code == exitcodes.FAILURE and not events
    assert "no transaction could be read" in err and "'base64+zstd' encoding: record it" in err


def test_rpc_errors_skipped_slots_and_blocks_without_transactions(tmp_path, capsys):
    skipped = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32007, "message": "Slot 6 was skipped"}}
    code, events, _ = replay(tmp_path, capsys, [{"jsonrpc": "2.0", "result": transaction(5)}, skipped])
    assert code == exitcodes.OK and [e.data["slot"] for e in events] == [5]
    refused = {"jsonrpc": "2.0", "id": 2, "error": {"code": -32602, "message": "Invalid params"}}
    code, _, err = replay(tmp_path, capsys, [refused])
    assert code == exitcodes.FAILURE and "an RPC error was recorded" in err and "-32602" in err
    signatures_only = {"blockhash": "h", "parentSlot": 4, "blockTime": 1, "signatures": ["sig5"]}
    code, _, err = replay(tmp_path, capsys, signatures_only)
    assert code == exitcodes.FAILURE and 'transactionDetails "full"' in err


def test_json_lines_read_as_an_array_and_a_signature_twice_read_once(tmp_path, capsys):
    document = [transaction(5), transaction(7)]
    _, as_array, _ = replay(tmp_path, capsys, document)
    lines = "\n".join(json.dumps(tx) for tx in [*document, transaction(5)]) + "\n\n"
    code, as_lines, err = replay(tmp_path, capsys, None, name="recorded.jsonl.json", text=lines)
    assert code == exitcodes.OK and as_lines == as_array
    assert as_lines[0].data["stats"]["transactions"] == 1
    assert "read once, recorded again: 1 transactions" in err
    code, _, err = replay(tmp_path, capsys, None, text=json.dumps(transaction(5)) + "\n{oops\n")
    assert code == exitcodes.FAILURE and "line 2:" in err


class RecordedNode:
    """Serves one block per slot, as SolanaRpc does (tests/solana/test_rpc_polling.py runs the
    poller against a JSON-RPC server; this needs no recorded material)."""

    def __init__(self, blocks: dict[int, dict]):
        self.blocks = blocks

    def get_slot(self) -> int:
        return max(self.blocks)

    def get_block(self, slot: int) -> dict | None:
        return self.blocks.get(slot)


def test_a_block_the_node_answers_unreadably_is_asked_again_then_left_out(redis_conn, caplog):
    """`transactions: null` escaped the poller with a traceback, and every restart met the
    same slot: the feed stopped for good. Asked again (a passing fault cures), then left out,
    said, and the feed goes on; the next slot's links say nothing of the one left out."""
    from kades.solana.poll import MALFORMED_ATTEMPTS
    good = {"blockhash": "h", "parentSlot": 40, "blockTime": 1_700_000_000,
            "transactions": [transaction(42)]}
    asked = []

    class Flaky(RecordedNode):
        def get_block(self, slot):
            asked.append(slot)
            if slot == 41:
                return {"blockhash": "h", "parentSlot": 40, "blockTime": 1, "transactions": None,
                        "slot": 41}
            return super().get_block(slot)
    sent = []
    with caplog.at_level(logging.ERROR, logger="kades.solana.source"):
        handled = follow(Flaky({41: None, 42: {**good, "slot": 42}}), sent.append,
                         start_slot=41, max_slots=2, store=redis_conn, sleep=lambda s: None)
    assert handled == 2 and asked.count(41) == MALFORMED_ATTEMPTS
    assert [e.data["slot"] for e in sent] == [42] and sent[0].data["previous_slot"] is None
    assert int(redis_conn.get(SOLANA_LAST_SLOT)) == 42
    assert any(r.getMessage().endswith("the slot left out") for r in caplog.records)


def test_a_rate_limit_recorded_under_the_skipped_slot_code_is_no_empty_slot(tmp_path, capsys):
    """QuickNode answers its rate limit as -32007, the skipped-slot code: recorded, it was
    replayed as a slot without a block, exit 0, nothing sent and nothing said."""
    limited = {"jsonrpc": "2.0", "id": 1,
               "error": {"code": -32007, "message": "50/second request limit reached"}}
    code, events, err = replay(tmp_path, capsys, [limited])
    assert code == exitcodes.FAILURE and not events
    assert "an RPC error was recorded" in err and "request limit" in err


def test_a_block_recorded_without_its_slot_is_replayed_and_the_guess_said(tmp_path, capsys):
    """getBlock's answer names no slot: `parentSlot + 1` is wrong after a skipped slot, so
    the events' slot and ids differ from the --rpc source's. Said, not silent."""
    tx = transaction(41)
    del tx["slot"], tx["blockTime"]
    block = {"blockhash": "h", "parentSlot": 40, "blockTime": 1_700_000_000, "transactions": [tx]}
    code, events, err = replay(tmp_path, capsys, {"jsonrpc": "2.0", "result": block})
    assert code == exitcodes.OK and [e.data["slot"] for e in events] == [41]
    assert "1 getBlock results record no slot" in err
    code, events, err = replay(tmp_path, capsys, {"jsonrpc": "2.0", "result": {**block, "slot": 43}})
    assert [e.data["slot"] for e in events] == [43] and "record no slot" not in err


def test_the_poller_leaves_an_unreadable_transaction_out_and_carries_on(redis_conn, caplog):
    block = {"blockhash": "h", "parentSlot": 40, "blockTime": 1_700_000_000,
             "transactions": [odd(41), transaction(41)]}
    for tx in block["transactions"]:
        del tx["slot"], tx["blockTime"]
    sent = []
    with caplog.at_level(logging.WARNING, logger="kades.solana.source"):
        handled = follow(RecordedNode({41: {**block, "slot": 41}, 42: None}), sent.append,
                         start_slot=41, max_slots=2, store=redis_conn, sleep=lambda s: None)
    assert handled == 2 and [e.data["slot"] for e in sent] == [41]
    assert sent[0].data["stats"]["transactions"] == 1 and sent[0].data["stats"]["unreadable"] == 1
    assert int(redis_conn.get(SOLANA_LAST_SLOT)) == 42
    [warning] = [r for r in caplog.records if r.getMessage().endswith("left out, unreadable")]
    assert warning.fields["slot"] == 41 and warning.fields["reason"].startswith("odd41: IndexError")
