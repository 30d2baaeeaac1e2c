"""Who is calling: an API key (`X-API-Key`, or `api_key` for WebSockets) or a JWT bearer.

Keys are checked against their salted hash in the database; a verified key is remembered
in the process for `CACHE_S` seconds (a revoked key stops working within that time).
JWTs are HS256 with the secret KADES_JWT_SECRET, must carry `exp` and `sub` (a key id, whose
tier and revocation apply) and are refused when no secret is configured.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import flask
import jwt

from kades.apikey import KEY_ID, is_well_formed
from kades.errors import KadesError
from kades.runtime.endpoint import error_response
from kades.runtime.function import Context
from kades.runtime.ttlcache import TtlCache
from kades.storage import apikeys

CACHE_S = 30.0


@dataclass(frozen=True)
class Caller:
    key_id: str
    tier: str


class AuthenticationError(KadesError, PermissionError):
    """No valid credentials: answer 401 (WebSocket close 1001)."""


def refusal(message: str) -> flask.Response:
    """The 401 of a request without valid credentials."""
    response = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="kades", X-API-Key'
    return response


REVOKED = "unknown or revoked API key"


def verified(ctx: Context) -> TtlCache:
    """The callers this api process verified lately (None: unknown), one per Context
    (`ctx.local`): a key costs one database round trip per CACHE_S."""
    return TtlCache(ttl_s=CACHE_S)


def from_key(ctx: Context, key: str) -> Caller:
    if not is_well_formed(key):
        raise AuthenticationError("malformed API key")

    def lookup():
        with ctx.db() as conn:
            row = apikeys.find_key(conn, key)
        return Caller(row["key_id"], row["tier"]) if row else None

    caller = ctx.local(verified).get_or_load("key:" + key, lookup)
    if caller is None:
        raise AuthenticationError(REVOKED)
    return caller


# Clocks apart by this much are the same time to `iat`, `nbf` and `exp`: a token issued on a
# machine a second ahead was refused as "not yet valid (iat)".
JWT_LEEWAY_S = 30


def from_bearer(ctx: Context, token: str) -> Caller:
    secret = ctx.settings.jwt_secret
    if not secret:
        raise AuthenticationError("bearer tokens are not enabled (no JWT secret configured)")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=JWT_LEEWAY_S,
                            options={"require": ["exp", "sub"]})
    except jwt.PyJWTError as error:
        raise AuthenticationError(f"invalid bearer token: {error}") from None

    if not isinstance(claims["sub"], str) or not KEY_ID.fullmatch(claims["sub"]):
        raise AuthenticationError("invalid bearer token: its subject is no key id")

    def lookup():
        with ctx.db() as conn:
            row = apikeys.key_exists(conn, claims["sub"])
        return Caller(row["key_id"], row["tier"]) if row else None

    caller = ctx.local(verified).get_or_load("sub:" + str(claims["sub"]), lookup)
    if caller is None:
        raise AuthenticationError("the token's key is unknown or revoked")
    return caller


def authenticate(ctx: Context, headers, query_key: str | None = None) -> Caller:
    """The caller of a request; AuthenticationError when it has no valid credentials."""
    key = headers.get("X-API-Key") or query_key
    if key:
        return from_key(ctx, key)
    authorization = headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        return from_bearer(ctx, token.strip())
    raise AuthenticationError("send an X-API-Key header or an Authorization: Bearer token")


def issue_token(secret: str, key_id: str, *, ttl_s: int = 3600, now: float | None = None) -> str:
    """A bearer token for a key id (what `kades apikey jwt` prints)."""
    now = time.time() if now is None else now
    return jwt.encode({"sub": key_id, "iat": int(now), "exp": int(now + ttl_s)}, secret,
                      algorithm="HS256")
