"""Many HTTP/1.1 requests in flight at once on one thread: non-blocking sockets and a selector.

The unordered Triggers' deliveries go through here (`kades.broker.dispatcher.LaneReader`):
one thread sends every request and reads every answer, instead of a thread per delivery in
flight, whose hand-offs and wake-ups cost more CPU than the HTTP itself (docs/performance.md,
"Development broker and scale-out", Fifth round). What a request meets is what
`kades.broker.transport` gives the blocking path, to the same rules:
- each address the name resolves to, in turn, until one connects;
- kept-alive connections per destination, reused unless either side said `Connection:
  close`; one idle longer than CHECK_IDLE_AFTER_S is checked before use;
- a reused connection that fails before any byte of its answer is tried once more on a
  new one (the server had closed it, likely its other idle ones too: they are dropped), as
  Go's transport retries;
- one deadline for the whole exchange, connecting included (the Trigger's `timeout`);
- 1xx interim answers skipped; a body by Content-Length, chunked, or up to the close.
An https destination is sent on the blocking pool, on this thread (the development broker
meets https only in tests; TLS on non-blocking sockets is not worth its code here).
Each answer, or an OSError for a network failure or a timeout, goes to the request's
callback, on the thread that calls `poll`.
"""
from __future__ import annotations

import errno
import io
import os
import re
import selectors
import socket
import time
import urllib.parse
from typing import Callable

from kades.broker.http1 import MAX_HEADERS, MAX_LINE, HeadError, read_body, read_headers
from kades.broker.transport import (
    STALE, CHECK_IDLE_AFTER_S, MAX_IDLE_PER_DESTINATION, POOL, Response, request_bytes,
    still_open)

Answered = Callable[[Response | OSError], None]
Destination = tuple[str, str, int]
_NO_BODY = (204, 304)
_READ = 65536
_HEAD_END = re.compile(rb"\r?\n\r?\n")  # the empty line after a head (bare LF lines too, as http1 reads)
_MAX_HEAD = MAX_LINE * (MAX_HEADERS + 1)


class _Connection:
    """A non-blocking socket to one destination, connecting (or connected). Each address the
    name resolves to is tried in turn, as `socket.create_connection` does (localhost may
    resolve to ::1 first for a subscriber listening on 127.0.0.1 only)."""

    def __init__(self, destination: Destination):
        _, host, port = destination
        self.addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        self.host = f"{host}:{port}"
        self.sock: socket.socket | None = None
        self.connected = False
        self.used = time.monotonic()
        self.connect_next()

    def connect_next(self) -> None:
        """Connect to the next address (at once, or under way); OSError when none is left."""
        error: OSError = OSError(f"no address for {self.host}")
        while self.addresses:
            family, kind, proto, _, address = self.addresses.pop(0)
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(address)
            if code in (0, errno.EINPROGRESS):
                self.sock, self.connected = sock, code == 0
                return
            sock.close()
            error = OSError(code, os.strerror(code))
        raise error

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class _Exchange:
    """One request until its whole answer has come, on one connection at a time."""

    def __init__(self, destination: Destination, request: bytes, deadline: float | None,
                 answered: Answered):
        self.destination, self.request, self.deadline = destination, request, deadline
        self.answered = answered
        self.connection: _Connection | None = None
        self.reused = self.retried = False
        self.out = memoryview(b"")
        self.got = bytearray()


def parse_answer(data: bytes | bytearray, *, ended: bool) -> tuple[Response, bool] | None:
    """(the answer, whether the connection must be closed after it) once `data` holds a
    whole one; None while it does not. `ended`: the server closed its side (a body delimited
    by the close is then whole). Raises HeadError or ValueError on a malformed answer and
    EOFError when the connection ended inside it."""
    at = 0
    while True:
        found = _HEAD_END.search(data, at)
        if found is None:
            if len(data) - at > _MAX_HEAD:
                raise HeadError("answer head too long")
            if ended:
                raise EOFError("connection closed inside the head" if len(data) > at else
                               "the server closed the connection before answering")
            return None
        head = io.BytesIO(bytes(data[at:found.end()]))
        line = head.readline(65537)
        version, _, rest = line.decode("latin-1").partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise HeadError(f"not an HTTP/1.x status line: {line[:80]!r}")
        status, answer = int(rest[:3]), read_headers(head)
        at = found.end()
        if status >= 200 or status == 101:
            break  # 1xx interim answers (100, 103) are skipped
    connection = answer.get("connection", "").lower()
    close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    body = bytes(data[at:])
    if status in _NO_BODY:
        return Response(status, answer, b""), close
    if "transfer-encoding" not in answer and "content-length" not in answer:
        return (Response(status, answer, body), True) if ended else None  # up to the close
    if ("chunked" in answer.get("transfer-encoding", "").lower() and not ended
            and not body.endswith((b"\r\n\r\n", b"\n\n"))):
        return None  # a whole chunked body ends with an empty line; a read now would stop short
    try:
        return Response(status, answer, read_body(io.BytesIO(body), answer)), close
    except EOFError:
        if ended:
            raise
        return None


class Exchanges:
    """Requests in flight on one thread: `start` each, then `poll` until they are answered."""

    def __init__(self, max_idle: int = MAX_IDLE_PER_DESTINATION):
        self.max_idle = max_idle
        self._selector = selectors.DefaultSelector()
        self._idle: dict[Destination, list[_Connection]] = {}
        self._flying: set[_Exchange] = set()
        self.opened = 0  # connections made, for tests

    def __len__(self) -> int:
        return len(self._flying)

    def start(self, url: str, headers: dict[str, str], body: bytes, *,
              timeout_s: float | None, answered: Answered) -> None:
        """Send a POST; `answered` gets its whole answer, or an OSError (a network failure,
        a timeout: `timeout_s` for the whole exchange, None for none), from `poll`, or at
        once when it fails at once."""
        split = urllib.parse.urlsplit(url)
        try:
            port = split.port
        except ValueError as error:
            port = error
        if split.scheme not in ("http", "https") or not split.hostname or type(port) is ValueError:
            answered(OSError(f"not an http(s) URL: {url!r}"))
            return
        if split.scheme == "https":  # on the blocking pool, this thread waiting
            try:
                answer = POOL.post(url, headers, body, timeout_s=timeout_s)
            except OSError as error:
                answer = error
            answered(answer)
            return
        destination = (split.scheme, split.hostname, port or 80)
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        try:  # a header outside latin-1 fails here, before a connection is taken
            request = request_bytes(*destination, target, headers, body)
        except UnicodeError as error:
            answered(OSError(f"{type(error).__name__}: {error}"))
            return
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._send(_Exchange(destination, request, deadline, answered))

    def poll(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` (less when a deadline comes first) for answers, and hand
        each whole one (or failure) to its callback."""
        if not self._flying:
            return
        now = time.monotonic()
        deadlines = [e.deadline for e in self._flying if e.deadline is not None]
        wait = max(0.0, min([timeout_s, *(d - now for d in deadlines)]))
        for key, mask in self._selector.select(wait):
            exchange = key.data
            if exchange not in self._flying:
                continue  # finished by an earlier callback of this round
            try:
                answer = self._write(exchange) if mask & selectors.EVENT_WRITE else self._read(exchange)
            except (OSError, ValueError, EOFError) as error:  # HeadError is a ValueError
                self._fail(exchange, error)
                continue
            if answer is not None:
                exchange.answered(answer)  # outside the handling of this exchange's errors
        if deadlines:
            now = time.monotonic()
            for exchange in [e for e in self._flying if e.deadline is not None and e.deadline <= now]:
                self._fail(exchange, TimeoutError("delivery timeout: the answer took longer"))

    def close(self) -> None:
        """Close every connection; what is in flight is left unanswered."""
        for exchange in list(self._flying):
            self._let_go(exchange, keep=False)
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()

    def _send(self, exchange: _Exchange) -> None:
        try:
            connection, exchange.reused = self._take(exchange.destination)
        except OSError as error:
            exchange.answered(OSError(f"{type(error).__name__}: {error}"))
            return
        exchange.connection, exchange.got = connection, bytearray()
        exchange.out = memoryview(exchange.request)
        self._flying.add(exchange)
        self._selector.register(connection.sock, selectors.EVENT_WRITE, exchange)
        if connection.connected:
            try:
                self._write(exchange)  # most requests go at once, before any select
            except OSError as error:
                self._fail(exchange, error)

    def _write(self, exchange: _Exchange) -> None:
        connection = exchange.connection
        if not connection.connected:
            code = connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code and connection.addresses:  # refused there: the name's next address
                self._selector.unregister(connection.sock)
                connection.close()
                connection.connect_next()  # raises when none is left (let go: no socket)
                self._selector.register(connection.sock, selectors.EVENT_WRITE, exchange)
                return
            if code:
                raise OSError(code, os.strerror(code))
            connection.connected = True
        try:
            sent = connection.sock.send(exchange.out)
        except BlockingIOError:
            return
        exchange.out = exchange.out[sent:]
        if not exchange.out:
            self._selector.modify(connection.sock, selectors.EVENT_READ, exchange)

    def _read(self, exchange: _Exchange) -> Response | None:
        """The answer once it is whole (its connection let go), else None."""
        try:
            data = exchange.connection.sock.recv(_READ)
        except BlockingIOError:
            return None
        exchange.got += data
        parsed = parse_answer(exchange.got, ended=not data)
        if parsed is None:
            return None
        answer, close = parsed
        self._let_go(exchange, keep=not close)
        return answer

    def _fail(self, exchange: _Exchange, error: Exception) -> None:
        self._let_go(exchange, keep=False)
        if (isinstance(error, STALE) and exchange.reused and not exchange.retried
                and not exchange.got):
            # The server had closed it before answering: once more, on a new connection,
            # and the destination's other idle ones (likely closed alike) are dropped.
            exchange.retried = True
            for connection in self._idle.pop(exchange.destination, []):
                connection.close()
            self._send(exchange)
            return
        exchange.answered(OSError(f"{type(error).__name__}: {error}"))

    def _let_go(self, exchange: _Exchange, *, keep: bool) -> None:
        connection = exchange.connection
        self._flying.discard(exchange)
        if connection.sock is not None:  # None: closed while trying the next address
            self._selector.unregister(connection.sock)
        idle = self._idle.setdefault(exchange.destination, [])
        if keep and len(idle) < self.max_idle:
            connection.used = time.monotonic()
            idle.append(connection)
        else:
            connection.close()

    def _take(self, destination: Destination) -> tuple[_Connection, bool]:
        idle = self._idle.get(destination)
        while idle:
            connection = idle.pop()
            # Just used: no check (a server closing it meanwhile costs one retry, above).
            if time.monotonic() - connection.used < CHECK_IDLE_AFTER_S or still_open(connection.sock):
                return connection, True
            connection.close()
        self.opened += 1
        return _Connection(destination), False
