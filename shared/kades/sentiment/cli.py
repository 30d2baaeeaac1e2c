"""`kades sentiment INPUT.csv --text-column C [--output OUT.csv]`: score an export offline.

Adds `sentiment` (positive/neutral/negative), `compound` (-1 … 1) and `confidence` (0.5 … 1)
to every row, keeping the other columns as they are. A progress bar goes to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import sys
import time
from typing import IO

ADDED = ("sentiment", "compound", "confidence")
EXIT_USAGE, EXIT_INPUT = 2, 1


class InputError(ValueError):
    """The input file cannot be scored as asked (missing, unreadable, wrong column)."""


def _count_rows(path: str) -> int | None:
    if path == "-":
        return None
    with open(path, encoding="utf-8", newline="") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


class Progress:
    """A one-line bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int | None, stream: IO[str]):
        self.total, self.stream, self.done, self._drawn = total, stream, 0, 0.0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self._drawn >= 0.1:
            self._drawn = now
            self.draw()

    def draw(self) -> None:
        if self.total:
            filled = int(30 * self.done / self.total)
            self.stream.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] "
                              f"{self.done}/{self.total} rows")
        else:
            self.stream.write(f"\r{self.done} rows")
        self.stream.flush()

    def close(self) -> None:
        self.draw()
        self.stream.write("\n")


def score_csv(source: IO[str], target: IO[str], *, text_column: str, model,
              progress: Progress | None = None, overwrite: bool = False) -> int:
    """Copy CSV rows from `source` to `target` with the three sentiment columns; rows written."""
    reader = csv.DictReader(source)
    columns = reader.fieldnames
    if not columns:
        raise InputError("the input is empty: no header row")
    if text_column not in columns:
        raise InputError(f"no column {text_column!r}; the columns are: {', '.join(columns)}")
    clash = [name for name in ADDED if name in columns]
    if clash and not overwrite:
        raise InputError(f"the input already has column(s) {', '.join(clash)}; "
                         "pass --overwrite to replace them")
    writer = csv.DictWriter(target, fieldnames=[*columns, *(n for n in ADDED if n not in columns)])
    writer.writeheader()
    rows = 0
    for row in reader:
        text = row.get(text_column) or ""
        score = model.score(text)
        row.update(sentiment=score.label, compound=f"{score.compound:.4f}",
                   confidence=f"{score.confidence:.4f}")
        writer.writerow(row)
        rows += 1
        if progress:
            progress.step()
    return rows


def main_sentiment(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades sentiment", description=__doc__.split("\n")[0])
    parser.add_argument("input", help="CSV file with a header row ('-' for stdin)")
    parser.add_argument("--text-column", required=True, help="the column holding the post text")
    parser.add_argument("--output", default="-", help="CSV file to write (default: stdout)")
    parser.add_argument("--model", choices=("crypto", "vader"), default="crypto",
                        help="crypto-tuned lexicon model (default) or plain VADER")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing sentiment/compound/confidence columns")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    from kades.sentiment.model import PlainVader, default_model
    model = default_model() if args.model == "crypto" else PlainVader()
    try:
        total = _count_rows(args.input)
        with contextlib.ExitStack() as stack:
            source = sys.stdin if args.input == "-" else stack.enter_context(
                open(args.input, encoding="utf-8", newline=""))
            target = sys.stdout if args.output == "-" else stack.enter_context(
                open(args.output, "w", encoding="utf-8", newline=""))
            progress = None if args.quiet else Progress(total, sys.stderr)
            rows = score_csv(source, target, text_column=args.text_column, model=model,
                             progress=progress, overwrite=args.overwrite)
            if progress:
                progress.close()
    except FileNotFoundError as error:
        print(f"kades sentiment: no such file: {error.filename}", file=sys.stderr)
        return EXIT_INPUT
    except UnicodeDecodeError as error:
        print(f"kades sentiment: {args.input} is not UTF-8 text ({error.reason} at byte "
              f"{error.start})", file=sys.stderr)
        return EXIT_INPUT
    except (InputError, csv.Error) as error:
        print(f"kades sentiment: {error}", file=sys.stderr)
        return EXIT_INPUT
    print(f"kades sentiment: scored {rows} rows", file=sys.stderr)
    return 0
