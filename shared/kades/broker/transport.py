"""The broker's HTTP client: kept-alive HTTP/1.1 connections, pooled per destination.

Every delivery and dead letter of the development broker goes through the one `POOL` of its
process, as Knative's dispatcher sends through one Go `http.Transport`: a connection is taken
from the destination's idle ones (or opened), used for one request, and given back unless
either side said `Connection: close`. No cookies are kept, no redirects followed, no proxy
used (the broker sends to local addresses), as Knative's dispatcher does.

Why not the process's httpx client (`kades.clients.http_client`, used for the other outgoing
calls): a broker delivery is the broker's whole job and httpx's layers (request and response
models, header normalisation, the transport and pool classes of httpcore) cost about as much
CPU as the rest of a delivery. Nor `http.client`: it parses each answer's head with the
`email` package and writes a request in many small calls. Here a request is one write and
an answer's head is read by `http1` (docs/performance.md, "Development broker and scale-out").

A kept-alive connection the server has closed meanwhile (a function keeps an idle one 120 s,
kades.runtime.serve.KEEPALIVE_S; a subscriber elsewhere may close it sooner)
is noticed before use when it was idle a while and its socket already reads as closed, and
otherwise retried once on a fresh connection when it fails before any answer came, as Go's
transport retries a request on a reused connection the server had closed. A delivery may
thereby arrive twice: allowed, as on a cluster (at-least-once).
"""
from __future__ import annotations

import io
import select
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass

from kades.broker.http1 import HeadError, read_body, read_headers

MAX_IDLE_PER_DESTINATION = 64  # more than a Trigger's workers: each keeps its connection
CHECK_IDLE_AFTER_S = 1.0  # a connection idle longer is checked before use (one select call)
# Failures of a kept-alive connection the server closed before answering: retried once.
STALE = (EOFError, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
_NO_BODY = (204, 304)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def request_bytes(scheme: str, host: str, port: int, target: str, headers: dict[str, str],
                  body: bytes) -> bytes:
    """A POST as one write: the head (Host without a scheme's own port), then the body.
    UnicodeEncodeError for a header value outside latin-1."""
    authority = host if port == (443 if scheme == "https" else 80) else f"{host}:{port}"
    head = [f"POST {target} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {len(body)}\r\n"]
    head += [f"{name}: {value}\r\n" for name, value in headers.items()
             if name.lower() not in ("host", "content-length")]
    head.append("\r\n")
    return "".join(head).encode("latin-1") + body


def still_open(sock: socket.socket) -> bool:
    """An idle connection that reads as ready has been closed by the server (or sent
    something unasked): either way it cannot carry a request."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class _DeadlineIO(socket.SocketIO):
    """A socket's reads, each given what is left of the answer's deadline (when one is set):
    the socket's own timeout bounds each read alone, and a server trickling its answer a
    byte at a time was read for as long as it took, where Knative's dispatcher gives the
    whole exchange one deadline (the Trigger's `timeout`)."""

    deadline: float | None = None

    def readinto(self, buffer) -> int | None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("delivery timeout: the answer took longer")
            self._sock.settimeout(left)
        return super().readinto(buffer)


class Connection:
    """One HTTP/1.1 connection: a request is one write, the answer is read whole."""

    def __init__(self, scheme: str, host: str, port: int, timeout_s: float | None):
        sock = socket.create_connection((host, port), timeout=timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self.raw = _DeadlineIO(sock, "rb")
        self.sock, self.reader, self.timeout_s = sock, io.BufferedReader(self.raw), timeout_s
        self.destination = (scheme, host, port)
        self.used = time.monotonic()

    def exchange(self, target: str, headers: dict[str, str], body: bytes,
                 deadline: float | None = None) -> tuple[Response, bool]:
        """(the answer, whether the connection must be closed after it); `deadline`
        (monotonic): when the whole answer must have come."""
        self.raw.deadline = deadline
        try:
            return self._exchange(target, headers, body)
        finally:
            if deadline is not None:
                self.raw.deadline = None
                self.sock.settimeout(self.timeout_s)

    def _exchange(self, target: str, headers: dict[str, str], body: bytes
                  ) -> tuple[Response, bool]:
        self.sock.sendall(request_bytes(*self.destination, target, headers, body))
        while True:
            line = self.reader.readline(65537)
            if not line:
                raise EOFError("the server closed the connection before answering")
            version, _, rest = line.decode("latin-1").partition(" ")
            if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
                raise HeadError(f"not an HTTP/1.x status line: {line[:80]!r}")
            status, answer = int(rest[:3]), read_headers(self.reader)
            if status >= 200 or status == 101:
                break  # 1xx interim answers (100, 103) are skipped
        connection = answer.get("connection", "").lower()
        close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        if status in _NO_BODY:
            content = b""
        elif "transfer-encoding" in answer or "content-length" in answer:
            content = read_body(self.reader, answer)
        else:  # delimited by the end of the connection
            content, close = self.reader.read(), True
        self.used = time.monotonic()
        return Response(status, answer, content), close

    def still_open(self) -> bool:
        return still_open(self.sock)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class ConnectionPool:
    """Idle keep-alive connections per (scheme, host, port); safe to share between threads."""

    def __init__(self, max_idle: int = MAX_IDLE_PER_DESTINATION):
        self.max_idle = max_idle
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._lock = threading.Lock()
        self.opened = 0  # connections made, for tests and the bench

    def post(self, url: str, headers: dict[str, str], body: bytes, *,
             timeout_s: float | None) -> Response:
        """POST and read the whole answer; OSError (incl. timeouts) on network errors.
        `timeout_s` None: no limit (Knative without a delivery timeout)."""
        split = urllib.parse.urlsplit(url)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise OSError(f"not an http(s) URL: {url!r}")
        destination = (split.scheme, split.hostname,
                       split.port or (443 if split.scheme == "https" else 80))
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for attempt in (1, 2):
            connection = None
            try:
                connection, reused = self._take(destination, timeout_s, fresh=attempt == 2)
                answer, close = connection.exchange(target, headers, body, deadline)
            except STALE as error:
                if connection is not None:
                    connection.close()
                if connection is not None and reused and attempt == 1:
                    continue  # the server had closed it: once more, on a new connection
                raise OSError(f"{type(error).__name__}: {error}") from error
            except (OSError, ValueError) as error:  # HeadError is a ValueError
                if connection is not None:
                    connection.close()
                raise OSError(f"{type(error).__name__}: {error}") from error
            if close:
                connection.close()
            else:
                self._give(destination, connection)
            return answer
        raise AssertionError("unreachable")

    def _take(self, destination: tuple[str, str, int], timeout_s: float | None, *,
              fresh: bool = False) -> tuple[Connection, bool]:
        """An idle connection to `destination`, else a new one; `fresh`: a new one, the idle
        ones dropped (the server closed one unasked: a restart closes them all)."""
        if fresh:
            with self._lock:
                dropped = self._idle.pop(destination, [])
            for connection in dropped:
                connection.close()
        while True:
            with self._lock:
                idle = self._idle.get(destination)
                connection = idle.pop() if idle else None
            if connection is None:
                break
            # Just used: no check (a server closing it meanwhile costs one retry, below).
            if time.monotonic() - connection.used < CHECK_IDLE_AFTER_S or connection.still_open():
                if connection.timeout_s != timeout_s:  # a system call: only when it changes
                    connection.sock.settimeout(timeout_s)
                    connection.timeout_s = timeout_s
                return connection, True
            connection.close()
        with self._lock:
            self.opened += 1
        return Connection(*destination, timeout_s), False

    def _give(self, destination: tuple[str, str, int], connection: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(destination, [])
            if len(idle) < self.max_idle:
                idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            connections = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for connection in connections:
            connection.close()


POOL = ConnectionPool()
