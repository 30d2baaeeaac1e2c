"""What a node (or what stands before it) may answer besides a JSON-RPC result: a refused
API key (HTTP 403), a proxy's HTML page with 200, a JSON body that is no JSON-RPC answer, an
error that is a string, a slot or block of the wrong type. Each is an RpcError naming the
method and what came back (the command exits 1 with it, not with a traceback); a JSON-RPC
error keeps its code, so skipped and not-yet-produced slots are still told apart."""
from __future__ import annotations

import pytest
from nodes import Quiet, serving

from kades import exitcodes
from kades.cli import main
from kades.solana.rpc import RpcError, SolanaRpc


class Answering(Quiet):
    reply: tuple[int, str, bytes] = (200, "application/json", b"{}")

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        status, content_type, body = Answering.reply
        self.answer(body, status=status, content_type=content_type)


@pytest.fixture
def node():
    with serving(Answering) as url:
        yield url


JSON = "application/json"


@pytest.mark.parametrize("answer, code, says", [
    ((403, JSON, b'{"error": "invalid api key"}'), 403, 'getSlot: HTTP 403: {"error": "invalid api key"}'),
    ((200, "text/html", b"<html><body>Just a moment...</body></html>"), 0,
     "getSlot: not a JSON-RPC answer (text/html): <html><body>Just a moment"),
    ((200, JSON, b"[1, 2]"), 0, "not a JSON-RPC answer (application/json): [1, 2]"),
    ((200, JSON, b'{"jsonrpc": "2.0", "id": 1, "error": "overloaded"}'), 0, "overloaded"),
    ((200, JSON, b'{"jsonrpc": "2.0", "id": 1, "error": {"code": -32004, "message": "not yet"}}'),
     -32004, "not yet"),
    ((200, JSON, b'{"jsonrpc": "2.0", "id": 1, "result": "abc"}'), 0, "getSlot answered 'abc', not a slot"),
])
def test_what_is_no_slot_is_an_rpc_error_naming_it(node, answer, code, says):
    Answering.reply = answer
    with pytest.raises(RpcError) as caught:
        SolanaRpc(node).get_slot()
    assert caught.value.code == code and says in str(caught.value)


def test_a_block_of_the_wrong_type_is_an_rpc_error(node):
    Answering.reply = (200, JSON, b'{"jsonrpc": "2.0", "id": 1, "result": [1]}')
    with pytest.raises(RpcError, match=r"getBlock answered \[1\], not a block"):
        SolanaRpc(node).get_block(5)


def test_the_command_exits_1_with_the_answer_not_a_traceback(node, kades_env, redis_conn, capsys):
    Answering.reply = (200, "text/html", b"<html>" + b"x" * 1000 + b"</html>")
    code = main(["solana-source", "--rpc", node, "--stdout", "--start-slot", "5", "--max-slots", "1"])
    assert code == exitcodes.FAILURE
    [line] = capsys.readouterr().err.splitlines()
    assert "not a JSON-RPC answer (text/html): <html>xxx" in line and line.endswith("...")
    assert len(line) < 400  # the page is cut short
