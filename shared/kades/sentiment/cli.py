"""`kades sentiment INPUT.csv --text-column C [--output OUT.csv]`: score an export offline.

Adds `sentiment` (positive/neutral/negative), `compound` (-1 … 1) and `confidence` (0.5 … 1)
to every row, keeping the other columns as they are, with the input's field separator (comma,
semicolon, tab or bar). `-` reads stdin or writes stdout. A progress bar goes to stderr when
it is a terminal.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import sys
from pathlib import Path
from typing import IO

from kades import exitcodes
from kades.cliutil import (NOT_WHOLE_GZIP, STDIO, csv_delimiter, csv_rows, open_input,
                           open_output, progress as progress_bar)

ADDED = ("sentiment", "compound", "confidence")


class InputError(ValueError):
    """The input file cannot be scored as asked (missing, unreadable, wrong column)."""


def _count_rows(path: str) -> int | None:
    """Rows after the header, for the bar's total; None for stdin (it is read only once)."""
    if path == STDIO or not Path(path).is_file():
        return None  # read only once (stdin, a pipe): no second pass to count
    with open_input(path, newline="") as handle:  # a .csv.gz too, as the scoring reads it
        sep = csv_delimiter(handle.readline())
        try:
            return sum(1 for _ in csv.reader(handle, delimiter=sep))
        except csv.Error:  # the scoring names it, with its line
            return None


def score_csv(source: IO[str], target: IO[str], *, text_column: str, model,
              progress=None, overwrite: bool = False) -> int:
    """Copy CSV rows from `source` to `target` with the three sentiment columns; rows written.
    `progress` (a tqdm bar, or anything with `update()`) advances once a row."""
    header = source.readline().lstrip("\ufeff")  # stdin keeps a byte order mark
    sep = csv_delimiter(header)
    reader = csv_rows(itertools.chain([header], source), sep)
    columns, text_column = reader.fieldnames, text_column.strip()
    if not columns:
        raise InputError("the input is empty: no header row")
    if text_column not in columns:
        raise InputError(f"no column {text_column!r}; the columns are: {', '.join(columns)}")
    clash = [name for name in ADDED if name in columns]
    if clash and not overwrite:
        raise InputError(f"the input already has column(s) {', '.join(clash)}; "
                         "pass --overwrite to replace them")
    writer = csv.DictWriter(target, fieldnames=[*columns, *(n for n in ADDED if n not in columns)],
                            delimiter=sep)
    writer.writeheader()
    rows = 0
    for row in _rows_of(reader):
        if None in row:  # csv.DictReader keeps what is past the header's columns under None
            raise InputError(f"line {reader.line_num}: {len(row[None])} field(s) more than the "
                             f"header's {len(columns)}")
        text = row.get(text_column) or ""
        score = model.score(text)
        row.update(sentiment=score.label, compound=f"{score.compound:.4f}",
                   confidence=f"{score.confidence:.4f}")
        writer.writerow(row)
        rows += 1
        if progress is not None:
            progress.update()
    return rows


def _rows_of(reader: csv.DictReader):
    """The reader's rows; what csv cannot read (a field past its limit, a NUL) named with
    its line, as an InputError."""
    try:
        yield from reader
    except csv.Error as error:
        line = reader.reader.line_num  # (the DictReader's own is its last whole row's)
        raise InputError(f"line {line}: not a CSV this can read ({error})") from None


def main_sentiment(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades sentiment", description=__doc__.split("\n")[0])
    parser.add_argument("input", help="CSV file with a header row ('-' for stdin)")
    parser.add_argument("--text-column", required=True, help="the column holding the post text")
    parser.add_argument("--output", default=STDIO,
                        help="CSV file to write ('-', the default, for stdout)")
    parser.add_argument("--model", choices=("crypto", "lexicon", "vader"), default="crypto",
                        help="the function's model (default: the trained one shipped in the "
                             "package, else the lexicon), the crypto lexicon model, or plain VADER")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing sentiment/compound/confidence columns")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    from kades.sentiment.model import PlainVader, lexicon_model
    from kades.sentiment.model_trained import default_model
    model = {"crypto": default_model, "lexicon": lexicon_model, "vader": PlainVader}[args.model]()
    try:
        total = _count_rows(args.input)
        with open_input(args.input, newline="") as source, \
                open_output(args.output, newline="") as target, \
                progress_bar(total=total, desc="sentiment",
                             show=False if args.quiet else None) as bar:
            rows = score_csv(source, target, text_column=args.text_column, model=model,
                             progress=bar, overwrite=args.overwrite)
    except FileNotFoundError as error:
        print(f"kades sentiment: no such file: {error.filename}", file=sys.stderr)
        return exitcodes.FAILURE
    except UnicodeDecodeError as error:
        print(f"kades sentiment: {args.input} is not UTF-8 text ({error.reason} at byte "
              f"{error.start})", file=sys.stderr)
        return exitcodes.FAILURE
    except NOT_WHOLE_GZIP as error:
        print(f"kades sentiment: {args.input} is not a whole gzip file ({error})", file=sys.stderr)
        return exitcodes.FAILURE
    except BrokenPipeError:
        raise  # the reader left (`| head`): kades.cli ends quietly
    except (InputError, csv.Error, OSError) as error:
        print(f"kades sentiment: {args.input}: {error}", file=sys.stderr)
        return exitcodes.FAILURE
    print(f"kades sentiment: scored {rows} rows", file=sys.stderr)
    return exitcodes.OK
