"""`kades score`: backtest any univariate series with the detectors temporal-analysis runs.

Reads a CSV with a timestamp column and a value column (and optionally volume and liquidity
columns; comma, semicolon, tab or bar between fields, as the header shows, and the same in the
output) and writes every input row with three added columns: `anomaly_score` in [0, 1]
(surprise: near 0 on what is usual for the series), `top_detector` (the ensemble member
behind the score; empty when nothing scored) and `alert` (the anomaly type temporal-analysis
would raise at that row; empty otherwise). Rows go through the very same alert policy as
the function (kades.temporal.policy) in time order, streamed when the file is in time order
(a file newest first, or shuffled, is written back in file order; a second row of the same
time, or less than a second after the last scored one, scores 0: the detectors never look
back, and step in seconds; the summary on stderr counts such rows apart, and says when most
of a file's rows are so, or all its times lie within a minute). A row without a value (an
empty cell, NaN, NA, null: a gap in the recording) is written back unscored, its three
columns empty, as the function sees no tick there. With `--token-column`, a file of many
tokens (symbols, series) is scored token by token, each with its own state, as the function
keeps one per token. Column names are matched exactly, else regardless of case when only one
column fits ("Timestamp" for timestamp); a file without a `timestamp` (or `value`) column,
none named, has its times read from the one column named as times are (time, date,
datetime, ts, ...) and its series from the one column left besides them and its labels
(TIME_NAMES, NOT_SERIES), as stderr says. A line of empty cells or spaces is written back
unscored. Lines end in a line feed, not CRLF. Every bad row is reported before anything
is written.

    kades score prices.csv --output scored.csv --timestamp-column time --value-column close \
        --volume-column volume
    kades score - < prices.csv > scored.csv
    kades score klines.csv --timestamp-column open_time --value-column close --token-column symbol
    kades score --dir tapes/ --output-dir scored/
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import math
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_tz
from pathlib import Path
from types import MappingProxyType
from typing import Iterator, Mapping, NamedTuple, TextIO

from kades import exitcodes
from kades.cliutil import (NOT_WHOLE_GZIP, STDIO, csv_delimiter, csv_rows, open_input,
                           open_output, progress as progress_bar)
from kades.temporal.policy import (NO_TRADE, TOO_SOON, LinearUnit, Verdict, new_monitor,
                                   step, too_soon as policy_too_soon,
                                   pull_taken as policy_pull_taken)

MAX_PROBLEMS_SHOWN = 10
COLUMNS = ("anomaly_score", "top_detector", "alert")  # added to every row
# a row too soon after the one before, left out as temporal-analysis leaves it (`scored`)
TOO_SOON_VERDICT = Verdict(score=0.0, top_detector="", alert="", flags=[], left_out=TOO_SOON)
EMPTY = ("", "", "")  # a row without a value
# What real exports write in a cell that has no reading (pandas, R, spreadsheets, SQL)
NO_VALUE = frozenset({"", "nan", "na", "n/a", "null", "none", "#n/a"})


class InputError(ValueError):
    """The CSV cannot be scored: missing columns or unparsable rows (all of them named)."""


# Epoch numbers are told apart by size: seconds reach 1e11 only in the year 5138.
EPOCH_UNITS = ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3))  # (above, divide by): ns, us, ms
MAX_MAGNITUDE = 1e30  # what the event contract lets a tick carry (kades.events.catalogue)


def parse_number(text: str) -> float:
    """A decimal number as a CSV writes one. Python's float also reads "1_000" and digits of
    other scripts ("١٢"), which no export writes as a number: in a value column they are a
    sign of the wrong column, so they are refused."""
    if "_" in text or not text.isascii():
        raise ValueError("not a decimal number")
    return float(text)


# What exports write besides ISO 8601: 2024/1/5 or 2024-1-5 (spreadsheets: the date's parts
# unpadded, slashes), and a zone named after the time ("... UTC": SQL and BigQuery exports)
_LOOSE_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?=$|[ T])")
_LOOSE_CLOCK = re.compile(r"(?<=[ T])(\d{1,2})(?=:\d{2})")
_ZONE_NAME = re.compile(r"\s*(?:Z|UTC|GMT)$", re.IGNORECASE)
_RFC2822_ZONE = re.compile(r"\d{2}:\d{2}(?::\d{2})?\s+(?:[+-]\d{4}|GMT|UTC?|Z)$", re.ASCII)


def parse_time(text: str) -> float:
    """Epoch seconds from ISO 8601 (no offset = UTC; also 2024/1/5 10:00, "... UTC" and
    RFC 2822's "Mon, 01 Jan 2024 00:00:00 GMT"), YYYYMMDD or YYYYMMDDHHMMSS (UTC; see
    _compact_date) or a number: seconds, or milli-, micro- or nanoseconds when too large to
    be seconds (EPOCH_UNITS).

    >>> [parse_time(t) for t in ("2024-01-01T00:00:00Z", "2024/1/1 0:00:00 UTC", "1704067200000",
    ...                          "Mon, 01 Jan 2024 00:00:00 GMT", "2024-01-01 01:00:00+01:00")]
    [1704067200.0, 1704067200.0, 1704067200.0, 1704067200.0, 1704067200.0]
    >>> parse_time("20240101"), parse_time("20240101000000"), parse_time("20240101.5")
    (1704067200.0, 1704067200.0, 20240101.5)
    """
    text = text.strip()
    date = _compact_date(text)
    if date is not None:
        return date
    try:
        number = parse_number(text)
    except ValueError:
        return _parse_moment(text)
    if not math.isfinite(number):
        raise ValueError(f"not a time: {text!r}")
    return next((number / per for above, per in EPOCH_UNITS if abs(number) > above), number)


# YYYYMMDD and YYYYMMDDHHMMSS, as SQL, SAS and Stata exports and logs write a day or a moment.
# Such a value that is a calendar date is read as that date (UTC): read as an epoch number it
# would be a time in 1970-1973 (8 digits, seconds) or in the years 2286-5138 (14 digits,
# milliseconds), which no recording holds, so the date is what it means; refusing it would
# turn away a file that is plain to read. A column mixing such dates with other numbers (a
# count of seconds passing 10,000,000) is refused in _rows, as neither reading fits all.
_COMPACT_DATE = re.compile(r"\d{8}(?:\d{6})?", re.ASCII)
_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d*)?", re.ASCII)  # what epoch columns and counts hold


def _compact_date(text: str) -> float | None:
    """Epoch seconds of an 8- or 14-digit integer that is a calendar date, YYYYMMDD or
    YYYYMMDDHHMMSS in UTC; None for any other text."""
    if not _COMPACT_DATE.fullmatch(text):
        return None
    month_on = [int(text[at:at + 2]) for at in range(4, len(text), 2)]
    try:
        return datetime(int(text[:4]), *month_on, tzinfo=timezone.utc).timestamp()
    except ValueError:  # 20241301, 20240230: no date, an epoch number as before
        return None


def _parse_moment(text: str) -> float:
    refused = ValueError(f"not an ISO 8601 time or epoch number: {text!r}")
    if not text.isascii():  # digits of other scripts, which \d and int() would take
        raise refused
    iso = _ZONE_NAME.sub("+00:00", text)
    iso = _LOOSE_DATE.sub(lambda m: f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}", iso, count=1)
    iso = _LOOSE_CLOCK.sub(lambda m: f"{int(m[1]):02d}", iso, count=1)
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        moment = _rfc2822(text)
        if moment is None:
            raise refused from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _rfc2822(text: str) -> datetime | None:
    """RFC 2822's time (mail and HTTP logs), only with a numeric zone or one it names as UTC
    (GMT, UT, UTC, Z): email's parser reads an unknown zone (CET, IST) and a trailing AM/PM
    as UTC, hours off."""
    if not _RFC2822_ZONE.search(text):
        return None
    parts = parsedate_tz(text)
    if parts is None:
        return None
    try:
        return datetime(*parts[:6], tzinfo=timezone(timedelta(seconds=parts[9] or 0)))
    except (ValueError, OverflowError):
        return None


def delimiter(path: Path) -> str:
    """The field separator of the CSV at `path`, as its header line shows (csv_delimiter)."""
    with open_input(str(path), newline="") as handle:
        return csv_delimiter(handle.readline())


class Columns(NamedTuple):
    """Which column holds what (names are matched without the spaces around them:
    "timestamp, value" is a common header; and regardless of case when no name matches
    exactly and one does so: "Timestamp,Value" too). `token`: a column naming the series
    each row belongs to, in a file of many tokens."""
    time: str = "timestamp"
    value: str = "value"
    volume: str | None = None
    liquidity: str | None = None
    token: str | None = None

    def extra(self) -> dict[str, str]:
        """The optional fields the detectors use, by the column that holds each."""
        return {name: column.strip() for name, column in (("volume", self.volume),
                                                          ("liquidity", self.liquidity)) if column}


# When a file has no `timestamp` (or `value`) column and none was named, which it reads
# instead. Names are compared by their letters and digits alone, regardless of case. Times:
# the one column named as public corpora and exports name them (NAB's timestamp, Yahoo S5's
# timestamps, SKAB's datetime, a price export's Date, ts). The series: the one column left
# besides the times, the other named columns, a row number and the labels a labelled corpus
# keeps beside it (is_anomaly, label, changepoint, ...), which are never scored. Where two
# could be either, none is taken, and the error names them and the option to choose.
TIME_NAMES = frozenset({"timestamp", "timestamps", "time", "times", "date", "datetime", "ts"})
NOT_SERIES = frozenset({"label", "labels", "isanomaly", "anomaly", "anomalies", "isanomalous",
                        "outlier", "isoutlier", "changepoint", "ischangepoint", "class",
                        "target", "groundtruth", "", "index", "unnamed0", "id"})


def _bare(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def choose_columns(path: Path, columns: Columns, *, time: bool, value: bool
                   ) -> tuple[Columns, list[str]]:
    """`columns` with the time column (when `time`: none was named) and the value column
    (when `value`) the file's header lacks replaced by the one it holds instead (TIME_NAMES,
    NOT_SERIES), and what was chosen, to say. InputError when several could be it. A header
    that has the defaults (in any case), or no time column at all, is left as it is: _rows
    names what is missing."""
    with _readable_text(path), open_input(str(path), newline="") as handle:
        header = csv_rows(handle, delimiter(path)).fieldnames or []
    chosen, said = {}, []
    if time and not any(name.casefold() == columns.time.strip().casefold() for name in header):
        timed = [name for name in header if _bare(name) in TIME_NAMES]
        if _the_one(timed, columns.time, "the times", "--timestamp-column"):
            chosen["time"] = timed[0]
            said.append(f"no {columns.time!r} column: times read from {timed[0]!r}")
    times = chosen.get("time") or _column(columns.time.strip(), header)
    if (value and times is not None
            and not any(name.casefold() == columns.value.strip().casefold() for name in header)):
        taken = {_bare(name) for name in (times, columns.volume, columns.liquidity,
                                          columns.token) if name}
        # nor the columns an earlier `kades score` added (its output scored again)
        series = [name for name in header if _bare(name) not in taken
                  and _bare(name) not in NOT_SERIES and _bare(name) not in TIME_NAMES
                  and name not in COLUMNS]
        if _the_one(series, columns.value, "the series", "--value-column"):
            chosen["value"] = series[0]
            said.append(f"no {columns.value!r} column: scoring {series[0]!r}")
    return columns._replace(**chosen), said


def _the_one(candidates: list[str], default: str, role: str, option: str) -> bool:
    """Whether one column is a candidate for `role`; InputError when several are."""
    if len(candidates) > 1:
        raise InputError(f"no {default!r} column, and {', '.join(map(repr, candidates))} "
                         f"could each be {role}: name one with {option}")
    return bool(candidates)


def _rows(handle: TextIO, columns: Columns, sep: str = ","
          ) -> Iterator[tuple[int, dict, str | None, float | None, float | None, dict]]:
    """(line number, row, token, time (None for a row of empty cells), value or None when
    the row has none, {volume / liquidity: value}) per row (a cell without a value leaves its
    field out); InputError on no header, missing columns, a row of more or fewer fields than
    the header's, and a timestamp column mixing YYYYMMDD dates with epoch numbers."""
    reader = csv_rows(handle, sep)
    named = reader.fieldnames or []
    if not named:  # csv_rows' empty fieldnames: nothing read, or a blank first line
        raise InputError("the file is empty (no header)" if reader.line_num == 0
                         else "no header: line 1 is blank")
    if twice := sorted({name for name in named if named.count(name) > 1}):
        raise InputError(f"the header names {', '.join(map(repr, twice))} more than once "
                         "(a column would be lost)")
    wanted = {"time": columns.time.strip(), "value": columns.value.strip(), **columns.extra(),
              **({"token": columns.token.strip()} if (columns.token or "").strip() else {})}
    found = {role: _column(name, named) for role, name in wanted.items()}
    missing = [wanted[role] for role, column in found.items() if column is None]
    if missing and all(_is_data(name) for name in named):  # UCR's files: values from line 1
        raise InputError(f"no header: line 1 holds {', '.join(map(repr, named))}, not column "
                         "names; the file needs a first line naming a column of times and one "
                         "of values (e.g. timestamp,value)")
    if missing:
        options = [option for role, option in (("time", "--timestamp-column"),
                                               ("value", "--value-column"))
                   if found[role] is None]
        raise InputError(f"missing column(s) {', '.join(map(repr, missing))}; the header has "
                         f"{', '.join(map(repr, named))}"
                         + (f"; {' and '.join(options)} name"
                            f"{'s the column' if len(options) == 1 else ' the columns'} to read"
                            if options else ""))
    time_column, value_column, token_column = found["time"], found["value"], found.get("token")
    extra = {name: found[name] for name in columns.extra()}
    readings: dict[bool, tuple[int, str]] = {}  # is a date: the first plain number read so
    for row in reader:
        line = reader.line_num
        # A line of separators or spaces only (",,,", as a spreadsheet exports rows it once
        # formatted) holds no time to refuse: it is a row without a value, written back
        # unscored (time None) with the header's fields, so the output keeps the input's rows.
        if not any(cell.strip() for cell in [*row.values(), *row.get(None, [])]
                   if isinstance(cell, str)):
            row.pop(None, None)
            yield line, {name: cell or "" for name, cell in row.items()}, None, None, None, {}
            continue
        if None in row:  # csv.DictReader keeps what is past the header's columns under None
            raise InputError(f"line {line}: {len(row[None])} field(s) more than the header's "
                             f"{len(named)}")
        if None in row.values():  # and fills the fields a short row lacks with None
            raise InputError(f"line {line}: {sum(cell is not None for cell in row.values())} "
                             f"field(s), fewer than the header's {len(named)}")
        fields = {name: _field(parse_number, row, column, line) for name, column in extra.items()
                  if not _no_value(row[column])}
        value = (None if _no_value(row[value_column])
                 else _field(parse_number, row, value_column, line))
        token = row[token_column].strip() if token_column else None
        text = row[time_column].strip()
        if _PLAIN_NUMBER.fullmatch(text):  # one reading for the column (see _compact_date)
            readings.setdefault(_compact_date(text) is not None, (line, text))
            if len(readings) == 2:
                raise InputError(_two_readings(time_column, readings))
        yield line, row, token, _field(parse_time, row, time_column, line), value, fields


def _is_data(name: str) -> bool:
    """Whether a header's name is a number or a time: a line of data, not of names."""
    try:
        parse_time(name)
    except ValueError:
        return False
    return True


def _column(name: str, header: list[str]) -> str | None:
    """The header's name for the column called `name`: itself, else the one name differing
    from it only in case ("Timestamp" for timestamp); None when none, or several, do."""
    if name in header:
        return name
    alike = [each for each in header if each.casefold() == name.casefold()]
    return alike[0] if len(alike) == 1 else None


def _two_readings(column: str, readings: dict[bool, tuple[int, str]]) -> str:
    (date_line, date), (number_line, number) = readings[True], readings[False]
    return (f"{column} holds both dates written as digits (line {date_line}: {date!r}, read as "
            f"{_when(_compact_date(date))}) and epoch numbers (line {number_line}: {number!r}): "
            "neither reading fits every row; write the times one way (ISO 8601 is read one way)")


def _when(seconds: float) -> str:
    """`seconds` as an ISO 8601 time (UTC); as a number beyond the years datetime holds."""
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return f"{seconds:g} s since 1970"


def _no_value(cell: str | None) -> bool:
    return (cell or "").strip().lower() in NO_VALUE


def _field(parse, row: dict, column: str, line: int):
    try:
        value = parse(row[column] or "")
    except (ValueError, TypeError) as error:
        return _Problem(f"line {line}: {column} {row[column]!r} unparsable ({error})")
    if isinstance(value, float) and not math.isfinite(value):
        return _Problem(f"line {line}: {column} {row[column]!r} is not finite")
    if isinstance(value, float) and abs(value) > MAX_MAGNITUDE:
        return _Problem(f"line {line}: {column} {row[column]!r} is beyond ±{MAX_MAGNITUDE:g}")
    return value


class _Problem(str):
    """A field that did not parse, carrying its message."""


class Checked(NamedTuple):
    """What the first pass found: rows, rows without a value, rows earlier than a row of
    their token above them, the tokens (None: the file's one series) with a value <= 0,
    and the file's earliest and latest time. `units`: the unit (LinearUnit) each of those
    tokens with a value <= 0 is scored in."""
    rows: int
    without_value: int
    out_of_order: int
    not_positive: frozenset
    tokens: int
    earliest: float = math.inf
    latest: float = -math.inf
    units: Mapping = MappingProxyType({})


def check(path: Path, columns: Columns = Columns()) -> Checked:
    """First pass over the CSV; InputError naming every unparsable field."""
    problems, rows, without_value, out_of_order, earliest = [], 0, 0, 0, math.inf
    latest: dict[str | None, float] = {}
    not_positive: set[str | None] = set()
    units: defaultdict[str | None, LinearUnit] = defaultdict(LinearUnit)
    with _readable_text(path), open_input(str(path), newline="") as handle:
        for _, _, token, moment, value, fields in _rows(handle, columns, delimiter(path)):
            rows += 1
            without_value += value is None
            if moment is not None and not isinstance(moment, _Problem):
                before = latest.get(token, -math.inf)
                out_of_order += moment < before
                latest[token] = moment if moment > before else before
                earliest = moment if moment < earliest else earliest
            problems += [field for field in (moment, value, *fields.values())
                         if isinstance(field, _Problem)]
            if value is not None and (isinstance(value, _Problem) or value <= 0):
                not_positive.add(token)
            if value is not None and not isinstance(value, _Problem):
                units[token].add(value)
    if problems:
        shown = "\n  ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = (f"\n  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more"
                if len(problems) > MAX_PROBLEMS_SHOWN else "")
        raise InputError(f"{len(problems)} unparsable field(s):\n  {shown}{more}")
    return Checked(rows, without_value, out_of_order, frozenset(not_positive), len(latest),
                   earliest, max(latest.values(), default=-math.inf),
                   {token: units[token].unit for token in not_positive})


class Scored(NamedTuple):
    """What scoring a file did: the rows written, those the policy left out as less than
    MIN_STEP_S after the row it scored before them (of their token), and those it left out
    as bars in which nothing traded (volume 0 at the price before them: policy.no_trade)."""
    rows: int
    too_soon: int
    no_trade: int = 0


def score_file(path: Path, out: TextIO, columns: Columns = Columns(), *,
               progress: bool | None = None, checked: Checked | None = None,
               name: str | None = None) -> Scored:
    """Score one CSV into `out`; the rows written, and left out. `checked`: what `check` said;
    `progress`: a bar on stderr (default: when stderr is a terminal), labelled `name`.
    Each token's rows go through its own monitor (as the function keeps a state per token),
    in time order (a file newest first, or shuffled, is a common export), and are written
    back in file order."""
    checked = checked or check(path, columns)
    monitors: dict[str | None, object] = {}  # looked up per row: `.get(t) or first_row(t)`
    too_soon = idle = 0

    def first_row(token: str | None):
        # Log values suit prices (scale-free); a series that touches 0 or goes negative is
        # judged on its values themselves, in its unit (LinearUnit).
        monitors[token] = made = new_monitor(log_scale=token not in checked.not_positive)
        return made

    def scored(token: str | None, moment: float, value: float | None, fields: dict):
        nonlocal too_soon, idle
        monitor = monitors.get(token) or first_row(token)
        unit = checked.units.get(token)
        if unit is not None and value is not None:
            value /= unit
        if value is None:  # a gap: no tick, nothing learned, nothing to say
            return EMPTY
        # counted apart, as the summary must not call such a row scored: one less than a
        # step after the row before it or not after it (too_soon), a bar without a trade
        x = {"time": moment, "price": value, **fields}
        soon = policy_too_soon(monitor, moment) and not policy_pull_taken(monitor, x)
        # left out unstepped, as temporal-analysis leaves it: a row at the time of the one
        # before went through the policy and was learned (12 % of the pump tapes' trades
        # share a millisecond with the one before; an exact duplicate row cost the next its alert)
        verdict = TOO_SOON_VERDICT if soon else step(monitor, x)
        too_soon += soon
        idle += not soon and verdict.left_out == NO_TRADE
        return f"{verdict.score:.6f}", verdict.top_detector, verdict.alert

    sep = delimiter(path)
    with progress_bar(total=checked.rows, desc=name or path.name, show=progress) as bar:
        in_time_order = None
        if checked.out_of_order:  # every row's columns first, the rows taken by time
            with open_input(str(path), newline="") as handle:
                ticks = [(moment, index, token, value, fields)
                         for index, (_, _, token, moment, value, fields)
                         in enumerate(_rows(handle, columns, sep))]
            in_time_order = [EMPTY] * len(ticks)
            # a row of empty cells (time None, no value: EMPTY) is taken first, scoring nothing
            for moment, index, token, value, fields in sorted(
                    ticks, key=lambda tick: (-math.inf if tick[0] is None else tick[0], tick[1])):
                in_time_order[index] = scored(token, moment, value, fields)
                bar.update()
        with open_input(str(path), newline="") as handle:
            writer = None
            for index, (_, row, token, moment, value, fields) in enumerate(
                    _rows(handle, columns, sep)):
                if writer is None:
                    # a file scored before gets its columns anew, not twice; lines end in
                    # "\n" as text files do here (DictWriter's default is "\r\n")
                    writer = csv.DictWriter(out, [*row, *(c for c in COLUMNS if c not in row)],
                                            delimiter=sep, lineterminator="\n")
                    writer.writeheader()
                if in_time_order is None:
                    score, top, alert = scored(token, moment, value, fields)
                    bar.update()
                else:
                    score, top, alert = in_time_order[index]
                row["anomaly_score"], row["top_detector"], row["alert"] = score, top, alert
                writer.writerow(row)
        if writer is None:  # a header and no rows: the header, with the columns added
            with open_input(str(path), newline="") as handle:
                named = csv_rows(handle, sep).fieldnames
            csv.writer(out, delimiter=sep, lineterminator="\n").writerow(
                [*named, *(c for c in COLUMNS if c not in named)])
    return Scored(checked.rows, too_soon, idle)


@contextlib.contextmanager
def _readable(name: str) -> Iterator[Path]:
    """A path to read `name` from three times (the separator, the check, the scoring): stdin,
    and what can be read only once (a pipe, `<(...)`), are spooled to a temporary file first."""
    path = Path(name)
    if name != STDIO and (path.is_file() or not path.exists()):
        yield path  # a missing file is named by the open that fails
        return
    with tempfile.TemporaryDirectory(prefix="kades-score-") as folder:
        spooled = Path(folder) / "input.csv"
        with _readable_text(name), open_input(name, newline="") as source, \
                open(spooled, "w", newline="", encoding="utf-8") as copy:
            shutil.copyfileobj(source, copy)
        yield spooled


@contextlib.contextmanager
def _readable_text(name) -> Iterator[None]:
    """What breaks reading a CSV as text, as an InputError naming it."""
    try:
        yield
    except UnicodeError as error:  # a file's bytes, or stdin's (decoded with surrogates)
        raise InputError(f"not UTF-8 text ({error.reason} at {error.start})") from None
    except csv.Error as error:
        raise InputError(f"not a CSV this can read ({error})") from None
    except NOT_WHOLE_GZIP as error:
        raise InputError(f"not a whole gzip file ({error})") from None


def main_score(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kades score", description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", help="the CSV to score ('-' for stdin)")
    parser.add_argument("--output", "-o", default=STDIO,
                        help="where to write the scored CSV ('-', the default, for stdout)")
    parser.add_argument("--timestamp-column",
                        help="the column of times: ISO 8601 (also 2024/1/5 9:30, '... UTC', "
                             "RFC 2822), YYYYMMDD or YYYYMMDDHHMMSS (UTC), or epoch seconds, "
                             "milli-, micro- or nanoseconds, told apart by size (default: "
                             "timestamp; a name differing only in case is found too; without "
                             "one, the one column named time, date, datetime, ts, ...)")
    parser.add_argument("--value-column",
                        help="the column of the series' values (default: value, else the one "
                             "column besides the times and labels such as is_anomaly); a row "
                             "without one (empty, NaN, NA, null) is written back unscored")
    parser.add_argument("--volume-column",
                        help="a column of traded volume, as the function reads it from ticks "
                             "(volume spikes, pumps); cells without a value are left out")
    parser.add_argument("--liquidity-column",
                        help="a column of pool liquidity (liquidity drops); cells without a value "
                             "are left out")
    parser.add_argument("--token-column",
                        help="a column naming the token (symbol, series) of each row, in a file "
                             "of many: each is scored on its own, as the function keeps a "
                             "state per token")
    parser.add_argument("--dir", type=Path,
                        help="score every *.csv in this folder and its subfolders")
    parser.add_argument("--output-dir", type=Path,
                        help="with --dir: where the scored files go (the same relative paths)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a progress bar on stderr (default: when stderr is a terminal)")
    args = parser.parse_args(argv)
    if (args.input is None) == (args.dir is None):
        parser.error("give either INPUT or --dir")
    if args.dir is not None and args.output_dir is None:
        parser.error("--dir needs --output-dir")
    if args.dir is None and args.output_dir is not None:
        parser.error("--output-dir goes with --dir")
    if args.dir is not None and args.output != STDIO:
        parser.error("--output goes with INPUT; with --dir, --output-dir says where files go")
    try:
        jobs = folder_jobs(args.dir, args.output_dir) if args.dir else [(args.input, args.output)]
    except InputError as error:
        print(f"kades score: {error}", file=sys.stderr)
        return exitcodes.FAILURE
    failed = 0
    for source, target in jobs:
        columns = Columns(*(Columns._field_defaults[field] if given is None else given
                            for field, given in (("time", args.timestamp_column),
                                                 ("value", args.value_column))),
                          args.volume_column, args.liquidity_column, args.token_column)
        try:
            with _readable(source) as path:
                columns, chosen = choose_columns(path, columns,
                                                 time=args.timestamp_column is None,
                                                 value=args.value_column is None)
                for said in chosen:  # before check: its errors name the columns chosen
                    print(f"kades score: {source}: {said}", file=sys.stderr)
                checked = check(path, columns)  # before any output is opened
                if args.dir:  # (an --output-dir that is a file: this file's failure, said)
                    Path(target).parent.mkdir(parents=True, exist_ok=True)
                with open_output(target, newline="") as out:
                    done = score_file(path, out, columns, progress=args.progress, checked=checked,
                                      name="stdin" if source == STDIO else source)
            said = summary(done, checked, by_token=bool(args.token_column))
            print(f"kades score: {source}: {said}" + ("" if target == STDIO else f" -> {target}"),
                  file=sys.stderr)
            for warning in advice(done, checked):
                print(f"kades score: {source}: warning: {warning}", file=sys.stderr)
        except BrokenPipeError:
            raise  # the reader left (`| head`): kades.cli ends quietly
        except (InputError, OSError) as error:
            print(f"kades score: {source}: {error}", file=sys.stderr)
            failed += 1
    if args.dir:
        print(f"kades score: {len(jobs) - failed} of {len(jobs)} files scored -> "
              f"{args.output_dir}", file=sys.stderr)
    return exitcodes.FAILURE if failed else exitcodes.OK


def summary(done: Scored, checked: Checked, *, by_token: bool) -> str:
    """What was scored, and how the file's gaps, order and sub-second rows were taken."""
    gaps, disorder, too_soon = checked.without_value, checked.out_of_order, done.too_soon
    of_token = " of their token" if by_token else ""
    parts = [f"{done.rows - gaps - too_soon - done.no_trade} rows scored"
             + (f" in {checked.tokens} tokens" if by_token else "")]
    if too_soon:
        parts.append(f"{too_soon} less than 1 s after the scored row before them{of_token} "
                     "not scored (score 0)")
    if done.no_trade:
        parts.append(f"{done.no_trade} with volume 0 at the value of the scored row before "
                     f"them{of_token} not scored (no trade, score 0)")
    if gaps:
        parts.append(f"{gaps} without a value written back unscored")
    if disorder:
        parts.append(f"{disorder} earlier than a row above them{of_token}"
                     ": scored in time order, written back in file order")
    return ", ".join(parts)


MIN_SPAN_S = 60.0  # a whole file within less is likely no column of times (see advice)
YEAR_S = 365 * 86400.0


def advice(done: Scored, checked: Checked) -> list[str]:
    """What the summary's counts do not make plain: all of a file's times within a minute
    (a column that is no times, or too short a recording), or most of its rows left out as
    sub-second (a recording faster than the detectors step)."""
    span = checked.latest - checked.earliest
    if done.rows > 1 and span < MIN_SPAN_S:  # said first: aggregating would not mend it
        in_1970 = 0 <= checked.earliest and checked.latest < YEAR_S
        return [f"all {done.rows} timestamps fall within {span:.3g} s ({_when(checked.earliest)} "
                f"to {_when(checked.latest)}): "
                + ("are they times? Excel serial dates (days since 1900, as 45292.0007) are "
                   "read as epoch seconds, in 1970; write ISO 8601 times or epoch seconds"
                   if in_1970 else "too short a recording for the detectors to learn from")]
    with_value = done.rows - checked.without_value
    if done.too_soon > with_value / 2:
        return [f"most rows ({done.too_soon} of {with_value}) are less than 1 s after the row "
                "before them and were not scored: the detectors step in whole seconds, as "
                "temporal-analysis does; aggregate the file to 1 s rows (e.g. each second's "
                "last value) to score it"]
    return []


def folder_jobs(folder: Path, output_dir: Path) -> list[tuple[str, str]]:
    """(source, target) for every *.csv under `folder` at any depth (a corpus kept in folders
    by kind, as NAB's data/<kind>/*.csv), each scored to the same relative path under
    `output_dir`; what is already under `output_dir` (an earlier run's output) is left out.
    InputError when `folder` is not one or holds no CSV."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    written = output_dir.resolve()
    # an earlier run's output left out only where it lies inside the folder scored (an
    # output folder holding the input folder, `--output-dir .`, left nothing to score)
    inside = folder.resolve() in written.parents
    # the suffix in any case: Windows tools write DATA.CSV, which rglob("*.csv") leaves out;
    # gzipped ones too (trade tapes ship as .csv.gz), written back unzipped
    sources = [path for path in sorted(folder.rglob("*"))
               if path.name.lower().endswith((".csv", ".csv.gz")) and path.is_file()
               and not (inside and written in path.resolve().parents)]
    if not sources:
        raise InputError(f"{folder}: no *.csv in it or in its subfolders (nor *.csv.gz)")
    return [(str(path), str(output_dir / _unzipped(path.relative_to(folder))))
            for path in sources]


def _unzipped(relative: Path) -> Path:
    """The output path of an input file: a .csv.gz is written as the .csv it holds."""
    return relative.with_suffix("") if relative.suffix.lower() == ".gz" else relative
