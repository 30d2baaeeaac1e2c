"""HTTP/1.1 message heads, read the cheap way, for both sides of the broker's HTTP.

`http.client` and `http.server` parse every header block with the `email` package (a
feed parser building a `Message`), which was the largest single cost of a kept-alive
exchange in the broker's profile (docs/performance.md). A head is a line per header up
to an empty line (RFC 9112 §5); that is all this reads: names lower-cased, values
stripped, obsolete line folding joined, bounded in line length and count.
"""
from __future__ import annotations

import re

MAX_LINE = 65536
MAX_HEADERS = 100
# RFC 9112: a chunk size is hex digits (7.1), a Content-Length decimal ones (8.6)
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,19}")


class HeadError(ValueError):
    """A head that is not HTTP/1.1: too long, too many headers, a line without a colon."""


def read_headers(rfile) -> dict[str, str]:
    """The header lines up to the empty one, as {lower-case name: value}; a repeated name
    joins its values with ", " (RFC 9110 §5.3). Raises HeadError on a malformed head and
    EOFError when the connection ends inside it."""
    headers: dict[str, str] = {}
    name = None
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise HeadError("header line too long")
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise EOFError("connection closed inside the head")
        text = line.decode("latin-1")
        if text[0] in " \t" and name is not None:  # obs-fold: continues the last value
            headers[name] = f"{headers[name]} {text.strip()}"
            continue
        raw, sep, value = text.partition(":")
        if not sep or not raw.strip():
            raise HeadError(f"not a header line: {text.strip()[:80]!r}")
        name, value = raw.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise HeadError(f"more than {MAX_HEADERS} headers")


def read_body(rfile, headers: dict[str, str], limit: int | None = None) -> bytes | None:
    """The body a head announces: chunked (trailers skipped), else Content-Length bytes,
    else none. None when it is larger than `limit` (then not read). Raises ValueError
    on a malformed length and EOFError when the connection ends inside the body."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks, size = [], 0
        while True:
            line = rfile.readline(MAX_LINE + 1)
            if not line:
                raise EOFError("connection closed inside a chunked body")
            # hex digits only: int(x, 16) also took -1 (then read to the end, past any
            # limit), 0x10 and 1_0, and an empty line as 0
            size_field = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_field):
                raise ValueError(f"malformed chunk size {size_field[:20]!r}")
            length = int(size_field, 16)
            if length == 0:
                while rfile.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            size += length
            if limit is not None and size > limit:
                return None
            chunks.append(_exactly(rfile, length))
            rfile.readline(3)  # the CRLF after the chunk
    declared = headers.get("content-length") or "0"
    if not _DIGITS.fullmatch(declared):  # int() also took +5, 5_0 and -1
        raise ValueError(f"malformed Content-Length {declared[:20]!r}")
    length = int(declared)
    if limit is not None and length > limit:
        return None
    return _exactly(rfile, length) if length else b""


def _exactly(rfile, length: int) -> bytes:
    data = rfile.read(length)
    if len(data) < length:
        raise EOFError("connection closed inside the body")
    return data
