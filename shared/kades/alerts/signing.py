"""Webhook signatures: `X-KADES-Signature: sha256=<hex>` over `<timestamp>.<body>`.

HMAC-SHA256 with the webhook's secret; the timestamp (`X-KADES-Timestamp`, Unix seconds) is
signed too, so a receiver that refuses old timestamps also refuses replayed deliveries.

>>> headers = signature_headers("s3cret", b'{"a":1}', timestamp=1700000000)
>>> headers["X-KADES-Signature"][:7]
'sha256='
>>> verify("s3cret", b'{"a":1}', headers["X-KADES-Timestamp"], headers["X-KADES-Signature"],
...        now=1700000010)
True
>>> verify("s3cret", b'{"a":2}', headers["X-KADES-Timestamp"], headers["X-KADES-Signature"],
...        now=1700000010)
False
"""
from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-KADES-Signature"
TIMESTAMP_HEADER = "X-KADES-Timestamp"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, body, timestamp)}


def verify(secret: str, body: bytes, timestamp: str, signature: str, *,
           tolerance_s: float = 300, now: float | None = None) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        moment = int(timestamp)
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - moment) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, moment), signature)
