"""A real HTTP/1.1 server on a loopback port for the http sink's tests and benchmark: Python's ``http.server`` in
threads, keep-alive on, answering each POST with a status the test chooses and recording what it received.

The status of a request is, in order: a body of the form ``<code>:<text>`` answers ``<code>``; else the next code
of ``script`` (a list the test fills); else ``default``. ``delay`` seconds are waited before answering, and
``close_after`` makes the server close each connection after that many requests without saying so (no
``Connection: close``), as a server does whose idle timeout expired: the client finds out on its next request.
Run as ``python -m peers.http_endpoint PORT`` it serves 200 to everything; ``--count PORT`` runs the faster
counting endpoint of the benchmark (:func:`serve_counting`).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Request", "HttpEndpoint"]

_CODED = re.compile(rb"^(\d{3}):")


@dataclass
class Request:
    body: bytes
    headers: dict[str, str]
    connection: tuple[str, int]  # the client's address: one per TCP connection
    status: int


@dataclass
class HttpEndpoint:
    default: int = 200
    delay: float = 0.0
    close_after: int = 0
    record: bool = True
    script: list[int] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    count: int = 0

    def start(self, port: int = 0, tls: tuple[str, str] | None = None) -> "HttpEndpoint":
        """Listen on 127.0.0.1:``port`` (0: a free one); ``tls`` = (certificate, key) PEM files serves HTTPS."""
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive
            wbufsize = 1 << 16  # the status line, headers and body leave in one segment
            disable_nagle_algorithm = True
            served = 0

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint._answer(self, body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up on an answer (the timeout tests) is not news

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        if tls:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/events"
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.server.serve_forever, name="http-endpoint", daemon=True)
        self._thread.start()
        return self

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        m = _CODED.match(body)
        with self._lock:
            if m:
                status = int(m.group(1))
            elif self.script:
                status = self.script.pop(0)
            else:
                status = self.default
            self.count += 1
            if self.record:
                self.requests.append(Request(body, dict(handler.headers), handler.client_address, status))
        if self.delay:
            time.sleep(self.delay)
        handler.served += 1  # type: ignore[attr-defined]
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", "2")
        closing = self.close_after and handler.served >= self.close_after  # type: ignore[attr-defined]
        handler.end_headers()
        handler.wfile.write(b"ok")
        handler.wfile.flush()
        if closing:
            handler.close_connection = True

    def bodies(self) -> list[bytes]:
        with self._lock:
            return [r.body for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Counting:
    """The benchmark's endpoint: an asyncio HTTP/1.1 server, keep-alive, that answers every POST 200 at once and
    counts the decimal ids of the bodies (seq's events), and answers ``GET /stats`` with JSON: requests, distinct
    ids, duplicates. Much faster than http.server, so that it is not what a benchmark measures."""

    def __init__(self) -> None:
        self.requests = 0
        self.ids: set[int] = set()
        self.duplicates = 0

    def protocol(self):  # noqa: ANN201 - an asyncio.Protocol factory
        import asyncio
        import json

        server = self

        class Proto(asyncio.Protocol):
            def connection_made(self, transport) -> None:  # noqa: ANN001
                self.transport = transport
                self.buf = b""

            def data_received(self, data: bytes) -> None:
                buf = self.buf + data
                out = []
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = buf[:end]
                    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                    length = int(m.group(1)) if m else 0
                    if len(buf) < end + 4 + length:
                        break
                    body = buf[end + 4:end + 4 + length]
                    buf = buf[end + 4 + length:]
                    if head.startswith(b"GET /stats"):
                        page = json.dumps({"requests": server.requests, "distinct": len(server.ids),
                                           "duplicates": server.duplicates}).encode()
                        out.append(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d"
                                   b"\r\n\r\n%s" % (len(page), page))
                        continue
                    server.requests += 1
                    try:
                        n = int(body)
                    except ValueError:
                        n = -1
                    if n in server.ids:
                        server.duplicates += 1
                    else:
                        server.ids.add(n)
                    out.append(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                self.buf = buf
                if out:
                    self.transport.write(b"".join(out))

        return Proto


def serve_counting(port: int) -> None:
    import asyncio

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Counting().protocol(), "127.0.0.1", port)
        print(f"listening on {port}", flush=True)
        await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":
    if sys.argv[1] == "--count":
        serve_counting(int(sys.argv[2]))
    else:
        server = HttpEndpoint(record=False).start(int(sys.argv[1]))
        print(f"listening on {server.port}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            server.stop()
