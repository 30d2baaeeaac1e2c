"""`kades score`: backtest any univariate series with the detectors temporal-analysis runs.

Reads a CSV with a timestamp column and a value column and writes every input row with two
added columns: `anomaly_score` in [0, 1] and `top_detector` (the ensemble member behind the
score; empty when nothing scored). Rows are streamed through the very same ensemble and
threshold filter as the function, in file order (a row not later than the one before scores
0: the detectors never look back). Every bad row is reported before anything is written.

    kades score prices.csv --output scored.csv --timestamp-column time --value-column close
    kades score --dir tapes/ --output-dir scored/
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, TextIO

from kades.temporal.ensemble import TemporalEnsemble
from kades.temporal.threshold import ThresholdFilter

MAX_PROBLEMS_SHOWN = 10
PROGRESS_FROM_ROWS = 100_000


class InputError(ValueError):
    """The CSV cannot be scored: missing columns or unparsable rows (all of them named)."""


def parse_time(text: str) -> float:
    """Epoch seconds from ISO 8601 (no offset = UTC) or a number (seconds, or milliseconds
    when it is too large to be seconds)."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if not math.isfinite(number):
        raise ValueError(f"not a time: {text!r}")
    return number / 1000.0 if abs(number) > 1e11 else number


def _rows(handle: TextIO, time_column: str, value_column: str) -> Iterator[tuple[int, dict, float, float]]:
    """(line number, row, time, value) per row; raises InputError naming every problem."""
    reader = csv.DictReader(handle)
    missing = [c for c in (time_column, value_column) if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"missing column(s) {', '.join(map(repr, missing))}; the header has "
                         f"{', '.join(map(repr, reader.fieldnames or []))}")
    for row in reader:
        line = reader.line_num
        yield line, row, _field(parse_time, row, time_column, line), _field(float, row, value_column, line)


def _field(parse, row: dict, column: str, line: int):
    try:
        value = parse(row[column] or "")
    except (ValueError, TypeError) as error:
        return _Problem(f"line {line}: {column} {row[column]!r} unparsable ({error})")
    if isinstance(value, float) and not math.isfinite(value):
        return _Problem(f"line {line}: {column} {row[column]!r} is not finite")
    return value


class _Problem(str):
    """A field that did not parse, carrying its message."""


def check(path: Path, time_column: str, value_column: str) -> tuple[int, bool]:
    """First pass: (row count, whether every value is positive); InputError on any problem."""
    problems, rows, positive = [], 0, True
    with open(path, newline="", encoding="utf-8") as handle:
        for _, _, moment, value in _rows(handle, time_column, value_column):
            rows += 1
            problems += [field for field in (moment, value) if isinstance(field, _Problem)]
            positive = positive and not isinstance(value, _Problem) and value > 0
    if problems:
        shown = "\n  ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise InputError(f"{len(problems)} unparsable field(s) in {path}:\n  {shown}{more}")
    return rows, positive


def score_file(path: Path, out: TextIO, *, time_column: str = "timestamp",
               value_column: str = "value", progress: bool | None = None,
               checked: tuple[int, bool] | None = None) -> int:
    """Score one CSV into `out`; the number of rows written. `checked`: what `check` said."""
    total, positive = checked or check(path, time_column, value_column)
    # Log values suit prices (scale-free); a series that touches 0 or goes negative is
    # judged on its values themselves.
    ensemble = TemporalEnsemble(log_scale=positive)
    monitor = ThresholdFilter(ensemble)
    show = progress if progress is not None else (total >= PROGRESS_FROM_ROWS and sys.stderr.isatty())
    with open(path, newline="", encoding="utf-8") as handle:
        rows = _rows(handle, time_column, value_column)
        writer = None
        for done, (_, row, moment, value) in enumerate(rows, start=1):
            if writer is None:
                writer = csv.DictWriter(out, [*row, "anomaly_score", "top_detector"])
                writer.writeheader()
            monitor.process_one({"time": moment, "price": value})
            parts = monitor.last_parts
            kind = max(parts, key=parts.get) if parts else None
            score = parts[kind] if kind else 0.0
            row["anomaly_score"] = f"{score:.6f}"
            row["top_detector"] = ensemble.last_by.get(kind, "") if score > 0 else ""
            writer.writerow(row)
            if show and done % 20_000 == 0:
                print(f"\r{path.name}: {done}/{total} rows ({100 * done // total}%)", end="",
                      file=sys.stderr, flush=True)
        if show:
            print(f"\r{path.name}: {total}/{total} rows (100%)", file=sys.stderr)
    return total


def main_score(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades score", description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", type=Path, help="the CSV to score")
    parser.add_argument("--output", "-o", default="-", help="where to write (default: stdout)")
    parser.add_argument("--timestamp-column", default="timestamp")
    parser.add_argument("--value-column", default="value")
    parser.add_argument("--dir", type=Path, help="score every *.csv in this folder")
    parser.add_argument("--output-dir", type=Path, help="with --dir: where the scored files go")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress on stderr (default: on long files, on a terminal)")
    args = parser.parse_args(argv)
    if (args.input is None) == (args.dir is None):
        parser.error("give either INPUT or --dir")
    if args.dir is not None and args.output_dir is None:
        parser.error("--dir needs --output-dir")
    jobs = ([(path, args.output_dir / path.name) for path in sorted(args.dir.glob("*.csv"))]
            if args.dir else [(args.input, args.output)])
    if args.dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for source, target in jobs:
        columns = {"time_column": args.timestamp_column, "value_column": args.value_column}
        try:
            checked = check(source, **columns)  # before any output is opened
            if target == "-":
                rows = score_file(source, sys.stdout, progress=args.progress, checked=checked,
                                  **columns)
            else:
                with open(target, "w", newline="", encoding="utf-8") as out:
                    rows = score_file(source, out, progress=args.progress, checked=checked,
                                      **columns)
            print(f"kades score: {source}: {rows} rows scored"
                  + ("" if target == "-" else f" -> {target}"), file=sys.stderr)
        except (InputError, OSError) as error:
            print(f"kades score: {source}: {error}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
