"""The broker's own HTTP: both its delivery clients (the blocking pool of the ordered Triggers'
workers, the one-thread exchanges of the unordered Triggers' reader) keep connections alive,
survive a server that closed one, bound the whole answer by the timeout; the ingress server
keeps them alive, reads chunked bodies and closes after a 413."""
from __future__ import annotations

import http.client
import socket
import threading

import pytest

from kades.broker.exchanges import Exchanges
from kades.broker.httpserver import KeepAliveServer
from kades.broker.transport import ConnectionPool, Response


class OneThreadClient:
    """`Exchanges` driven to each answer, with the pool's `post` (for the same tests)."""

    def __init__(self):
        self.exchanges = Exchanges()

    @property
    def opened(self) -> int:
        return self.exchanges.opened

    def post(self, url: str, headers: dict, body: bytes, *, timeout_s) -> Response:
        got = []
        self.exchanges.start(url, headers, body, timeout_s=timeout_s, answered=got.append)
        while not got:
            self.exchanges.poll(1.0)
        if isinstance(got[0], OSError):
            raise got[0]
        return got[0]

    def close(self) -> None:
        self.exchanges.close()


@pytest.fixture(params=["pool", "exchanges"])
def client_kind(request):
    return {"pool": ConnectionPool, "exchanges": OneThreadClient}[request.param]


def echo_app(environ, start_response):
    body = environ["wsgi.input"].read()
    if int(environ["CONTENT_LENGTH"] or 0) > len(body):  # over max_body: not read
        start_response("413 Payload Too Large", [("Content-Type", "text/plain")])
        return [b"too large"]
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Path", environ["PATH_INFO"] + "?" + environ["QUERY_STRING"])])
    return [body]


@pytest.fixture
def server():
    made = KeepAliveServer("127.0.0.1", 0, echo_app, max_body=100)
    thread = threading.Thread(target=made.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield made
    made.shutdown()
    made.close()


def test_the_pool_keeps_one_connection_alive(server, client_kind):
    pool = client_kind()
    url = f"http://127.0.0.1:{server.server_port}/a/b?x=1"
    for number in range(5):
        answer = pool.post(url, {"content-type": "text/plain"}, b"n%d" % number, timeout_s=5)
        assert (answer.status, answer.body) == (200, b"n%d" % number)
        assert answer.headers["x-path"] == "/a/b?x=1"
    assert pool.opened == 1
    pool.close()


def test_a_connection_the_server_closed_meanwhile_is_not_a_failure(client_kind):
    """A server that answers one request per connection and then closes it without saying so
    (as gunicorn drops an idle kept-alive connection): every POST still gets its answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve(count: int) -> None:
        for _ in range(count):
            connection, _ = listener.accept()
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(4096)
                connection.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, args=(3,), daemon=True)
    thread.start()
    pool = client_kind()
    for _ in range(3):
        assert pool.post(f"http://127.0.0.1:{port}/", {}, b"", timeout_s=5).status == 202
    assert pool.opened == 3
    thread.join(5)
    listener.close()


def test_after_the_server_restarted_the_retry_takes_a_new_connection(client_kind):
    """Three kept-alive connections, then the server restarts (closing them all): the next
    POST finds one closed and its retry must not take another of the dead ones."""
    together = threading.Barrier(3, timeout=10)

    def app(environ, start_response):
        environ["wsgi.input"].read()
        together.wait()
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]

    def serve(port: int) -> KeepAliveServer:
        made = KeepAliveServer("127.0.0.1", port, app, max_body=100)
        threading.Thread(target=made.serve_forever, args=(0.05,), daemon=True).start()
        return made

    first = serve(0)
    port = first.server_port
    url = f"http://127.0.0.1:{port}/"
    client = client_kind()
    if isinstance(client, OneThreadClient):  # three in flight at once on its one thread
        got = []
        for _ in range(3):
            client.exchanges.start(url, {}, b"", timeout_s=10, answered=got.append)
        while len(got) < 3:
            client.exchanges.poll(1.0)
    else:
        threads = [threading.Thread(target=client.post, args=(url, {}, b""),
                                    kwargs={"timeout_s": 10}) for _ in range(3)]
        [thread.start() for thread in threads]
        [thread.join(10) for thread in threads]
    assert client.opened == 3
    first.shutdown()
    first.close()  # the kept-alive connections end with it
    together = threading.Barrier(1)
    second = serve(port)
    assert client.post(url, {}, b"", timeout_s=5).status == 202
    assert client.opened == 4
    client.close()
    second.shutdown()
    second.close()


def test_the_timeout_bounds_the_whole_answer_not_each_read(client_kind):
    """Knative's dispatcher gives the exchange one deadline (the Trigger's timeout); a socket
    timeout bounds each read alone, and an answer trickled a byte every 0.3 s was read whole."""
    import time
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(4096)
            try:
                for byte in b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n":
                    connection.sendall(bytes([byte]))
                    time.sleep(0.3)
            except OSError:
                pass  # the client gave up: what the test wants
    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    started = time.monotonic()
    with pytest.raises(OSError, match="(?i)time"):
        client_kind().post(f"http://127.0.0.1:{port}/", {}, b"", timeout_s=1.0)
    assert time.monotonic() - started < 2.0
    thread.join(20)
    listener.close()


def test_network_errors_are_oserrors(client_kind):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError):
        client_kind().post(f"http://127.0.0.1:{port}/", {}, b"", timeout_s=2)
    with pytest.raises(OSError):
        client_kind().post("ftp://example.test/", {}, b"", timeout_s=2)


def test_the_ingress_server_keeps_connections_alive_and_reads_chunked_bodies(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    connection.request("POST", "/one", body=b"first")
    answer = connection.getresponse()
    assert (answer.status, answer.read(), answer.will_close) == (200, b"first", False)
    connection.request("POST", "/two", body=iter([b"sec", b"ond"]), encode_chunked=True,
                       headers={"Transfer-Encoding": "chunked"})
    answer = connection.getresponse()
    assert (answer.status, answer.read(), answer.will_close) == (200, b"second", False)
    connection.close()


def test_a_body_over_the_limit_is_not_read_and_the_connection_closes(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    connection.request("POST", "/", body=b"x" * 101)
    answer = connection.getresponse()
    assert (answer.status, answer.read(), answer.will_close) == (413, b"too large", True)
    connection.close()


def test_close_ends_the_open_connections(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    connection.request("POST", "/", body=b"x")
    assert connection.getresponse().read() == b"x"
    server.shutdown()
    server.close()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        connection.request("POST", "/", body=b"y")
        connection.getresponse()
    connection.close()


def test_every_address_of_the_name_is_tried(server, client_kind, monkeypatch):
    """A name whose first address refuses (localhost resolving to ::1 first, the subscriber
    listening on 127.0.0.1 only) is reached at its next one, as socket.create_connection
    does."""
    port, resolve = server.server_port, socket.getaddrinfo
    with socket.socket() as probe:  # a port nobody listens on, for the first address
        probe.bind(("127.0.0.1", 0))
        refused = probe.getsockname()[1]

    def first_refuses(host, wanted_port, *args, **kwargs):
        if host != "subscriber.test":
            return resolve(host, wanted_port, *args, **kwargs)
        return (resolve("127.0.0.1", refused, type=socket.SOCK_STREAM)
                + resolve("127.0.0.1", port, type=socket.SOCK_STREAM))

    monkeypatch.setattr(socket, "getaddrinfo", first_refuses)
    client = client_kind()
    answer = client.post(f"http://subscriber.test:{port}/x", {}, b"hi", timeout_s=5)
    assert (answer.status, answer.body) == (200, b"hi")
    client.close()
