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
    """Also when the server closes in the same read as its answer (a bad key: the error, then
    the close): the close is handled with the handshake, and simple_websocket would then call
    the connection failed ("Connection error: None", seen under load) though its messages
    are in the buffer. Such a client is made closed, its messages still to be received."""

    def __init__(self, *args, **kwargs):
        self._closed_in_handshake = False
        try:
            super().__init__(*args, **kwargs)
        except simple_websocket.ConnectionError:
            if not self._closed_in_handshake:
                raise

    def handshake(self):
        super().handshake()
        self._handle_events()  # what came with the handshake's answer
        self._closed_in_handshake = not self.connected


def connect(url: str) -> Client:
    return Client.connect(url, thread_class=_DaemonThread)
