"""`kades run-function NAME --input EVENTS.jsonl`: one handler, in-process, no HTTP servers.

Replays recorded structured CloudEvents (one JSON object per line) through the same
validation and handler the deployed function uses, and prints every event it would send
(its reply first) as JSON lines. State and storage are the configured Redis/PostgreSQL.
Deduplication is off on purpose: replaying a file twice shows the same answers.
"""
from __future__ import annotations

import argparse
import json
import sys

from kades.clients import TEMPORARY_ERRORS
from kades.errors import BadRequestError
from kades.events.envelope import from_structured, to_dict
from kades.registry import FUNCTIONS, load
from kades.runtime.endpoint import check_consumable
from kades.runtime.function import Context, as_event_list


def main_run_function(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades run-function", description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(FUNCTIONS))
    parser.add_argument("--input", required=True, help="JSON-lines file of structured CloudEvents ('-' for stdin)")
    args = parser.parse_args(argv)
    function = load(args.name)
    ctx = Context(function.name)
    stream = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    failures = 0
    with stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                event = from_structured(json.loads(line))
                check_consumable(function, [event])
                for reply in as_event_list(function.handle(event, ctx)):
                    print(json.dumps(to_dict(reply)), flush=True)
            except TEMPORARY_ERRORS as error:
                print(f"kades run-function: a dependency is unreachable ({type(error).__name__}: "
                      f"{error}); Redis {ctx.settings.redis_url}, PostgreSQL "
                      f"{ctx.settings.database_url}. Start them with `kades services up`.",
                      file=sys.stderr)
                return 3
            except ValueError as error:  # BadRequestError and JSON errors are ValueErrors
                failures += 1
                details = error.problems if isinstance(error, BadRequestError) else []
                print(json.dumps({"line": number, "error": str(error),
                                  "details": [p.as_dict() for p in details]}), file=sys.stderr)
    return 1 if failures else 0
