"""The /v1/ws protocol, without I/O: messages, limits and one client's session.

Frames are JSON `{type, data, timestamp}`; see kades.api.websocket for the transport.
"""
from __future__ import annotations

import json
import re
from collections import deque

from kades.events.catalogue import NO_CONTROL, TOKEN_MAX_CHARS, now_rfc3339
from kades.events.envelope import parse_json

CHANNELS = ("patterns", "whale_movements", "anomalies", "liquidityChanges", "wash_trading",
            "cyclic_transfers")
MAX_CONNECTIONS_PER_KEY = 10
MAX_SUBSCRIPTIONS = 100
MAX_MESSAGES_PER_MIN = 1000
_TOKEN = re.compile(NO_CONTROL)  # an event's token, as the catalogue has it
# A client's message: 100 subscriptions of 44-character mints are ~5 kB. Larger ones are
# closed with 1009 before they are read whole (simple_websocket's max_message_size).
MAX_MESSAGE_BYTES = 64 * 1024
CONNECTION_STALE_S = 120   # a replica that died without saying goodbye stops counting after this
PING_INTERVAL_S = 25
# A client reading slower than alerts come: at most this many alerts wait for it, and a send
# blocks at most this long (a client that reads nothing), then its socket is closed, and it
# reconnects with last_id (the replay). Unbounded, one stalled client held every alert since
# it stalled in the api's memory, and its thread for ever.
MAX_BACKLOG = 1000
SEND_TIMEOUT_S = 10.0
AUTH_FAILED, BAD_SUBSCRIPTION, RATE_LIMITED, BAD_MESSAGE, SERVER_ERROR, TOO_SLOW = (
    1001, 1002, 1003, 1004, 1005, 1006)


def message(kind: str, data, **extra) -> str:
    return json.dumps({"type": kind, "data": data, "timestamp": now_rfc3339(), **extra})


def _id_key(entry_id: str) -> tuple[int, int]:
    head, _, tail = entry_id.partition("-")
    return int(head), int(tail or 0)


def later_id(a: str | None, b: str | None) -> str | None:
    """The later of two stream ids (None: none)."""
    return max((i for i in (a, b) if i), key=_id_key, default=None)


class Session:
    """One client's subscriptions, rate budget and position in the alert stream."""

    def __init__(self, last_id: str | None):
        self.channels: set[str] = set()
        self.tokens: set[str] = set()
        # whether alerts are filtered by token: once a subscription named tokens, until every
        # channel is unsubscribed (an empty token set then means none, not every token: a
        # client unsubscribing from its last token was sent every token's alerts)
        self.by_token = False
        self.last_sent = _id_key(last_id) if last_id else (0, 0)
        self.replay_from = last_id
        self.received: deque[float] = deque()

    def over_rate(self, now: float) -> bool:
        self.received.append(now)
        while self.received and self.received[0] < now - 60:
            self.received.popleft()
        return len(self.received) > MAX_MESSAGES_PER_MIN

    def wants(self, alert: dict) -> bool:
        data = alert.get("data", {})
        if self.by_token and data.get("token") not in self.tokens:
            return False
        return bool(self.channels.intersection(data.get("channels", ["anomalies"])))

    def handle(self, raw) -> tuple[list[str], bool]:
        """(messages to send back, whether to replay now) for one client message."""
        try:
            request = parse_json(raw)  # strict: no NaN, bounded nesting (a RecursionError
            kind = request["type"]     # from json.loads would have ended the connection)
        except (ValueError, TypeError, KeyError):
            return [message("error", {"code": BAD_MESSAGE, "message": "send JSON with a type"})], False
        if kind == "ping":
            return [message("pong", None)], False
        if kind not in ("subscribe", "unsubscribe"):
            return [message("error", {"code": BAD_MESSAGE, "message": f"unknown type {kind!r}"})], False
        channels, tokens = request.get("channels"), request.get("tokens", [])
        if not isinstance(channels, list) or not isinstance(tokens, list) or \
                not all(isinstance(c, str) for c in channels + tokens):
            return [message("error", {"code": BAD_SUBSCRIPTION,
                                      "message": "channels and tokens are lists of strings"})], False
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            return [message("error", {"code": BAD_SUBSCRIPTION, "message":
                                      f"unknown channels {unknown}; known: {list(CHANNELS)}"})], False
        unnamable = [t for t in tokens if len(t) > TOKEN_MAX_CHARS or not _TOKEN.fullmatch(t)]
        if unnamable and kind == "subscribe":  # no alert names them: the socket would hear nothing
            return [message("error", {"code": BAD_SUBSCRIPTION, "message":
                                      f"tokens {unnamable[:5]!r}: 1-{TOKEN_MAX_CHARS} characters, "
                                      "no control characters"})], False
        if kind == "unsubscribe":
            self.channels.difference_update(channels)
            self.tokens.difference_update(tokens)
            if not self.channels:  # nothing left: the next subscription starts afresh
                self.tokens.clear()
                self.by_token = False
            return [message("unsubscribed", {"channels": sorted(self.channels),
                                             "tokens": sorted(self.tokens)})], False
        if len(self.channels | set(channels)) + len(self.tokens | set(tokens)) > MAX_SUBSCRIPTIONS:
            return [message("error", {"code": BAD_SUBSCRIPTION, "message":
                                      f"at most {MAX_SUBSCRIPTIONS} subscriptions"})], False
        self.channels.update(channels)
        self.tokens.update(tokens)
        self.by_token = self.by_token or bool(tokens)
        return [message("subscribed", {"channels": sorted(self.channels),
                                       "tokens": sorted(self.tokens)})], True

    def last_id(self) -> str | None:
        """The stream id of the last alert sent (or the last_id it started from)."""
        return f"{self.last_sent[0]}-{self.last_sent[1]}" if self.last_sent != (0, 0) else None

    def deliverable(self, entry_id: str, alert: dict) -> str | None:
        """The frame for one stream entry, or None (not wanted, or sent already)."""
        key = _id_key(entry_id)
        if key <= self.last_sent or not self.wants(alert):
            return None
        self.last_sent = key
        return json.dumps({**alert, "type": "alert", "id": entry_id, "alert_id": alert.get("id")})
