"""The RPC client rides the process's pooled HTTP client (kades.clients.http_client): clients
made for one node share its kept-alive connection, and each keeps its own time limit."""
from __future__ import annotations

import json
import time

import pytest
from nodes import Quiet, serving

from kades.errors import TemporaryFailure
from kades.solana.rpc import SolanaRpc


class Node(Quiet):
    protocol_version = "HTTP/1.1"  # keeps connections alive, as RPC endpoints do
    delay_s = 0.0
    peers: set = set()

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["content-length"])))
        Node.peers.add(self.client_address)
        time.sleep(Node.delay_s)
        self.answer(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": 7}).encode())


@pytest.fixture
def node():
    Node.delay_s, Node.peers = 0.0, set()
    with serving(Node) as url:
        yield url


def test_clients_of_one_node_share_one_kept_alive_connection(node):
    for _ in range(2):  # a client of its own each would open a connection each
        rpc = SolanaRpc(node)
        assert [rpc.get_slot(), rpc.get_slot()] == [7, 7]
    assert len(Node.peers) == 1


def test_each_request_keeps_the_clients_own_time_limit(node):
    Node.delay_s = 1.0  # answers, but later than this client waits (the pool's default: 10 s)
    rpc = SolanaRpc(node, timeout_s=0.2, max_attempts=1)
    with pytest.raises(TemporaryFailure, match="ReadTimeout"):
        rpc.get_slot()
