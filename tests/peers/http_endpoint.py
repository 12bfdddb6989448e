"""A real HTTP/1.1 server on a loopback port for the http sink's tests and benchmark: Python's ``http.server`` in
threads, keep-alive on, answering each POST with a status the test chooses and recording what it received.

The status of a request is, in order: a body of the form ``<code>:<text>`` answers ``<code>``; else the next code
of ``script`` (a list the test fills); else ``default``. ``delay`` seconds are waited before answering, and
``close_after`` makes the server close each connection after that many requests without saying so (no
``Connection: close``), as a server does whose idle timeout expired: the client finds out on its next request.
Run as ``python -m peers.http_endpoint PORT`` it serves 200 to everything (the benchmark's endpoint).
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

    def start(self, port: int = 0) -> "HttpEndpoint":
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
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/events"
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


if __name__ == "__main__":
    server = HttpEndpoint(record=False).start(int(sys.argv[1]))
    print(f"listening on {server.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
