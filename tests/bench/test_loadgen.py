"""The benchmarks' load generator counts what the server answered, whole answers only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import loadgen


class _Answer(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 202 if body.startswith(b"ok") else 401
        answer = b'{"accepted": true}' * 200  # longer than one read: the client must wait for all of it
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _request(port: int, body: bytes) -> bytes:
    head = f"POST /x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def test_each_request_is_sent_once_and_its_status_counted(server: int) -> None:
    requests = [_request(server, b"ok %d" % i if i % 4 else b"bad") for i in range(120)]
    result = loadgen.run("127.0.0.1", server, requests, concurrency=8, seconds=30, processes=2)
    assert result.statuses == {202: 90, 401: 30}
    assert (result.requests, result.errors) == (90, 30)
    assert len(result.latencies_ms) == 120 and all(ms > 0 for ms in result.latencies_ms)


def test_a_refused_connection_is_an_error_not_a_hang() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = loadgen.run("127.0.0.1", port, [_request(port, b"ok")] * 4, concurrency=2, seconds=5)
    assert result.statuses == {0: 4} and result.requests == 0
