"""`kades apikey create|list|revoke|jwt`: manage API keys (the key is printed once, never stored)."""
from __future__ import annotations

import argparse

import psycopg
import redis

from kades import clients, exitcodes
from kades.api.auth import issue_token
from kades.apikey import TIERS, name_problem, shown_name
from kades.cliutil import bounded, report, report_error
from kades.settings import Settings, redact_url
from kades.storage import apikeys, tracking, webhooks


MAX_TTL_S = 366 * 24 * 3600  # a year: a longer-lived credential is what an API key is for


def _name(text: str) -> str:
    problem = name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem}: {text!r}")
    return text



def main_apikey(argv: list[str], *, config: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kades apikey", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--tier", choices=TIERS, default="standard",
                        help="the key's rate limits (default: standard)")
    create.add_argument("--name", default="", type=_name,
                        help="a note on whose key this is (no control characters)")
    listing = commands.add_parser("list", help="list the keys: id, tier, name, created "
                                                "(never the key: it is not stored)")
    listing.add_argument("--all", action="store_true", help="revoked keys too")
    revoke = commands.add_parser("revoke", help="revoke a key by its id (8 characters)")
    revoke.add_argument("key_id", help="the key id `create` printed (or `list` shows)")
    token = commands.add_parser("jwt", help="print an HS256 bearer token for a key id "
                                            "(needs KADES_JWT_SECRET)")
    token.add_argument("key_id", help="the key the token stands for")
    token.add_argument("--ttl-s", type=bounded(int, 1, MAX_TTL_S, f"seconds from 1 to {MAX_TTL_S}"), default=3600,
                       help=f"seconds until the token expires, 1 to {MAX_TTL_S} "
                            "(default: 3600)")
    args = parser.parse_args(argv)
    config = config or Settings.from_env()
    if args.command == "jwt" and not config.jwt_secret:
        parser.error("set KADES_JWT_SECRET to issue bearer tokens")
    try:
        with psycopg.connect(config.database_url,
                             connect_timeout=max(1, round(config.database_timeout_s))) as conn:
            return _run(args, conn, config)
    except psycopg.Error as error:
        return report_error("apikey", f"PostgreSQL at {redact_url(config.database_url)}", error)
    except redis.RedisError as error:  # revoke publishes thresholds: nothing was revoked
        return report_error("apikey", f"Redis at {redact_url(config.redis_url)}", error)


def _run(args: argparse.Namespace, conn: psycopg.Connection, config: Settings) -> int:
    if args.command == "create":
        key_id, key = apikeys.create_key(conn, tier=args.tier, name=args.name)
        print(f"key id {key_id} ({args.tier}); the key, shown only now:\n{key}")
        return exitcodes.OK
    if args.command == "list":
        print_keys(apikeys.list_keys(conn, revoked=args.all))
        return exitcodes.OK
    if args.command == "revoke":
        if not apikeys.revoke_key(conn, args.key_id):
            return report("apikey", f"no live key {args.key_id}")
        # what the key set up stops with it, in the same transaction: its webhooks kept
        # receiving signed alerts, and its low thresholds governed alerts for everyone
        deleted = webhooks.delete_webhooks_of(conn, args.key_id)
        untracked = tracking.untrack_all(conn, key_id=args.key_id)
        client = clients.redis_client(config) if untracked else None
        for token, lowest in untracked.items():
            tracking.publish_threshold(client, token, lowest)
        conn.commit()
        print(f"revoked {args.key_id}: {deleted} webhook(s) deleted, {len(untracked)} "
              "token(s) untracked")
        return exitcodes.OK
    if apikeys.key_exists(conn, args.key_id) is None:
        return report("apikey", f"no live key {args.key_id}")
    print(issue_token(config.jwt_secret, args.key_id, ttl_s=args.ttl_s))
    return exitcodes.OK


def print_keys(rows: list[dict]) -> None:
    print(f"{'key id':10} {'tier':10} {'created (UTC)':20} {'revoked (UTC)':20} name")
    for row in rows:
        revoked = row["revoked_at"].strftime("%Y-%m-%d %H:%M:%S") if row["revoked_at"] else "-"
        print(f"{row['key_id']:10} {row['tier']:10} "
              f"{row['created_at'].strftime('%Y-%m-%d %H:%M:%S'):20} {revoked:20} "
              f"{shown_name(row['name'])}")  # a name is the one free text here
