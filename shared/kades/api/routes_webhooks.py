"""Webhook routes: register (the signing secret is shown once), list, delete."""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import flask

from kades.alerts.destinations import registration_problem
from kades.alerts.signing import new_secret, secret_problem
from kades.api.auth import Caller
from kades.api.params import jsonable, read_json_object, unknown_params
from kades.errors import BadRequestError, Problem
from kades.runtime.endpoint import error_response, json_response
from kades.runtime.function import Context
from kades.storage import webhooks as store

MAX_WEBHOOKS_PER_KEY = 20


def create(ctx: Context, request: flask.Request, caller: Caller) -> flask.Response:
    body = read_json_object(request)
    problems = [Problem(name, "unknown field") for name in body
                if name not in ("url", "min_level", "tokens", "secret")]
    url = body.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        problems.append(Problem("url", "an http(s) URL of at most 2048 characters"))
    elif not ctx.settings.webhook_allow_private and (refused := registration_problem(url)):
        problems.append(Problem("url", refused))
    min_level = body.get("min_level", "high")
    if min_level not in store.LEVELS:
        problems.append(Problem("min_level", f"one of {', '.join(store.LEVELS)}"))
    tokens = body.get("tokens", [])
    if not isinstance(tokens, list) or len(tokens) > 100 or not all(
            isinstance(t, str) and 0 < len(t) <= 64 for t in tokens):
        problems.append(Problem("tokens", "a list of at most 100 token addresses"))
    secret = body["secret"] if "secret" in body else new_secret()  # whsec_...: Standard Webhooks
    if refused := secret_problem(secret):
        problems.append(Problem("secret", refused))
    if problems:
        raise BadRequestError("invalid webhook", problems)
    with ctx.db() as conn:
        if len(store.list_webhooks(conn, caller.key_id)) >= MAX_WEBHOOKS_PER_KEY:
            raise BadRequestError("too many webhooks", [Problem(
                "url", f"at most {MAX_WEBHOOKS_PER_KEY} webhooks per key; delete one first")])
        row = store.create_webhook(conn, key_id=caller.key_id, url=url, secret=secret,
                                   min_level=min_level, tokens=tokens)
    return json_response(jsonable({**_public(row), "secret": secret}), 201)


def _public(row: dict) -> dict:
    return {"id": str(row["id"]), "url": row["url"], "min_level": row["min_level"],
            "tokens": list(row["tokens"]), "created_at": row["created_at"]}


def list_all(ctx: Context, request: flask.Request, caller: Caller) -> flask.Response:
    problems = unknown_params(request.args, set())
    if problems:
        raise BadRequestError("invalid query", problems)
    with ctx.db() as conn:
        rows = store.list_webhooks(conn, caller.key_id)
    return json_response(jsonable({"webhooks": [_public(r) for r in rows]}), 200)


def delete(ctx: Context, request: flask.Request, caller: Caller, webhook_id: str) -> flask.Response:
    try:
        parsed = uuid.UUID(webhook_id)
    except ValueError:
        raise BadRequestError("invalid webhook id", [Problem("id", "not a UUID")]) from None
    with ctx.db() as conn:
        deleted = store.delete_webhook(conn, caller.key_id, parsed)
    if not deleted:
        return error_response(404, "not_found", f"no webhook {webhook_id} of this key")
    return flask.Response(b"", status=204)
