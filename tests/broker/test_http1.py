"""kades.broker.http1: the message heads and bodies both sides of the broker's HTTP read."""
import io

import pytest

from kades.broker.http1 import MAX_HEADERS, MAX_LINE, HeadError, read_body, read_headers


def stream(text: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(text))


def test_headers_lower_cased_stripped_repeats_joined_and_folds_continued():
    rfile = stream(b"Content-Type:  application/json \r\nCe-Id: 1\r\nAccept: a\r\n"
                   b"accept: b\r\nX-Long: one\r\n  two\r\n\r\nbody")
    assert read_headers(rfile) == {"content-type": "application/json", "ce-id": "1",
                                   "accept": "a, b", "x-long": "one two"}
    assert rfile.read() == b"body"  # the head ends at the empty line, nothing more read


def test_bare_newlines_end_a_head_too():
    assert read_headers(stream(b"A: 1\nB: 2\n\n")) == {"a": "1", "b": "2"}


@pytest.mark.parametrize("head, message", [
    (b"no colon here\r\n\r\n", "not a header line"),
    (b": no name\r\n\r\n", "not a header line"),
    (b"X: " + b"a" * MAX_LINE + b"\r\n\r\n", "too long"),
    (b"".join(b"H%d: v\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n", "more than"),
])
def test_malformed_heads_are_refused(head, message):
    with pytest.raises(HeadError, match=message):
        read_headers(stream(head))


def test_a_connection_closed_inside_the_head_or_body_is_eof():
    with pytest.raises(EOFError):
        read_headers(stream(b"A: 1\r\n"))
    with pytest.raises(EOFError):
        read_body(stream(b"abc"), {"content-length": "10"})
    with pytest.raises(EOFError):
        read_body(stream(b"5\r\nab"), {"transfer-encoding": "chunked"})


def test_bodies_by_length_chunks_or_none():
    assert read_body(stream(b"hello!"), {"content-length": "5"}) == b"hello"
    assert read_body(stream(b"ignored"), {}) == b""
    chunked = stream(b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nnext")
    assert read_body(chunked, {"transfer-encoding": "Chunked"}) == b"Wikipedia"
    assert chunked.read() == b"next"  # trailers consumed, the next request left


def test_bodies_over_the_limit_are_not_read_and_bad_lengths_refused():
    rfile = stream(b"x" * 100)
    assert read_body(rfile, {"content-length": "100"}, limit=10) is None
    two_chunks = b"8\r\n" + b"a" * 8 + b"\r\n8\r\n" + b"b" * 8 + b"\r\n0\r\n\r\n"
    chunked = {"transfer-encoding": "chunked"}
    assert read_body(stream(two_chunks), chunked, limit=16) == b"a" * 8 + b"b" * 8
    assert read_body(stream(two_chunks), chunked, limit=10) is None
    for bad in ("-1", "ten"):
        with pytest.raises(ValueError):
            read_body(stream(b""), {"content-length": bad})


@pytest.mark.parametrize("size", [b"-1", b"0x10", b"+10", b"1_0", b"", b" ", b"g"])
def test_a_chunk_size_that_is_not_hex_digits_is_refused_before_anything_is_read(size):
    """int(x, 16) took -1, and read(-1) read the connection to its end past any limit (20 MiB
    through a 1,000-byte limit); 0x10, +10 and 1_0 were read as 16, an empty line as the end."""
    rfile = stream(size + b"\r\n" + b"x" * 64 + b"\r\n0\r\n\r\n")
    with pytest.raises(ValueError, match="malformed chunk size"):
        read_body(rfile, {"transfer-encoding": "chunked"}, limit=10)
    assert len(rfile.read()) > 64  # the body after the size line was never read


@pytest.mark.parametrize("length", ["+5", "5_0", " 5", "5.0", "1" * 20])
def test_a_content_length_that_is_not_decimal_digits_is_refused(length):
    with pytest.raises(ValueError, match="malformed Content-Length"):
        read_body(stream(b"x" * 100), {"content-length": length})
