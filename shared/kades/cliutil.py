"""What every `kades` subcommand shares: `-` for stdin/stdout, progress bars, and the one-line
report of an unreachable dependency (exit code 3, never a password, never a traceback).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import math
import os
import re
import sys
import tempfile
import zlib
from pathlib import Path
from typing import IO, ContextManager, Iterable, Iterator

from kades import exitcodes
from kades.settings import DSN_PASSWORD, database_url_problem, redis_url_problem, shown_url

STDIO = "-"  # as a file name: stdin when reading, stdout when writing

# `scheme://user:password@` anywhere in a message (what a driver's error may quote back), and
# a key in a query string (`?api-key=...`, as Solana RPC providers hand out).
_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*):[^\s/]*@", re.IGNORECASE)
_QUERY_KEYS = re.compile(r"([?&](?:api[-_]?key|key|token|secret|password)=)[^&\s#]+",
                         re.IGNORECASE)


def open_input(name: str, *, newline: str | None = None) -> ContextManager[IO[str]]:
    """`name` opened for reading UTF-8 text (a leading byte order mark, as spreadsheets write,
    skipped); `-` is stdin (left open when the block ends), read as strictly: Python's own
    stdin turns bytes that are no UTF-8 into surrogates that fail only when written out."""
    if name == STDIO:
        buffer = getattr(sys.stdin, "buffer", None)  # None: a test's StringIO
        return contextlib.nullcontext(sys.stdin if buffer is None else io.TextIOWrapper(
            buffer, encoding="utf-8-sig", newline=newline))
    if os.path.isfile(name) and _gzipped(name):  # (a pipe is read once: not probed)
        return gzip.open(name, "rt", encoding="utf-8-sig", newline=newline)
    return open(name, encoding="utf-8-sig", newline=newline)


def _gzipped(name: str) -> bool:
    """Whether the file is gzip's (trade tapes and exports ship as .csv.gz)."""
    with open(name, "rb") as probe:
        return probe.read(2) == GZIP_MAGIC


GZIP_MAGIC = b"\x1f\x8b"
# What reading a .gz cut short (EOFError) or damaged (zlib.error) raises: neither is an OSError
NOT_WHOLE_GZIP = (EOFError, zlib.error)
CSV_DELIMITERS = ",;\t|"


def csv_delimiter(header: str) -> str:
    """The field separator a CSV's header line shows: whichever of CSV_DELIMITERS it holds most
    often outside quoted names (a comma when none: one column). SKAB's recordings and many
    European spreadsheet exports use semicolons.

    >>> csv_delimiter("datetime;Current;anomaly"), csv_delimiter("a,b;c,d"), csv_delimiter("text")
    (';', ',', ',')
    >>> csv_delimiter('"time, UTC";"price, USD";volume')
    ';'
    """
    unquoted = re.sub(r'"[^"]*"', "", header)  # "a, b" is one name, whatever the separator
    counts = {sep: unquoted.count(sep) for sep in CSV_DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def csv_rows(lines: Iterable[str], sep: str) -> csv.DictReader:
    """A DictReader whose field names are the header's without the spaces around them
    ("id, text" is a common header); empty fieldnames when there is no header."""
    reader = csv.DictReader(lines, delimiter=sep)
    reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
    return reader


def open_output(name: str, *, newline: str | None = None) -> ContextManager[IO[str]]:
    """`name` opened for writing UTF-8 text; `-` is stdout (left open when the block ends).
    A regular file is written beside itself and takes its place only when the block ends
    without an error: a failure or Ctrl-C leaves what was there, and an output that is also
    the input is read whole before it is replaced. A symbolic link is followed to its file.
    A device, pipe or /proc entry, a file this user may not write, or one in a folder it may
    not write, is written directly, as before."""
    if name == STDIO:
        return contextlib.nullcontext(sys.stdout)
    target = Path(os.path.realpath(name))
    special = any(Path(path).parts[1:2] in (("dev",), ("proc",))  # /dev/stdout is the shell's
                  for path in (os.path.abspath(name), target))      # file: it must stay its own
    if (special or target.exists() and (not target.is_file() or not os.access(target, os.W_OK))
            or not os.access(target.parent, os.W_OK)):
        return open(name, "w", encoding="utf-8", newline=newline)
    return _replacing(target, newline)


@contextlib.contextmanager
def _replacing(target: Path, newline: str | None) -> Iterator[IO[str]]:
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                         dir=target.parent)
    try:
        with open(handle, "w", encoding="utf-8", newline=newline) as stream:
            os.fchmod(handle, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_UMASK)
            yield stream
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _read_umask() -> int:  # at import, before any thread: os.umask can only be read by setting it
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def bounded(convert, low: float, high: float, what: str):
    """An argparse type: the text as `convert` makes it, from `low` to `high`, else a usage
    error saying what was expected (NaN is never within them)."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


def redis_url(text: str) -> str:
    """An argparse type for --redis-url: checked as KADES_REDIS_URL is (kades.settings)."""
    problem = redis_url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{shown_url(text)!r}: {problem}")
    return text


def database_url(text: str) -> str:
    """An argparse type for --database-url: checked as KADES_DATABASE_URL is (kades.settings)."""
    problem = database_url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{shown_url(text)!r}: {problem}")
    return text


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str | None = None,
             unit: str = "rows", show: bool | None = None):
    """A tqdm bar on stderr. By default only when stderr is a terminal: a redirected stderr (a
    log file, CI) would otherwise fill with `\\r` frames. `show` forces it on or off."""
    from tqdm import tqdm  # only the long jobs pay for it

    visible = sys.stderr.isatty() if show is None else show
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=not visible,
                dynamic_ncols=True)


def redact_text(text: str) -> str:
    """`text` with the password (and query-string key) of every URL, and the password of a
    key=value connection string, replaced by `***`."""
    return DSN_PASSWORD.sub(r"\1***", _QUERY_KEYS.sub(r"\1***", _CREDENTIALS.sub(r"\1:***@", text)))


def one_line(error: BaseException) -> str:
    """The error's first line, passwords redacted (psycopg adds a hint on a second line)."""
    lines = str(error).strip().splitlines()
    name = type(error).__name__
    return redact_text(f"{name}: {lines[0]}" if lines else name)


def unreachable(error: BaseException | None) -> bool:
    """Whether `error`, or an error that caused it, says a dependency could not be reached."""
    import httpx
    import psycopg
    import redis

    from kades.clients import ClusterUnreachable
    from kades.errors import TemporaryFailure

    while error is not None:
        if isinstance(error, (redis.ConnectionError, redis.TimeoutError, httpx.TransportError,
                              ClusterUnreachable, TemporaryFailure, ConnectionError,
                              TimeoutError)):
            return True
        if isinstance(error, psycopg.OperationalError):
            # No SQLSTATE: the server never answered (refused, timed out, the pool gave up),
            # unless it turned the connection away (psycopg gives those none either); class
            # 08 is a broken connection and 57P a server shutting down. Any other (a
            # cancelled query, a full disk) came from a server that is there.
            state = error.sqlstate or ""
            if not state:
                return not _TURNED_AWAY.search(str(error))
            return state.startswith(("08", "57P"))
        error = error.__cause__
    return False


# What no wait mends: libpq could not read the settings, or the server refused who or what
# was asked for (a server starting up or full is still an outage)
_TURNED_AWAY = re.compile(
    r'FATAL:\s+(database ".*" does not exist|role ".*" does not exist|password authentication '
    r'failed|no pg_hba\.conf entry|permission denied)|invalid \w+ value|invalid connection '
    r'option|missing "=" after|invalid URI')


def report(prog: str, message: str, code: int = exitcodes.FAILURE) -> int:
    """Print `kades PROG: message` on stderr (passwords redacted); return `code`."""
    print(f"kades {prog}: {redact_text(message)}", file=sys.stderr)
    return code


def report_unreachable(prog: str, what: str, error: BaseException) -> int:
    """One line naming what could not be reached and why; exit code 3 (UNAVAILABLE)."""
    return report(prog, f"{what} is unreachable ({one_line(error)})", exitcodes.UNAVAILABLE)


def report_error(prog: str, what: str, error: BaseException) -> int:
    """An error of `what`: 3 when it means `what` could not be reached, else 1 (FAILURE)."""
    if unreachable(error):
        return report_unreachable(prog, what, error)
    import psycopg
    hint = (" (the database is not migrated: run kades migrate)"
            if isinstance(error, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction))
            else "")
    return report(prog, f"{what}: {one_line(error)}{hint}", exitcodes.FAILURE)
