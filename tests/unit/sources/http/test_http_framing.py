"""The http source's request framing on a real socket: the request line and header block as
BaseHTTPRequestHandler checks them, answered the same way; headers as handlers see them (case-insensitive,
folded lines joined); pipelined keep-alive requests; malformed header blocks answered 400 or 431."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from sources.http.framing import serve_connection
from sources.http.handlers import HTTPRequest


class _Source:
    """What serve_connection needs of the http source: settings, a logger, and ``answer``, which records each
    request and answers 200."""

    name = "r1"
    idle_timeout = 5.0
    send_date = True
    send_server = False
    log = logging.getLogger("test_http_framing")

    def __init__(self) -> None:
        self.requests: list[HTTPRequest] = []

    def answer(self, request: HTTPRequest) -> tuple[int, str]:
        self.requests.append(request)
        return 200, ""


def _exchange(raw: bytes) -> tuple[bytes, list[HTTPRequest]]:
    """Send ``raw``, half-close, and return everything answered until the server closed, and the requests."""
    source = _Source()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, addr = listener.accept()

    def serve() -> None:  # as the source's listener does: the connection is closed once served
        with server:
            serve_connection(server, addr, source)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        client.sendall(raw)
        client.shutdown(socket.SHUT_WR)
        client.settimeout(5)
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    finally:
        thread.join(5)
        client.close()
    return b"".join(chunks), source.requests


def _statuses(answer: bytes) -> list[int]:
    return [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.")]


def test_headers_are_case_insensitive_and_folded_lines_join_their_field():
    answer, requests = _exchange(b"POST /p?q=1 HTTP/1.1\r\nHost: x\r\ncontent-TYPE: application/json;"
                                 b" charset=UTF-16\r\nX-Long: one\r\n  two\r\n\tthree\r\nX-Twice: a\r\nX-Twice: b"
                                 b"\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
    assert _statuses(answer) == [200] and b"Connection: close" in answer and b"Date: " in answer
    (request,) = requests
    assert (request.method, request.path, request.query, request.body) == ("POST", "/p", "q=1", b"abc")
    assert request.content_type == "application/json; charset=UTF-16" and request.charset == "utf-16"
    assert request.headers["x-long"] == "one two three"
    assert request.headers.get_all("X-TWICE") == ["a", "b"]


def test_pipelined_keep_alive_requests_are_answered_in_order():
    one = b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]"
    chunked = b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n1\r\n]\r\n0\r\n\r\n"
    answer, requests = _exchange(one + chunked + one)
    assert _statuses(answer) == [200, 200, 200]
    assert [(r.path, r.body) for r in requests] == [("/a", b"[]"), ("/b", b"[]"), ("/a", b"[]")]
    assert requests[0].charset is None


def test_expect_100_continue_gets_the_interim_answer_first():
    answer, requests = _exchange(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
    assert _statuses(answer) == [100, 200] and requests[0].body == b"x"


def test_http_1_0_closes_after_its_answer_unless_kept_alive():
    answer, requests = _exchange(b"POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n" * 2)
    assert _statuses(answer) == [200] and len(requests) == 1
    answer, requests = _exchange(b"POST / HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n" * 2)
    assert _statuses(answer) == [200, 200] and len(requests) == 2


@pytest.mark.parametrize("raw,status", [
    (b"POST / HTTP/2.0\r\n\r\n", 505),
    (b"POST / HTTP/1.x\r\n\r\n", 400),
    (b"POST / FTP/1.1\r\n\r\n", 400),
    (b"POST / HTTP/1.1 extra\r\n\r\n", 400),
    (b"POST /\r\n\r\n", 400),  # HTTP/0.9 knows only GET
    (b"POST / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n: no name\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\n folded first\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nX: " + b"y" * 70_000 + b"\r\n\r\n", 431),
    (b"POST / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
])
def test_malformed_requests_are_refused_and_never_reach_the_handler(raw: bytes, status: int):
    answer, requests = _exchange(raw)
    assert _statuses(answer)[:1] == [status] and requests == []


def test_a_hundred_header_lines_are_still_fine():
    answer, requests = _exchange(b"POST / HTTP/1.1\r\n" + b"X: y\r\n" * 99 + b"Content-Length: 0\r\n\r\n")
    assert _statuses(answer) == [200] and len(requests[0].headers.get_all("x")) == 99
