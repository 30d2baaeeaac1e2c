"""The HTTP client webhook deliveries go through: it connects only to the address it checked,
and gives each attempt one deadline for the whole exchange.

Checked where it connects: the name is resolved once, every address is judged
(destinations.is_public) and the connection goes to one of those addresses. A check before the
request resolved the name, and the client resolved it again to connect: a name answering a
public address first and 127.0.0.1 next (DNS rebinding, TTL 0) reached the cluster's own
services. TLS still names the host (SNI and certificate), as the request's URL does.

One deadline per attempt: httpx's timeout bounds each read alone, so a receiver answering a
byte every 2 s held its attempt, and the round behind it, for as long as it liked. Every
read and write of the attempt's connection is given what is left of `deadline(seconds)`, and
so is the name's resolution: getaddrinfo takes no timeout, and a name server answering
slowly (anyone may run the one of a webhook's name) held the attempt for as long as it took.
It runs on a thread of its own (MAX_LOOKUPS at most), waited for until the deadline.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Iterator

import httpcore
import httpx

from kades.alerts.destinations import is_public

_local = threading.local()  # the deadline of the attempt this thread is making


class RefusedAddress(httpcore.ConnectError):
    """The host resolves to an address a webhook may not reach."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every read and write of the requests made in this block, together."""
    _local.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = None


def _left(timeout: float | None) -> float | None:
    """The timeout of one read or write: the smaller of its own and what the deadline
    leaves; raises once the deadline has passed."""
    end = getattr(_local, "deadline", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the attempt's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


# Name lookups under way at once, per process: a lookup the attempt stopped waiting for runs
# on until the system's resolver gives up, on a thread of its own (a pool of 16 threads was
# filled by 16 slow names, and every other webhook's lookup then waited behind them); one per
# host and port at a time (an attempt finds a lookup of its name under way and waits for it);
# past MAX_LOOKUPS an attempt fails at once and is retried.
MAX_LOOKUPS = 64
_lookups: dict[tuple[int, str, int], Future] = {}  # (pid, host, port): a fork's are not its own
_lookups_lock = threading.Lock()


def _resolve(host: str, port: int, timeout: float | None) -> list:
    """getaddrinfo's answer for `host`, waited for `timeout` s at most (None: as long as it
    takes)."""
    key = (os.getpid(), host, port)
    with _lookups_lock:
        lookup = _lookups.get(key)
        if lookup is None:
            if sum(1 for pid, _, _ in _lookups if pid == key[0]) >= MAX_LOOKUPS:
                raise httpcore.ConnectError(f"{host}: {MAX_LOOKUPS} name lookups under way")
            lookup = _lookups[key] = Future()
            threading.Thread(target=_look_up, args=(key, lookup), name="webhook-dns",
                             daemon=True).start()
    try:
        return lookup.result(timeout=timeout)
    except FutureTimeout:
        raise httpcore.ConnectTimeout(f"{host}: no address within the attempt's deadline") from None
    except (socket.gaierror, UnicodeError) as error:
        raise httpcore.ConnectError(f"{host}: {error}") from error


def _look_up(key: tuple[int, str, int], lookup: Future) -> None:
    try:
        answer, error = socket.getaddrinfo(key[1], key[2], type=socket.SOCK_STREAM), None
    except BaseException as failure:  # noqa: BLE001 -- handed to the waiting attempt(s)
        answer, error = None, failure
    with _lookups_lock:  # gone before it is answered: a later attempt asks afresh
        _lookups.pop(key, None)
    if error is None:
        lookup.set_result(answer)
    else:
        lookup.set_exception(error)


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, allow_private: bool):
        self._backend, self._allow_private = httpcore.SyncBackend(), allow_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options=None) -> httpcore.NetworkStream:
        infos = _resolve(host, port, _left(timeout))
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if not self._allow_private:
            private = [a for a in addresses if not is_public(a)]
            if private:
                raise RefusedAddress(f"refused: {host} resolves to a non-public address "
                                     f"({', '.join(sorted(private))})")
        failed: httpcore.ConnectError | None = None
        for address in addresses:  # as a name's connect tries each of its addresses
            try:
                return _DeadlineStream(self._backend.connect_tcp(
                    address, port, _left(timeout), local_address, socket_options))
            except httpcore.ConnectError as error:
                failed = error
        raise failed or httpcore.ConnectError(f"{host}: no address")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def webhook_client(*, allow_private: bool = False) -> httpx.Client:
    """A client whose connections go only to checked addresses, each attempt's exchange
    bounded by `deadline`; no redirects followed, no proxy taken from the environment."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx builds its httpcore pool without a way to name the network backend: the same
    # pool, with ours (httpx and httpcore versions are pinned in requirements/*.lock)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), max_connections=100,
        max_keepalive_connections=20, keepalive_expiry=5.0,
        network_backend=_GuardedBackend(allow_private))
    return httpx.Client(transport=transport, trust_env=False, follow_redirects=False)
