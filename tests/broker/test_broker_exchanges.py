"""The unordered Triggers' one-thread HTTP (kades.broker.exchanges): many requests in flight
at once, a slow one holding back none of the others, and answers read whole however their
bytes arrive. The rules it shares with the blocking pool are tested on both in
test_broker_http.py."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from kades.broker.exchanges import Exchanges, parse_answer
from kades.broker.http1 import HeadError
from kades.broker.httpserver import KeepAliveServer

IN_FLIGHT = 8


def serve(app):
    server = KeepAliveServer("127.0.0.1", 0, app, max_body=1 << 16)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def drive(exchanges: Exchanges, got: list, count: int, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while len(got) < count and time.monotonic() < deadline:
        exchanges.poll(0.5)


def test_requests_are_in_flight_at_once_on_one_thread():
    """The server answers none until all of them have arrived: one request at a time would
    never get an answer."""
    everyone = threading.Barrier(IN_FLIGHT, timeout=10)

    def app(environ, start_response):
        body = environ["wsgi.input"].read()
        everyone.wait()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    server = serve(app)
    exchanges, got = Exchanges(), []
    url = f"http://127.0.0.1:{server.server_port}/"
    for number in range(IN_FLIGHT):
        exchanges.start(url, {}, b"n%d" % number, timeout_s=10, answered=got.append)
    assert len(exchanges) == IN_FLIGHT
    drive(exchanges, got, IN_FLIGHT)
    assert sorted(answer.body for answer in got) == sorted(b"n%d" % n for n in range(IN_FLIGHT))
    assert len(exchanges) == 0 and exchanges.opened == IN_FLIGHT
    # kept alive: the next round reuses them
    for number in range(IN_FLIGHT):
        exchanges.start(url, {}, b"m%d" % number, timeout_s=10, answered=got.append)
    drive(exchanges, got, 2 * IN_FLIGHT)
    assert len(got) == 2 * IN_FLIGHT and exchanges.opened == IN_FLIGHT
    exchanges.close()
    server.shutdown()
    server.close()


def test_a_request_that_times_out_holds_back_no_other():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never answers
    server = serve(lambda environ, start_response: (start_response("202 Accepted", [
        ("Content-Length", "0")]), [b""])[1])
    exchanges, got = Exchanges(), []
    began = time.monotonic()
    exchanges.start(f"http://127.0.0.1:{silent.getsockname()[1]}/", {}, b"", timeout_s=1.0,
                    answered=lambda answer: got.append(("silent", answer, time.monotonic())))
    exchanges.start(f"http://127.0.0.1:{server.server_port}/", {}, b"", timeout_s=1.0,
                    answered=lambda answer: got.append(("server", answer, time.monotonic())))
    drive(exchanges, got, 2)
    (first, answer, at), (second, error, timed_out) = got
    assert (first, answer.status) == ("server", 202) and at - began < 0.5
    assert second == "silent" and isinstance(error, OSError) and "time" in str(error).lower()
    assert 0.9 < timed_out - began < 2.0
    exchanges.close()
    server.shutdown()
    server.close()
    silent.close()


ANSWERS = [
    # (bytes, status, body, close afterwards)
    (b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 202, b"", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", 200, b"hello", False),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, b"ok", False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3\r\nabc\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n", 200, b"abc0123456789abcdef", False),
    (b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", 204, b"", True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, b"x", True),
]


@pytest.mark.parametrize("raw, status, body, close", ANSWERS)
def test_an_answer_is_whole_only_with_its_last_byte(raw, status, body, close):
    """However the bytes come (each prefix), the answer is read only once it is whole, and a
    connection closed inside it is an error, not a shorter answer (a chunked one closed
    in its trailers, after the whole body, is read, as the blocking pool reads it)."""
    for cut in range(len(raw)):
        assert parse_answer(raw[:cut], ended=False) is None, raw[:cut]
        try:
            closed_early = parse_answer(raw[:cut], ended=True)
        except EOFError:
            continue
        last_chunk = raw.rfind(b"\r\n0\r\n") + 2  # its size line: the body is whole from here
        assert 0 < last_chunk < cut and closed_early[0].body == body, raw[:cut]
    for ended in (False, True):
        answer, closes = parse_answer(raw, ended=ended)
        assert (answer.status, answer.body, closes) == (status, body, close)


def test_a_body_up_to_the_close_is_whole_when_the_connection_ends():
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    assert parse_answer(raw, ended=False) is None
    answer, close = parse_answer(raw, ended=True)
    assert (answer.body, close) == (b"all of it", True)


def test_a_head_of_bare_lf_lines_is_read():
    answer, close = parse_answer(b"HTTP/1.1 202 Accepted\nContent-Length: 2\n\nok", ended=False)
    assert (answer.status, answer.body, close) == (202, b"ok", False)


def test_a_malformed_answer_is_an_error():
    with pytest.raises(HeadError):  # a head that never ends is not buffered for ever
        parse_answer(b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"x" * 10_000_000, ended=False)
    with pytest.raises(HeadError):
        parse_answer(b"SMTP ready\r\n\r\n", ended=False)
    with pytest.raises(ValueError):
        parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", ended=False)
