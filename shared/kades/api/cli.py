"""`kades apikey create|list|revoke|jwt`: manage API keys (the key is printed once, never stored)."""
from __future__ import annotations

import argparse

import psycopg

from kades.api.auth import issue_token
from kades.api.keys import TIERS
from kades.settings import Settings
from kades.storage import apikeys


def main_apikey(argv: list[str], *, config: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kades apikey", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--tier", choices=TIERS, default="standard")
    create.add_argument("--name", default="", help="a note on whose key this is")
    listing = commands.add_parser("list", help="list the keys: id, tier, name, created "
                                                "(never the key: it is not stored)")
    listing.add_argument("--all", action="store_true", help="revoked keys too")
    revoke = commands.add_parser("revoke", help="revoke a key by its id (8 characters)")
    revoke.add_argument("key_id")
    token = commands.add_parser("jwt", help="print an HS256 bearer token for a key id "
                                            "(needs KADES_JWT_SECRET)")
    token.add_argument("key_id")
    token.add_argument("--ttl-s", type=int, default=3600)
    args = parser.parse_args(argv)
    config = config or Settings.from_env()
    with psycopg.connect(config.database_url) as conn:
        if args.command == "create":
            key_id, key = apikeys.create_key(conn, tier=args.tier, name=args.name)
            print(f"key id {key_id} ({args.tier}); the key, shown only now:\n{key}")
            return 0
        if args.command == "list":
            print_keys(apikeys.list_keys(conn, revoked=args.all))
            return 0
        if args.command == "revoke":
            if apikeys.revoke_key(conn, args.key_id):
                print(f"revoked {args.key_id}")
                return 0
            print(f"no live key {args.key_id}")
            return 1
        if not config.jwt_secret:
            parser.error("set KADES_JWT_SECRET to issue bearer tokens")
        if apikeys.key_exists(conn, args.key_id) is None:
            print(f"no live key {args.key_id}")
            return 1
        print(issue_token(config.jwt_secret, args.key_id, ttl_s=args.ttl_s))
        return 0


def print_keys(rows: list[dict]) -> None:
    print(f"{'key id':10} {'tier':10} {'created (UTC)':20} {'revoked (UTC)':20} name")
    for row in rows:
        revoked = row["revoked_at"].strftime("%Y-%m-%d %H:%M:%S") if row["revoked_at"] else "-"
        print(f"{row['key_id']:10} {row['tier']:10} "
              f"{row['created_at'].strftime('%Y-%m-%d %H:%M:%S'):20} {revoked:20} {row['name']}")
