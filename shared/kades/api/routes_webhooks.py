"""Webhook routes: register (the signing secret is shown once), list, delete."""
from __future__ import annotations

import uuid

import flask

from kades.alerts.destinations import registration_problem, url_problem
from kades.alerts.signing import new_secret, secret_problem
from kades.api.auth import REVOKED, Caller, refusal
from kades.api.openapi import Checked
from kades.api.params import jsonable
from kades.errors import BadRequestError, Problem
from kades.runtime.endpoint import error_response, json_response
from kades.runtime.function import Context
from kades.storage import apikeys, webhooks as store

MAX_WEBHOOKS_PER_KEY = 20


def create_problems(ctx: Context, request: dict) -> list[Problem]:
    """What the document cannot say, listed with its problems: a URL a client can use (host
    and port) that is public, a secret the signing accepts."""
    body, problems = request.get("body"), []
    if not isinstance(body, dict):
        return problems
    url, secret = body.get("url"), body.get("secret")
    if isinstance(url, str):
        if unusable := url_problem(url):
            problems.append(Problem("url", unusable))
        elif not ctx.settings.webhook_allow_private and (refused := registration_problem(url)):
            problems.append(Problem("url", refused))
    if isinstance(secret, str) and (refused := secret_problem(secret)):
        problems.append(Problem("secret", refused))
    return problems


def create(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    """The body is checked already: against openapi.yaml (fields, types, lengths, levels)
    and `create_problems`."""
    body = request.body
    url, min_level, tokens = body["url"], body["min_level"], body["tokens"]
    secret = body["secret"] if "secret" in body else new_secret()  # whsec_...: Standard Webhooks
    with ctx.db() as conn:
        if not apikeys.hold_live_key(conn, caller.key_id):  # revoked since it was verified
            return refusal(REVOKED)
        if len(store.list_webhooks(conn, caller.key_id)) >= MAX_WEBHOOKS_PER_KEY:
            raise BadRequestError("too many webhooks", [Problem(
                "url", f"at most {MAX_WEBHOOKS_PER_KEY} webhooks per key; delete one first")])
        row = store.create_webhook(conn, key_id=caller.key_id, url=url, secret=secret,
                                   min_level=min_level, tokens=tokens)
    return json_response(jsonable({**_public(row), "secret": secret}), 201)


def _public(row: dict) -> dict:
    return {"id": str(row["id"]), "url": row["url"], "min_level": row["min_level"],
            "tokens": list(row["tokens"]), "created_at": row["created_at"]}


def list_all(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    with ctx.db() as conn:
        rows = store.list_webhooks(conn, caller.key_id)
    return json_response(jsonable({"webhooks": [_public(r) for r in rows]}), 200)


def delete_problems(ctx: Context, request: dict) -> list[Problem]:
    """Listed with the document's problems: an id that is not a UUID."""
    try:
        uuid.UUID(request["path"]["webhook_id"])
    except ValueError:
        return [Problem("webhook_id", "not a UUID")]
    return []


def delete(ctx: Context, caller: Caller, request: Checked) -> flask.Response:
    webhook_id = request.path["webhook_id"]  # a UUID: delete_problems
    with ctx.db() as conn:
        deleted = store.delete_webhook(conn, caller.key_id, uuid.UUID(webhook_id))
    if not deleted:
        return error_response(404, "not_found", f"no webhook {webhook_id} of this key")
    return flask.Response(b"", status=204)
