"""The WebSocket client the tests and benchmarks speak to the api with.

simple_websocket 1.1's Client reads the server's handshake answer and takes only its first
event: a message the server sent right behind it (the api's welcome, or its error for a bad
key), when both arrive in one read, stays in the parser's buffer until more bytes come,
which is the server's ping 25 s later. A loaded machine makes that likely (CI saw "no welcome
within 5 s"). This client hands those messages on at once. Browsers have no such fault: the
server is not at issue.

Its reader thread is a daemon: a test that fails before closing its client must not keep
pytest from exiting (simple_websocket's non-daemon thread did, and the suite hung)."""
from __future__ import annotations

import threading

import simple_websocket


class _DaemonThread(threading.Thread):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, daemon=True, **kwargs)


class Client(simple_websocket.Client):
    def handshake(self):
        super().handshake()
        self._handle_events()  # what came with the handshake's answer


def connect(url: str) -> Client:
    return Client.connect(url, thread_class=_DaemonThread)
