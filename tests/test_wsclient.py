"""The tests' WebSocket client (tests/wsclient.py) when the server's answer, a message and its
close come in one read, as a bad key's error does on a loaded machine: the client is made,
closed, with the message to receive (simple_websocket called it a failed connection)."""
from __future__ import annotations

import socket
import threading

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

import wsclient


def serve_once(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    server = WSConnection(ConnectionType.SERVER)
    while True:
        server.receive_data(conn.recv(4096))
        if any(isinstance(event, Request) for event in server.events()):
            break
    conn.sendall(server.send(AcceptConnection()) + server.send(TextMessage(data="bye"))
                 + server.send(CloseConnection(code=1008)))
    conn.close()


def test_an_answer_a_message_and_a_close_in_one_read():
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=serve_once, args=(listener,), daemon=True)
    thread.start()
    ws = wsclient.connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/")
    thread.join(5)
    listener.close()
    assert ws.receive(timeout=1) == "bye"
    assert not ws.connected and ws.close_reason == 1008
