"""Webhook signatures by the Standard Webhooks scheme (standardwebhooks.com, spec 1.0), so a
receiver can verify them with any ready-made verifier (`standardwebhooks.Webhook`).

Headers: `webhook-id` (the delivery's id, the same on every retry: the receiver's idempotency
key), `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`): the id and the time are signed with
the body, so a receiver that refuses old timestamps also refuses replays.

Secrets are `whsec_<base64 of 32 random bytes>`; the HMAC key is the decoded bytes. A secret
in the form of before (any other string of 16-256 characters: accepted through v1) signs
with its UTF-8 bytes, which is what a verifier given `as_whsec(secret)` checks.

Through v1 every delivery also carries the headers of before, for receivers that check them:
`X-KADES-Timestamp` and `X-KADES-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
keyed by the secret string as given (`verify_v1_headers`).

>>> secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
>>> h = signature_headers(secret, b'{"test": 2432232314}', delivery_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
...                       timestamp=1614265330)
>>> h["webhook-signature"]  # the test vector of every Standard Webhooks library
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
>>> verify_v1_headers(secret, b'{"test": 2432232314}', h["X-KADES-Timestamp"],
...                   h["X-KADES-Signature"], now=1614265340)
True
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import datetime, timezone

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec asks for 24 to 64
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = "webhook-id", "webhook-timestamp", "webhook-signature"
# The headers of before, still sent through v1.
V1_SIGNATURE_HEADER = "X-KADES-Signature"
V1_TIMESTAMP_HEADER = "X-KADES-Timestamp"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_problem(secret: object) -> str | None:
    """Why `secret` cannot sign a webhook, or None."""
    if not isinstance(secret, str):
        return "a string"
    if not secret.startswith(SECRET_PREFIX):
        # The form of before, accepted through v1.
        return None if 16 <= len(secret) <= 256 else (
            f"{SECRET_PREFIX}<base64 of 24 to 64 bytes>, or any string of 16 to 256 characters")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except ValueError:  # binascii.Error, or a character outside ASCII (a plain ValueError)
        return f"{SECRET_PREFIX} followed by standard base64"
    return None if 24 <= len(key) <= 64 else f"{SECRET_PREFIX}<base64 of 24 to 64 bytes>"


def _whsec_key(secret: str) -> bytes | None:
    """The key of a `whsec_` secret; None for a secret of before, which may begin `whsec_`
    too (any 16-256 characters were accepted through v1): `whsec_my-own-password` raised
    in every attempt, and its exception ended the round of the other deliveries."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        return None


def signing_key(secret: str) -> bytes:
    key = _whsec_key(secret)
    return secret.encode() if key is None else key


def as_whsec(secret: str) -> str:
    """The `whsec_` form a Standard Webhooks verifier takes for a secret of before."""
    return secret if _whsec_key(secret) is not None else (
        SECRET_PREFIX + base64.b64encode(secret.encode()).decode())


def _v1_signature(secret: str, body: bytes, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(secret: str, body: bytes, *, delivery_id: str,
                      timestamp: int | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, and those of before (v1)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    signature = Webhook(signing_key(secret)).sign(delivery_id, moment, body.decode())
    return {ID_HEADER: delivery_id, TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature,
            V1_TIMESTAMP_HEADER: str(timestamp),
            V1_SIGNATURE_HEADER: _v1_signature(secret, body, timestamp)}


def verify_v1_headers(secret: str, body: bytes, timestamp: str, signature: str, *,
                      tolerance_s: float = 300, now: float | None = None) -> bool:
    """What a receiver of before does with X-KADES-*: the signature matches, the time is recent."""
    try:
        moment = int(timestamp)
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - moment) > tolerance_s:
        return False
    return hmac.compare_digest(_v1_signature(secret, body, moment), signature)
