"""The ingress's HTTP server: threaded, HTTP/1.1 with kept-alive connections, for a WSGI app.

werkzeug's development server (what `make_server` gives) closes every connection after one
answer, so each event posted to the broker cost a TCP connect and a new thread; Knative's
ingress (a Go server) keeps connections alive, and so do the senders' pooled clients. This
server reads each request's body whole before the app sees it (Content-Length, or chunked),
so the next request on the connection starts where it should; a body above `max_body`
bytes is not read: the app is called with its Content-Length alone (the ingress answers 413)
and the connection is closed after the answer. One thread per open connection, as werkzeug's
threaded server; `close` ends the open connections too, so a stopped broker takes nothing
more on a kept-alive connection. Heads are read by `http1`, not by `http.server`'s parser
(the `email` package), which cost more than the rest of the request line's handling.
"""
from __future__ import annotations

import http
import io
import json
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kades.broker.http1 import MAX_LINE as MAX_HEADER_LINE, HeadError, read_body, read_headers
from kades.errors import PROBLEM_JSON, Problem, error_body

IDLE_TIMEOUT_S = 75.0  # a kept-alive connection idle this long is closed (Go's usual idle)
_date = (0, "")  # (epoch second, its Date header), shared by the handler threads


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
        if not self._parse_head():  # answered 400 itself
            return
        self._run_app()

    def _parse_head(self) -> bool:
        """The request line and headers (`self.fields`, lower-case names); False once it
        has answered 400 (or the connection ended)."""
        self.command, self.request_version = None, "HTTP/1.1"  # for send_error meanwhile
        self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:  # an empty line before a request is ignored (RFC 9112 §2.2)
            return False
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(400, f"bad request line {self.requestline[:80]!r}")
            return False
        self.command, self.path, self.request_version = words
        try:
            self.fields = read_headers(self.rfile)
        except EOFError:
            self.close_connection = True
            return False
        except HeadError as error:
            self.send_error(400, str(error))
            return False
        connection = self.fields.get("connection", "").lower()
        self.close_connection = "close" in connection or (
            self.request_version == "HTTP/1.0" and "keep-alive" not in connection)
        if self.fields.get("expect", "").lower() == "100-continue":
            self.send_response_only(100)
            self.end_headers()
        return True

    def _body(self) -> tuple[bytes | None, int]:
        """(the body, its length); None when it is larger than the server takes (not read)."""
        limit = self.server.max_body
        body = read_body(self.rfile, self.fields, limit)
        if body is None:
            return None, int(self.fields.get("content-length") or limit + 1)
        return body, len(body)

    def _run_app(self) -> None:
        try:
            body, length = self._body()
        except (ValueError, OSError, EOFError):
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
            "CONTENT_TYPE": self.fields.get("content-type", ""),
            "CONTENT_LENGTH": str(length if body is None else len(body)),
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0], "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body or b""), "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        for name, value in self.fields.items():  # a repeated header is joined already
            if "_" in name:  # else ce_id would pass for ce-id, which Knative's ingress ignores
                continue
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = value
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

    def date_time_string(self, timestamp=None) -> str:
        """The Date header, made once a second (formatting it was 2 % of the broker's CPU)."""
        global _date
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        if _date[0] != second:
            _date = (second, super().date_time_string(second))
        return _date[1]

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the server answers itself (a request it cannot read) is an RFC 9457 problem
        too, and ends the connection (the rest of that request is not understood)."""
        status = http.HTTPStatus(code)
        detail = message or status.phrase
        body = json.dumps(error_body(status.phrase.lower().replace(" ", "_").replace("-", "_"),
                                     detail, [Problem("request", explain or detail)],
                                     status=code)).encode()
        self.close_connection = True
        self.send_response_only(code, status.phrase)
        self.send_header("Content-Type", PROBLEM_JSON)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.send_header("Date", self.date_time_string())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

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
