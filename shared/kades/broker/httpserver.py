"""The ingress's HTTP server: threaded, HTTP/1.1 with kept-alive connections, for a WSGI app.

werkzeug's development server (what `make_server` gives) closes every connection after one
answer, so each event posted to the broker cost a TCP connect and a new thread; Knative's
ingress (a Go server) keeps connections alive, and so do the senders' pooled clients. This
server reads each request's body whole before the app sees it (Content-Length, or chunked),
so the next request on the connection starts where it should; a body above `max_body`
bytes is not read: the app is called with its Content-Length alone (the ingress answers 413)
and the connection is closed after the answer. One thread per open connection, as werkzeug's
threaded server; `close` ends the open connections too, so a stopped broker takes nothing
more on a kept-alive connection.
"""
from __future__ import annotations

import io
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDLE_TIMEOUT_S = 75.0  # a kept-alive connection idle this long is closed (Go's usual idle)
MAX_HEADER_LINE = 65536


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kades-broker"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    server: "KeepAliveServer"

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(MAX_HEADER_LINE + 1)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline or self.server.closing:
            self.close_connection = True
            return
        if len(self.raw_requestline) > MAX_HEADER_LINE:
            self.send_error(414)
            return
        if not self.parse_request():  # answered 400 itself
            return
        self._run_app()

    def _body(self) -> tuple[bytes | None, int]:
        """(the body, its length); None when it is larger than the server takes (not read)."""
        limit = self.server.max_body
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, size = [], 0
            while True:
                line = self.rfile.readline(MAX_HEADER_LINE + 1)
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(MAX_HEADER_LINE + 1) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks), size
                size += length
                if size > limit:
                    return None, size
                chunks.append(self.rfile.read(length))
                self.rfile.readline(3)  # the CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            return None, length
        return (self.rfile.read(length) if length else b""), length

    def _run_app(self) -> None:
        try:
            body, length = self._body()
        except (ValueError, OSError):
            self.close_connection = True
            try:
                self.send_error(400, "unreadable request body")
            except OSError:
                pass  # the sender is gone
            return
        if body is None:
            self.close_connection = True  # the rest of the body is still on the wire
        path, _, query = self.path.partition("?")
        environ = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, "latin-1"), "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length if body is None else len(body)),
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0], "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body or b""), "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers
            return lambda data: answer.setdefault("written", []).append(data)

        result = self.server.app(environ, start_response)
        try:
            content = b"".join([*answer.get("written", []), *result])
        finally:
            if hasattr(result, "close"):
                result.close()
        code, _, reason = answer["status"].partition(" ")
        self.send_response_only(int(code), reason)
        names = set()
        for name, value in answer["headers"]:
            names.add(name.lower())
            if name.lower() == "connection" and value.lower() == "close":
                self.close_connection = True
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(content)))
        if self.close_connection and "connection" not in names:
            self.send_header("Connection", "close")
        self.send_header("Date", self.date_time_string())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)
        self.wfile.flush()

    def log_message(self, format, *args) -> None:  # noqa: A002 - no access log line per event
        pass


class KeepAliveServer(ThreadingHTTPServer):
    """`serve_forever` in a thread, `shutdown` then `close` to stop; `server_port` is bound."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int, app, *, max_body: int):
        self.app, self.max_body, self.closing = app, max_body, False
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def process_request(self, request, client_address) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close(self) -> None:
        """Stop serving (after `shutdown`): close the listening socket and every connection."""
        self.closing = True
        self.server_close()
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
