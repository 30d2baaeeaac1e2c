"""`kades solana-source`: recorded transactions or live RPC blocks -> chain-block events.

`--replay FILE_OR_DIR... --stdout` prints structured CloudEvents as JSON lines (per slot one per mint, each
under kades.events.catalogue.MAX_EVENT_BYTES)
(the input of `kades run-function chain-analysis --input -`); without `--stdout` the events
are POSTed in binary mode to the sink (K_SINK / KADES_SINK_URL, the Broker ingress), each with
the sender token of `--sink-token-file` (on a cluster with authentication-oidc: the one the
ContainerSource's SinkBinding mounts at /oidc/token).
`--replay -` reads a recording from stdin. A recording is one JSON document or JSON lines; a
transaction that cannot be read is left out and named on stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from kades import exitcodes
from kades.cliutil import STDIO, report, report_error
from kades.errors import TemporaryFailure
from kades.events.catalogue import validate_data
from kades.events.envelope import to_dict
from kades.runtime.tokenfile import SINKBINDING_TOKEN_FILE, token_file_problem
from kades.settings import http_url_problem, redact_url, settings, shown_url
from kades.solana.block import (block_events, build_blocks, programs_summary, signature_of,
                                transactions_of)
from kades.solana.transaction import MalformedTransaction


def recorded_files(paths: list[str]) -> list[Path | str]:
    """The files named (folders give their *.json); `-` stays as is: it is stdin. None at all
    is an error: a replay that read nothing must not pass for one that found no activity."""
    files: list[Path | str] = []
    for name in paths:
        path = Path(name)
        if name == STDIO:
            files.append(STDIO)
        elif path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.json") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {name}")
    if not files:
        raise FileNotFoundError(f"nothing to read: no *.json file in {', '.join(paths)}")
    return files


def documents(text: str) -> list:
    """The JSON documents of a recording: one, or one per line (JSON lines, as a recorder
    that appends each answer writes them)."""
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as error:
        if not error.msg.startswith("Extra data"):
            raise
    except RecursionError:  # json's parser recurses once per level of nesting
        raise MalformedTransaction("JSON nested too deeply") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            found.extend([json.loads(line)] if line.strip() else [])
        except json.JSONDecodeError as error:
            raise MalformedTransaction(f"line {number}: {error}") from None
        except RecursionError:
            raise MalformedTransaction(f"line {number}: JSON nested too deeply") from None
    return found


def replay_events(paths: list[str], *, summary: list | None = None) -> list:
    """The chain-block events of recorded files, in slot order (per slot: one per mint, in parts);
    `summary` (a list) gets what programs were read and skipped, each transaction left out as
    unreadable with its file, and how many were recorded more than once (a signature is read
    once). Fails when there were transactions and none could be read."""
    transactions, origins, seen, repeated, guessed = [], [], set(), 0, []
    for path in recorded_files(paths):
        try:
            text = sys.stdin.read() if path == STDIO else path.read_text(encoding="utf-8")
            found = [tx for document in documents(text) for tx in transactions_of(document, guessed)]
        except (ValueError, MalformedTransaction) as error:
            raise MalformedTransaction(f"{path}: {error}") from error
        except RecursionError:  # parsed, just, but too deep to walk
            raise MalformedTransaction(f"{path}: JSON nested too deeply") from None
        for tx in found:  # a signature is unique on chain: overlapping recordings give it twice
            if (signature := signature_of(tx)) != "?" and signature in seen:
                repeated += 1
                continue
            seen.add(signature)
            transactions.append(tx)
            origins.append(path)
    unreadable: list[tuple[int, str]] = []
    blocks = build_blocks(transactions, unreadable=unreadable)
    left_out = [f"{origins[position]}: {reason}" for position, reason in unreadable]
    if left_out and len(left_out) == len(transactions):
        raise MalformedTransaction("no transaction could be read: " + "; ".join(left_out[:3]))
    if summary is not None:
        summary.append(programs_summary(blocks))
        summary.extend(f"left out, unreadable: {line}" for line in left_out)
        if repeated:
            summary.append(f"read once, recorded again: {repeated} transactions")
        if guessed:
            summary.append(f"{len(guessed)} getBlock results record no slot: each taken as its "
                           "parentSlot + 1, wrong after a skipped slot (other event ids than "
                           "the --rpc source's); add \"slot\" to each to replay them as sent")
    events = [event for block in blocks for event in block_events(block)]
    for event in events:
        validate_data(event)  # the source never emits what the functions would refuse
    return events


def sink_token_file(given: str | None) -> str:
    """The token file to send with: `given`, else KADES_SINK_TOKEN_FILE, else the SinkBinding's
    /oidc/token if it is there (it is mounted only while authentication-oidc is on), else none."""
    if given is not None:
        return given
    configured = settings().sink_token_file
    if configured:
        return configured
    return SINKBINDING_TOKEN_FILE if os.path.isfile(SINKBINDING_TOKEN_FILE) else ""


def main_solana_source(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades solana-source", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--replay", nargs="+", metavar="FILE_OR_DIR",
                      help="recorded getTransaction/getBlock JSON (files or folders of *.json; "
                           "'-' for stdin)")
    mode.add_argument("--rpc", metavar="URL", default=os.environ.get("SOLANA_RPC_URL"),
                      help="follow a Solana JSON-RPC endpoint (default: $SOLANA_RPC_URL)")
    parser.add_argument("--stdout", action="store_true", help="print events as JSON lines instead of sending")
    parser.add_argument("--sink", help="where to POST events (default: K_SINK / KADES_SINK_URL)")
    parser.add_argument("--sink-token-file", default=None, metavar="FILE",
                        help="send the token in FILE as Authorization: Bearer with every event, "
                             "read again when it changes (default: KADES_SINK_TOKEN_FILE, else "
                             f"{SINKBINDING_TOKEN_FILE} when Knative's SinkBinding mounted it)")
    parser.add_argument("--start-slot", type=int, help="RPC mode: first slot (default: resume, else latest)")
    parser.add_argument("--max-slots", type=int, help="RPC mode: stop after this many slots")
    args = parser.parse_args(argv)
    args.sink_token_file = sink_token_file(args.sink_token_file)
    if args.replay:
        args.rpc = None
    elif not args.rpc:
        parser.error("give --replay FILE_OR_DIR... or --rpc URL (or set SOLANA_RPC_URL)")
    elif problem := http_url_problem(args.rpc):
        given = "SOLANA_RPC_URL" if args.rpc == os.environ.get("SOLANA_RPC_URL") else "--rpc"
        parser.error(f"{given} {shown_url(args.rpc)!r}: {problem}")
    if not args.stdout:  # a wrong sink or token file is the command line's fault, not the sink's
        sink = args.sink or settings().sink_url
        if problem := http_url_problem(sink):
            given = "--sink" if args.sink else "the sink (KADES_SINK_URL / K_SINK)"
            parser.error(f"{given} {shown_url(sink)!r}: {problem}")
        if args.sink_token_file and (problem := token_file_problem(args.sink_token_file)):
            parser.error(problem)
    if args.rpc:
        from kades.solana.poll import run_polling
        return run_polling(args)
    summary: list[str] = []
    try:
        events = replay_events(args.replay, summary=summary)
    except (OSError, ValueError) as error:  # unreadable or malformed recordings
        return report("solana-source", str(error))
    print(*summary, sep="\n", file=sys.stderr)  # stdout carries only the events
    if args.stdout:
        for event in events:
            print(json.dumps(to_dict(event)), flush=True)
        return exitcodes.OK
    from kades.runtime.sink import SinkRefused, send
    sink = args.sink or settings().sink_url
    try:
        send(events, sink, token_file=args.sink_token_file)
    except SinkRefused as error:  # it answered: no retry will change its mind (exit 1)
        return report("solana-source", str(error))
    except TemporaryFailure as error:
        return report_error("solana-source", f"the sink {redact_url(sink)}", error)
    print(f"sent {len(events)} chain-block events", file=sys.stderr)
    return exitcodes.OK
