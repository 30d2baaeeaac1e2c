"""`kades run-function NAME --input EVENTS.jsonl`: one handler, in-process, no HTTP servers.

Replays recorded structured CloudEvents (one JSON object per line) through the same
validation and handler the deployed function uses, and prints every event it would send
(its reply first) as JSON lines. State and storage are the configured Redis/PostgreSQL.
Deduplication is off on purpose: replaying a file twice shows the same answers.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from kades import exitcodes
from kades.cliutil import open_input, report, report_error
from kades.clients import TEMPORARY_ERRORS
from kades.errors import BadRequestError
from kades.events.envelope import from_structured, parse_json, to_dict
from kades.registry import FUNCTIONS, load
from kades.runtime.endpoint import check_consumable
from kades.runtime.function import Context, as_event_list
from kades.settings import redact_url


def main_run_function(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades run-function", description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(FUNCTIONS), help="the function to run")
    parser.add_argument("--input", required=True,
                        help="JSON-lines file of structured CloudEvents ('-' for stdin)")
    args = parser.parse_args(argv)
    # An outage is said once, in one line (below): not also as each of the pool's retries
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    function = load(args.name)
    ctx = Context(function.name)
    try:
        opened = open_input(args.input)
    except OSError as error:
        return report("run-function", f"cannot read {args.input}: {error.strerror or error}")
    failures = 0
    try:
        with opened as stream:
            for number, line in enumerate(stream, start=1):
                if line.strip():
                    failures += not _run_one(function, ctx, number, line)
    except UnicodeDecodeError as error:
        return report("run-function", f"{args.input} is not UTF-8 text ({error.reason})")
    except TEMPORARY_ERRORS as error:
        # The event is fine; what it needs is not. 3 only when that is an outage: a
        # cancelled query, say, came from a server that is there.
        what = (f"a dependency (Redis {redact_url(ctx.settings.redis_url)}, PostgreSQL "
                f"{redact_url(ctx.settings.database_url)})")
        return report_error("run-function", what, error)
    return exitcodes.FAILURE if failures else exitcodes.OK


def _run_one(function, ctx: Context, number: int, line: str) -> bool:
    """Handle one line, printing its replies; False (and a JSON line on stderr) when refused.
    Only a refusal is reported so: any other exception of the handler is a bug and shows as
    one (a traceback), where the deployed function would answer 500."""
    try:
        document = parse_json(line)  # strict, as over HTTP: no NaN
    except ValueError as error:
        return _refused(number, error, [])
    try:
        event = from_structured(document)
        check_consumable(function, [event])
        replies = as_event_list(function.handle(event, ctx))
    except BadRequestError as error:  # the envelope's, the schema's or the handler's 400
        return _refused(number, error, error.problems)
    for reply in replies:
        print(json.dumps(to_dict(reply)), flush=True)
    return True


def _refused(number: int, error: ValueError, problems: list) -> bool:
    print(json.dumps({"line": number, "error": str(error),
                      "details": [p.as_dict() for p in problems]}), file=sys.stderr)
    return False
