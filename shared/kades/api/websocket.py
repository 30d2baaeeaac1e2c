"""WebSocket /v1/ws: alerts live, with replay of what a reconnecting client missed.

Library: simple-websocket (what flask-sock is built on). functions-framework serves WSGI
through gunicorn's gthread worker; simple-websocket takes over the raw socket gunicorn
exposes (`gunicorn.socket`; werkzeug's under the test server), needs no async worker, no
eventlet/gevent monkey patching, and speaks RFC 6455 with pings. Each connection holds one
gunicorn thread (containerConcurrency bounds its connections per replica; docs/api.md) and
a reader thread that blocks on the socket, so an idle connection costs no CPU.

Fan-out: one reader thread per process follows the Redis alert stream (kades.alerts.stream)
and hands each alert to the queue of every local connection, so any replica serves any
client. A client that reconnects with `last_id` (the `id` of the last alert it got) is first
sent what it missed, up to 5 minutes back; ids already sent are never sent twice. A client
that reads slower than alerts come is closed (1013) once MAX_BACKLOG alerts wait for it or a
send blocks SEND_TIMEOUT_S, and reconnects with `last_id`: its backlog is bounded.

Protocol (JSON text frames, `{type, data, timestamp}`): client sends `subscribe` /
`unsubscribe` with `channels` (and optionally `tokens`), `ping`; server sends `welcome`,
`subscribed`, `unsubscribed`, `alert` (with `id`), `pong`, `error` with a code:
1001 authentication failed, 1002 invalid subscription, 1003 rate limit exceeded,
1004 invalid message format, 1005 server error, 1006 too slow (reconnect with `last_id`).
"""
from __future__ import annotations

import base64
import contextlib
import logging
import queue
import socket
import threading
import time
import uuid

import flask
import redis
import simple_websocket
from werkzeug.datastructures import Headers
from werkzeug.routing import Rule

from kades import clients
from kades.alerts import stream
from kades.api import auth
from kades.api.wsprotocol import (AUTH_FAILED, CHANNELS, CONNECTION_STALE_S, MAX_BACKLOG,
                                  MAX_CONNECTIONS_PER_KEY, MAX_MESSAGE_BYTES,
                                  MAX_MESSAGES_PER_MIN, PING_INTERVAL_S, RATE_LIMITED,
                                  SEND_TIMEOUT_S, SERVER_ERROR, TOO_SLOW, Session, later_id,
                                  message)
from kades.errors import Problem
from kades.keys import WS_CONNECTIONS
from kades.logs import log
from kades.metrics import WEBSOCKET_ALERTS_SENT, WEBSOCKET_CONNECTIONS, WEBSOCKET_SLOW_CLOSED
from kades.runtime.endpoint import error_response
from kades.runtime.function import Context

logger = logging.getLogger("kades.api.ws")
# A connection's inbox holds (stream entry id, alert) from the hub and (CLIENT, message)
# from its reader thread; entry ids look like "1764151200000-0", never like this.
CLIENT = "client"
READER_POLL_S = 1.0  # how long a reader waits for the client before it looks again
# Alerts the hub reads from the stream at once: well under MAX_BACKLOG, so that catching up
# after an outage (a full read) does not overflow every connection with one alert queued.
HUB_READ = MAX_BACKLOG // 10
# While it catches up (its last read was a whole HUB_READ), how long the hub waits at most
# before the next read for every connection to have room for it. Reading back to back, faster
# than any socket drains, it overflowed clients that kept up (a CI run's did): a backlog now
# goes at their pace, at least HUB_READ alerts a ROOM_WAIT_S, and a client slower than that is
# still closed. Live reads, smaller, never wait: one slow client holds nobody's alerts back.
ROOM_WAIT_S = 1.0
REPLAY_PAGE = 1000   # stream entries read at once while replaying
AUTH_RECHECK_S = 10.0  # with auth.CACHE_S: a revoked key or an expired token loses its socket within 40 s


class Inbox(queue.Queue):
    """A connection's queue. The hub stops filling one that holds MAX_BACKLOG entries (its
    client reads slower than alerts come) and marks it `overflowed`. `resume_id`: the stream
    id after which its client has missed nothing (the hub's position when it joined, then
    each entry its conversation took)."""

    def __init__(self):
        super().__init__()
        self.overflowed = False
        self.resume_id: str | None = None


class Hub:
    """Follows the alert stream and hands every alert to every local connection's queue.

    It follows the stream from its newest entry as of the first connection's joining, read
    before that connection is welcomed. Were that left to the thread's first run, a replica's
    first client could subscribe before it (a loaded process, a cluster client still
    learning its slots) and miss an alert published meanwhile: a CI run did. Redis away
    then fails that join (the client is told, the next connection tries again) rather than
    leave the thread to take it later, after clients subscribed. Made with no Redis call:
    `ctx.local` makes it under the Context's lock, which every request's key check and rate
    limit wait for, and a call in an outage takes seconds (a cluster client's retries, more)."""

    def __init__(self, ctx: Context):
        self._ctx = ctx
        self._lock = threading.Lock()
        self._queues: set[Inbox] = set()
        self._start_id: str | None = None
        self._position: str | None = None  # the last stream id handed to the inboxes
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()  # a process's hub runs as long as it; tests stop theirs

    def stop(self) -> None:
        """Let the thread end (within the stream read's block, a second)."""
        self._stopped.set()

    def join(self, inbox: Inbox) -> None:
        with self._lock:
            if self._thread is None:  # the first connection: raises while Redis is away
                self._start_id = self._position = stream.last_id(self._ctx.redis)
                self._thread = threading.Thread(target=self._run, name="ws-hub", daemon=True)
                self._thread.start()
            inbox.resume_id = self._position
            self._queues.add(inbox)

    def leave(self, inbox: Inbox) -> None:
        with self._lock:
            self._queues.discard(inbox)

    def _run(self) -> None:
        last_id, catching_up = self._start_id, False
        while not self._stopped.is_set():
            if catching_up:
                self._wait_for_room()
            try:
                entries = stream.wait(self._ctx.redis, last_id, block_ms=1000, count=HUB_READ)
            # the thread must outlive an outage (a cluster wholly away included: kades.clients),
            # or the replica's live alerts end
            except clients.TEMPORARY_ERRORS as error:
                log(logger, logging.WARNING, "alert stream unavailable", error=str(error))
                time.sleep(1.0)
                continue
            except Exception:  # a bug must not end the live alerts silently: log it, go on
                logger.exception("alert stream read failed")
                time.sleep(1.0)
                continue
            catching_up = len(entries) >= HUB_READ
            if entries:
                last_id = entries[-1][0]
                with self._lock:  # an inbox joining now gets what comes after last_id
                    self._position, inboxes = last_id, list(self._queues)
                for inbox in inboxes:
                    if inbox.qsize() + len(entries) > MAX_BACKLOG:
                        inbox.overflowed = True  # what it missed is in the stream: the replay's
                        self.leave(inbox)
                        inbox.put((CLIENT, ""))  # wakes its conversation, were it waiting
                        continue
                    for entry in entries:
                        inbox.put(entry)

    def _wait_for_room(self) -> None:
        """Until every connection's queue is empty or has room for a whole read (ROOM_WAIT_S
        at most)."""
        deadline = time.monotonic() + ROOM_WAIT_S
        while not self._stopped.is_set():
            with self._lock:
                fullest = max((inbox.qsize() for inbox in self._queues), default=0)
            if fullest == 0 or fullest + HUB_READ <= MAX_BACKLOG or time.monotonic() >= deadline:
                return
            time.sleep(0.01)


def hub(ctx: Context) -> Hub:
    """This Context's hub, started on the first WebSocket (never at import: gunicorn forks)."""
    return ctx.local(Hub)


class _Closed(flask.Response):
    """What the view returns once the socket is closed: the server must not write to it."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def __call__(self, *args, **kwargs):
        if self.mode == "gunicorn":
            raise StopIteration()
        if self.mode == "werkzeug":
            raise ConnectionError()
        return []


def register_route(app: flask.Flask) -> None:
    """Let WebSocket upgrades of /v1/ws reach the function: werkzeug routes an upgrade only
    to a rule marked `websocket=True`, and functions-framework's catch-all rule is not.
    Called from functions/api/main.py, which functions-framework runs in the app's context."""
    # An endpoint of its own, with the catch-all's view: under the catch-all's endpoint, this
    # rule's `defaults` made werkzeug redirect a plain GET /v1/ws (the catch-all's match, with
    # those values) to itself, for ever, where the api answers 426
    app.url_map.add(Rule("/v1/ws", defaults={"path": "v1/ws"}, endpoint="run-websocket",
                         websocket=True))
    # (looked up per request: functions-framework adds its "run" after importing main.py)
    app.view_functions["run-websocket"] = lambda path: app.view_functions["run"](path)


def serve(ctx: Context, request: flask.Request) -> flask.Response:
    if request.environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        return error_response(426, "upgrade_required", "connect with a WebSocket client")
    problems = handshake_problems(request.headers)
    if problems:  # nothing upgraded yet: a plain answer (wsproto raised on them: a 500)
        refused = error_response(400, "bad_handshake", "not a WebSocket handshake", problems)
        refused.headers["Sec-WebSocket-Version"] = "13"  # the one it speaks (RFC 6455, 4.4)
        return refused
    # Authenticated before the upgrade: a database or Redis fault then is the plain HTTP 503
    # the caller's handler gives, not an HTTP answer written onto an upgraded socket.
    # So is the connection's slot taken (Redis).
    try:
        caller, refused = auth.authenticate(ctx, request.headers, request.args.get("api_key")), None
    except auth.AuthenticationError as error:
        caller, refused = None, error
    connection = str(uuid.uuid4())
    counter = WS_CONNECTIONS.format(key_id=caller.key_id) if caller is not None else None
    admitted = counter is not None and _admit(ctx.redis, counter, connection)
    try:
        ws = simple_websocket.Server.accept(request.environ, ping_interval=PING_INTERVAL_S,
                                            max_message_size=MAX_MESSAGE_BYTES)
    except BaseException:
        if admitted:
            _leave(ctx, counter, connection)
        raise
    if refused is not None:  # told over the socket: a browser cannot read a refused handshake
        ws.send(message("error", {"code": AUTH_FAILED, "message": str(refused)}))
        ws.close(1008, "authentication failed")
        return _Closed(ws.mode)
    if not admitted:
        ws.send(message("error", {"code": RATE_LIMITED, "message":
                                  f"at most {MAX_CONNECTIONS_PER_KEY} connections per key"}))
        ws.close(1008, "too many connections")
        return _Closed(ws.mode)
    headers, query_key = _credentials(request)
    try:
        _converse(ctx, ws, Session(_valid_last_id(request.args.get("last_id"))), counter, connection,
                  still_allowed=lambda: auth.authenticate(ctx, headers, query_key))
    except clients.TEMPORARY_ERRORS as error:
        log(logger, logging.WARNING, "websocket: dependency away", error=str(error))
        _try_send(ws, message("error", {"code": SERVER_ERROR, "message": "temporary failure"}))
    except simple_websocket.ConnectionClosed:
        pass  # the client left: the normal end of a conversation
    except TimeoutError:  # a send blocked SEND_TIMEOUT_S: the client reads nothing
        WEBSOCKET_SLOW_CLOSED.inc()
        log(logger, logging.WARNING, "websocket: client reads nothing, socket cut",
            connection=connection)
        _cut(ws)
    except OSError as error:  # after TimeoutError, one of them: the socket reset or broken mid-send
        log(logger, logging.INFO, "websocket: the client's socket went", error=str(error),
            connection=connection)
    finally:
        _leave(ctx, counter, connection)
        _end(ws)
    return _Closed(ws.mode)


def handshake_problems(headers) -> list[Problem]:
    """What makes an upgrade request no WebSocket handshake (RFC 6455, 4.2.1): each header
    simple_websocket's handshake (wsproto) refuses, or finds empty."""
    problems = []
    if "upgrade" not in {token.strip().lower() for token in headers.get("Connection", "").split(",")}:
        problems.append(Problem("headers.Connection", "must name Upgrade"))
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        problems.append(Problem("headers.Sec-WebSocket-Version", "must be 13"))
    for name in ("Sec-WebSocket-Key", "Host"):
        if not headers.get(name, "").strip():
            problems.append(Problem(f"headers.{name}", "required"))
    key = headers.get("Sec-WebSocket-Key", "").strip()
    if key and not _is_nonce(key):
        problems.append(Problem("headers.Sec-WebSocket-Key", "must be 16 bytes in base64"))
    return problems


def _is_nonce(key: str) -> bool:
    """A Sec-WebSocket-Key as RFC 6455 (4.1) has it: 16 random bytes, base64-encoded."""
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:  # binascii.Error, and non-ASCII text
        return False


def _end(ws, code: int | None = None, reason: str | None = None) -> None:
    """Close the socket (its close frame sent), or cut it when the frame cannot go."""
    try:
        if ws.connected:
            ws.close(code, reason)
    except (OSError, simple_websocket.ConnectionClosed):  # TimeoutError, a reset, a broken pipe
        _cut(ws)


class WholeFrames:
    """A socket whose send() sends all of its bytes or raises (sendall). simple_websocket
    sends with socket.send and ignores how much went: with a timeout set, a send to a slow
    client wrote part of a frame, dropped the rest, and the client read the next frame's
    bytes as its payload. One frame at a time: simple_websocket's own thread sends its pings and
    pongs on the socket too, and a ping landing amid an alert's frame (sent in pieces to a
    slow client) made the stream unreadable. Everything else is the socket's."""

    def __init__(self, sock):
        self._sock = sock
        self._sending = threading.Lock()

    def send(self, data, *flags) -> int:
        with self._sending:
            self._sock.sendall(data, *flags)
        return len(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _cut(ws) -> None:
    """Shut a socket whose client takes nothing, not even a close frame (its sends time
    out); simple_websocket's thread ends with it."""
    ws.connected = False
    with contextlib.suppress(OSError):  # (already shut by the other side)
        ws.sock.shutdown(socket.SHUT_RDWR)


def _credentials(request) -> tuple[Headers, str | None]:
    """What the socket's credentials are checked again with while it is open: the headers,
    copied with their names case-insensitive still (dict(request.headers) named the key's
    "X-Api-Key", and the check every AUTH_RECHECK_S, finding no "X-API-Key", closed the
    socket of every client that had sent its key as a header), and the `api_key` parameter."""
    return Headers(request.headers), request.args.get("api_key")


def _replay(ctx: Context, ws, session: Session) -> None:
    """Everything after the client's last_id still in the stream, a page at a time (a client
    back after a busy minute missed more than one page); live alerts it overlaps are then
    skipped by `deliverable`, which sends each stream id at most once and in order."""
    after = session.replay_from
    while page := stream.since(ctx.redis, after, count=REPLAY_PAGE):
        for entry_id, alert in page:
            if (frame := session.deliverable(entry_id, alert)) is not None:
                ws.send(frame)
                WEBSOCKET_ALERTS_SENT.inc()
        if len(page) < REPLAY_PAGE:
            return
        after = page[-1][0]


def _valid_last_id(text: str | None) -> str | None:
    return text if text and stream.valid_id(text) else None


def _admit(client: redis.Redis, counter: str, connection: str) -> bool:
    now = time.time()
    pipe = client.pipeline(transaction=True)  # a cluster client's default is no MULTI
    pipe.zremrangebyscore(counter, 0, now - CONNECTION_STALE_S)
    pipe.zadd(counter, {connection: now})
    pipe.zcard(counter)
    pipe.expire(counter, CONNECTION_STALE_S)
    if pipe.execute()[2] > MAX_CONNECTIONS_PER_KEY:
        client.zrem(counter, connection)
        return False
    return True


def _still_here(client: redis.Redis, counter: str, connection: str) -> None:
    """The connection's entry renewed, and the key's expiry with it: set on admission alone,
    it took every open connection's entry with it 120 s after the last admission, and a key
    then held more than MAX_CONNECTIONS_PER_KEY."""
    pipe = client.pipeline(transaction=True)
    pipe.zadd(counter, {connection: time.time()})
    pipe.expire(counter, CONNECTION_STALE_S)
    pipe.execute()


def _leave(ctx: Context, counter: str, connection: str) -> None:
    try:
        ctx.redis.zrem(counter, connection)
    except clients.TEMPORARY_ERRORS:
        pass  # the entry goes stale and stops counting after CONNECTION_STALE_S


def _try_send(ws, frame: str) -> None:
    try:
        ws.send(frame)
    except simple_websocket.ConnectionClosed:
        pass  # nobody left to tell


def _read_client(ws, inbox: Inbox) -> None:
    """Hand what the client sends to its connection's inbox; (CLIENT, None) once it left.
    It waits a second at a time, not for ever: when simple_websocket closes a connection
    itself (a message over max_message_size: 1009) it wakes a waiting reader before it marks
    the connection closed, so a reader that waited again would never wake, and the
    conversation would hold its thread and connection slot until its next refresh."""
    try:
        while ws.connected:
            if (frame := ws.receive(timeout=READER_POLL_S)) is not None:
                inbox.put((CLIENT, frame))
    except simple_websocket.ConnectionClosed:
        pass
    inbox.put((CLIENT, None))


def _converse(ctx: Context, ws, session: Session, counter: str, connection: str, *,
              still_allowed=lambda: None) -> None:
    """One connection: its inbox gets alerts from the hub and messages from the client's
    reader thread, so the conversation sleeps until there is something to do. Its caller's
    credentials are checked again every AUTH_RECHECK_S (`still_allowed` raises
    AuthenticationError): a revoked key's socket, or an expired token's, kept its alerts
    until the connection's end (600 s on Knative, for ever locally). Its client gets at most
    MAX_BACKLOG alerts ahead and SEND_TIMEOUT_S a send (wsprotocol): a slower one is closed."""
    ws.sock = WholeFrames(ws.sock)  # before the timeout: a timed send must send all or raise
    ws.sock.settimeout(SEND_TIMEOUT_S)  # simple_websocket reads only what select found
    inbox = Inbox()
    hub(ctx).join(inbox)
    WEBSOCKET_CONNECTIONS.inc()
    try:
        ws.send(message("welcome", {"channels": list(CHANNELS), "connection": connection}))
        threading.Thread(target=_read_client, args=(ws, inbox), name="ws-reader",
                         daemon=True).start()
        refreshed = checked = time.monotonic()
        while ws.connected:
            try:
                origin, item = inbox.get(timeout=min(CONNECTION_STALE_S / 3, AUTH_RECHECK_S))
            except queue.Empty:
                origin, item = None, None
            if time.monotonic() - checked >= AUTH_RECHECK_S:
                try:
                    still_allowed()
                except auth.AuthenticationError as error:
                    ws.send(message("error", {"code": AUTH_FAILED, "message": str(error)}))
                    ws.close(1008, "authentication failed")
                    return
                checked = time.monotonic()
            if inbox.overflowed:
                WEBSOCKET_SLOW_CLOSED.inc()
                # before its first subscription nothing was sent: it resumes from its own
                # last_id, whose replay was still to come, not from where it joined
                resume = session.replay_from or later_id(inbox.resume_id, session.last_id())
                try:
                    ws.send(message("error", {"code": TOO_SLOW, "last_id": resume, "message":
                                              f"over {MAX_BACKLOG} alerts behind: reconnect with last_id"}))
                except TimeoutError:  # (counted above, not again by serve)
                    _cut(ws)
                    return
                _end(ws, 1013, "too slow")  # Try Again Later
                return
            if origin == CLIENT:
                if item is None:
                    return  # the client left
                if session.over_rate(time.monotonic()):
                    ws.send(message("error", {"code": RATE_LIMITED, "message":
                                              f"over {MAX_MESSAGES_PER_MIN} messages per minute"}))
                    ws.close(1008, "rate limit exceeded")
                    return
                replies, replay = session.handle(item)
                for reply in replies:
                    ws.send(reply)
                if replay and session.replay_from:
                    _replay(ctx, ws, session)
                    session.replay_from = None  # once: a later subscribe does not read it all again
            elif origin is not None:
                inbox.resume_id = origin
                if frame := session.deliverable(origin, item):
                    ws.send(frame)
                    WEBSOCKET_ALERTS_SENT.inc()
            if time.monotonic() - refreshed > CONNECTION_STALE_S / 3:
                _still_here(ctx.redis, counter, connection)
                refreshed = time.monotonic()
    finally:
        WEBSOCKET_CONNECTIONS.dec()
        hub(ctx).leave(inbox)
