"""Stand-ins for a Solana node (never for Redis or PostgreSQL, which the tests run for real):
an HTTP server on a free port serving a handler class, and the one way the handlers answer."""
from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class Quiet(BaseHTTPRequestHandler):
    def answer(self, body: bytes = b"", *, status: int = 200,
               content_type: str = "application/json", headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            for name, value in {"content-type": content_type, **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped waiting (the time-limit tests)

    def log_message(self, *args):  # keep test output clean
        pass


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """The URL of `handler` served on 127.0.0.1 until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
