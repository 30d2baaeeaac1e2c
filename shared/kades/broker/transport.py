"""The broker's HTTP client: kept-alive `http.client` connections, pooled per destination.

Every delivery and dead letter of the development broker goes through the one `POOL` of its
process, as Knative's dispatcher sends through one Go `http.Transport`: a connection is taken
from the destination's idle ones (or opened), used for one request, and given back unless
either side said `Connection: close`. No cookies are kept, no redirects followed, no proxy
used (the broker sends to local addresses), as Knative's dispatcher does.

Why not the process's httpx client (`kades.clients.http_client`, used for the other outgoing
calls): a broker delivery is the broker's whole job and httpx's layers (request and response
models, header normalisation, the transport and pool classes of httpcore) cost about as much
CPU as the rest of a delivery; `http.client` on a kept-alive socket is the same HTTP/1.1
exchange at a fraction of it (docs/performance.md, "Development broker and scale-out").

A kept-alive connection the server has closed meanwhile (gunicorn drops idle ones after 2 s)
is noticed before use when the socket already reads as closed, and otherwise retried once on
a fresh connection when it fails before any answer came, as Go's transport retries a request
on a reused connection the server had closed. A delivery may thereby arrive twice: allowed,
as on a cluster (at-least-once).
"""
from __future__ import annotations

import http.client
import select
import threading
import urllib.parse
from dataclasses import dataclass

MAX_IDLE_PER_DESTINATION = 64  # more than a Trigger's workers: each keeps its connection
# Failures of a kept-alive connection the server closed before answering: retried once.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
          ConnectionAbortedError)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class ConnectionPool:
    """Idle keep-alive connections per (scheme, host, port); safe to share between threads."""

    def __init__(self, max_idle: int = MAX_IDLE_PER_DESTINATION):
        self.max_idle = max_idle
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
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
        for attempt in (1, 2):
            connection, reused = self._take(destination, timeout_s)
            try:
                connection.request("POST", target, body=body, headers=headers)
                answer = connection.getresponse()
                content = answer.read()
            except _STALE as error:
                connection.close()
                if reused and attempt == 1:
                    continue  # the server had closed it: once more on a new connection
                raise OSError(f"{type(error).__name__}: {error}") from error
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                raise OSError(f"{type(error).__name__}: {error}") from error
            if answer.will_close:
                connection.close()
            else:
                self._give(destination, connection)
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()},
                            content)
        raise AssertionError("unreachable")

    def _take(self, destination: tuple[str, str, int],
              timeout_s: float | None) -> tuple[http.client.HTTPConnection, bool]:
        while True:
            with self._lock:
                idle = self._idle.get(destination)
                connection = idle.pop() if idle else None
            if connection is None:
                break
            if _still_open(connection):
                connection.sock.settimeout(timeout_s)
                return connection, True
            connection.close()
        scheme, host, port = destination
        kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        with self._lock:
            self.opened += 1
        return kind(host, port, timeout=timeout_s), False

    def _give(self, destination: tuple[str, str, int],
              connection: http.client.HTTPConnection) -> None:
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


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """An idle connection that reads as ready has been closed by the server (or sent
    something unasked): either way it cannot carry a request."""
    if connection.sock is None:
        return False
    try:
        readable, _, _ = select.select([connection.sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


POOL = ConnectionPool()
