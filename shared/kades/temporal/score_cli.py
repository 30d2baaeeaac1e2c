"""`kades score`: backtest any univariate series with the detectors temporal-analysis runs.

Reads a CSV with a timestamp column and a value column and writes every input row with two
added columns: `anomaly_score` in [0, 1] and `top_detector` (the ensemble member behind the
score; empty when nothing scored). Rows are streamed through the very same ensemble and
threshold filter as the function, in file order (a row not later than the one before scores
0: the detectors never look back). Every bad row is reported before anything is written.

    kades score prices.csv --output scored.csv --timestamp-column time --value-column close
    kades score - < prices.csv > scored.csv
    kades score --dir tapes/ --output-dir scored/
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import math
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, TextIO

from kades import exitcodes
from kades.cliutil import STDIO, open_output, progress as progress_bar
from kades.temporal.ensemble import TemporalEnsemble
from kades.temporal.threshold import ThresholdFilter

MAX_PROBLEMS_SHOWN = 10


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
        raise InputError(f"{len(problems)} unparsable field(s):\n  {shown}{more}")
    return rows, positive


def score_file(path: Path, out: TextIO, *, time_column: str = "timestamp",
               value_column: str = "value", progress: bool | None = None,
               checked: tuple[int, bool] | None = None, name: str | None = None) -> int:
    """Score one CSV into `out`; the number of rows written. `checked`: what `check` said;
    `progress`: a bar on stderr (default: when stderr is a terminal), labelled `name`."""
    total, positive = checked or check(path, time_column, value_column)
    # Log values suit prices (scale-free); a series that touches 0 or goes negative is
    # judged on its values themselves.
    ensemble = TemporalEnsemble(log_scale=positive)
    monitor = ThresholdFilter(ensemble)
    with open(path, newline="", encoding="utf-8") as handle, \
            progress_bar(total=total, desc=name or path.name, show=progress) as bar:
        writer = None
        for _, row, moment, value in _rows(handle, time_column, value_column):
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
            bar.update()
    return total


@contextlib.contextmanager
def _readable(name: str) -> Iterator[Path]:
    """A path to read `name` from twice (the check, then the scoring): stdin is spooled to a
    temporary file first."""
    if name != STDIO:
        yield Path(name)
        return
    with tempfile.TemporaryDirectory(prefix="kades-score-") as folder:
        spooled = Path(folder) / "stdin.csv"
        with open(spooled, "w", newline="", encoding="utf-8") as copy:
            shutil.copyfileobj(sys.stdin, copy)
        yield spooled


def main_score(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades score", description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", help="the CSV to score ('-' for stdin)")
    parser.add_argument("--output", "-o", default=STDIO,
                        help="where to write the scored CSV ('-', the default, for stdout)")
    parser.add_argument("--timestamp-column", default="timestamp",
                        help="the column of times: ISO 8601, or epoch seconds or milliseconds "
                             "(default: timestamp)")
    parser.add_argument("--value-column", default="value",
                        help="the column of the series' values (default: value)")
    parser.add_argument("--dir", type=Path, help="score every *.csv in this folder")
    parser.add_argument("--output-dir", type=Path, help="with --dir: where the scored files go")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a progress bar on stderr (default: when stderr is a terminal)")
    args = parser.parse_args(argv)
    if (args.input is None) == (args.dir is None):
        parser.error("give either INPUT or --dir")
    if args.dir is not None and args.output_dir is None:
        parser.error("--dir needs --output-dir")
    jobs = ([(str(path), str(args.output_dir / path.name))
             for path in sorted(args.dir.glob("*.csv"))]
            if args.dir else [(args.input, args.output)])
    if args.dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for source, target in jobs:
        columns = {"time_column": args.timestamp_column, "value_column": args.value_column}
        try:
            with _readable(source) as path:
                checked = check(path, **columns)  # before any output is opened
                with open_output(target, newline="") as out:
                    rows = score_file(path, out, progress=args.progress, checked=checked,
                                      name="stdin" if source == STDIO else source, **columns)
            print(f"kades score: {source}: {rows} rows scored"
                  + ("" if target == STDIO else f" -> {target}"), file=sys.stderr)
        except (InputError, OSError) as error:
            print(f"kades score: {source}: {error}", file=sys.stderr)
            failed += 1
    return exitcodes.FAILURE if failed else exitcodes.OK
