"""HTTP/1.1 on one connection of the http source: request framing (Content-Length, chunked, ``Expect:
100-continue``), keep-alive, and answers in Jetty's shape (the status line, ``Date`` and ``Server`` headers unless
turned off, an HTML error page).

:func:`serve_connection` runs on the connection's thread (see agent.listen) and hands each request to the
source's ``answer(request)``, which returns the status and message.
"""

from __future__ import annotations

import html
import re
import socket
import time
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

import agent
from agent.core import _rate_limited
from sources.http.handlers import HTTPRequest

if TYPE_CHECKING:
    from sources.http.source import HTTPSource

__all__ = ["serve_connection"]

_READ = 1 << 20
_MAX_LINE = 8192
_MAX_HEADER_LINE = 65536  # http.client's limits: a longer line, or more lines, is answered 431
_MAX_HEADERS = 100
_VERSION = re.compile(r"HTTP/([0-9]{1,10})\.([0-9]{1,10})")
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110 token)


def serve_connection(conn: socket.socket, addr: Any, source: HTTPSource) -> None:
    """Answer the requests of one connection until the client closes it, idles out or breaks the framing."""
    try:
        _Connection(conn, addr, source)
    except OSError:  # a client that went away mid-request
        return
    except Exception as exc:  # noqa: BLE001 - logged, never one line per request
        _rate_limited(source.log, f"Source {source.name}: request from {addr[0]} failed: {type(exc).__name__}: "
                                  f"{exc}")


class _BadFraming(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Connection(BaseHTTPRequestHandler):
    """The requests of one connection, answered in order (BaseHTTPRequestHandler does the request line and
    headers; the body framing and the answer are ours)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def __init__(self, conn: socket.socket, addr: Any, source: HTTPSource):
        self.source = source
        super().__init__(conn, addr, None)

    def setup(self) -> None:
        self.timeout = self.source.idle_timeout
        super().setup()

    def parse_request(self) -> bool:
        """BaseHTTPRequestHandler.parse_request's checks of the request line, and the same ``HTTPMessage`` for
        handlers, but a header reader of its own (the email parser it replaces took a fifth of a 1000-event
        request's time) and every refusal answered in the source's own shape, with its status line."""
        self.command = None  # type: ignore[assignment]
        self.request_version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return False
        self.path = words[1] if len(words) > 1 else ""
        if len(words) >= 3:
            version = words[-1]
            number = _VERSION.fullmatch(version)
            if number is None:
                return self._refuse_request(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
            if int(number[1]) >= 2:
                return self._refuse_request(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                                            f"Invalid HTTP version ({version[5:]})")
            if (int(number[1]), int(number[2])) >= (1, 1):
                self.close_connection = False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            return self._refuse_request(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                return self._refuse_request(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
        self.command = command
        if path.startswith("//"):
            self.path = "/" + path.lstrip("/")
        try:
            self.headers, self._fields = _read_headers(self.rfile)
        except _BadFraming as exc:
            return self._refuse_request(exc.status, str(exc))
        fields = self._fields
        connection = fields.get("connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if fields.get("expect", "").lower() == "100-continue" and self.request_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _refuse_request(self, status: int, message: str) -> bool:
        """Answer a request whose line or headers cannot be read, and close the connection."""
        self.close_connection = True
        self._respond(status, message)
        return False

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header's value, formatted once a second."""
        now = int(time.time()) if timestamp is None else int(timestamp)
        cached = self._date
        if cached[0] != now:
            cached = self._date = (now, super().date_time_string(now))
        return cached[1]

    _date: tuple[int, str] = (-1, "")
    _fields: dict[str, str] = {}  # noqa: RUF012 - replaced (never changed) per request

    def do_POST(self) -> None:
        self._handle(head=False)

    do_GET = do_POST

    def do_HEAD(self) -> None:  # the servlet answers HEAD like GET, without the body
        self._handle(head=True)

    def do_TRACE(self) -> None:
        self._refuse(403, "Forbidden")

    do_OPTIONS = do_TRACE

    def do_PUT(self) -> None:
        self._refuse(405, f"HTTP method {self.command} is not supported by this URL")

    do_DELETE = do_PUT

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass  # failures are logged (rate-limited) by the source, never one line per request

    def _refuse(self, status: int, message: str) -> None:
        try:
            self._read_body()
        except (OSError, _BadFraming, EOFError):
            self.close_connection = True
        self._respond(status, message)

    def _handle(self, head: bool) -> None:
        source = self.source
        try:
            body = self._read_body()
        except _BadFraming as exc:
            self.close_connection = True
            self._respond(exc.status, str(exc))
            return
        except (OSError, EOFError):
            self.close_connection = True  # the client went away or stalled mid-body: nothing to answer
            return
        path, _, query = self.path.partition("?")
        request = HTTPRequest(self.command, path, query, self.headers, body, self.client_address)
        status, message = source.answer(request)
        self._respond(status, message, head)

    def _read_body(self) -> bytes:
        te = self._fields.get("transfer-encoding")
        if te is not None:
            codings = [c.strip().lower() for c in te.split(",") if c.strip()]
            if codings == ["identity"]:
                pass
            elif codings != ["chunked"]:
                raise _BadFraming(501, f"Transfer-Encoding {te!r} is not supported (only chunked)")
            else:
                return self._read_chunked()
        if "content-length" not in self._fields:
            return b""
        lengths = self.headers.get_all("Content-Length") or []
        if len(set(v.strip() for v in lengths)) != 1 or not lengths[0].strip().isdigit():
            raise _BadFraming(400, f"bad Content-Length {', '.join(lengths)!r}")
        return self._read_exact(int(lengths[0].strip()))

    def _read_exact(self, n: int) -> bytes:
        read = self.rfile.read
        if n <= _READ:
            data = read(n)
            if len(data) < n:
                raise EOFError
            return data
        parts = []
        while n > 0:  # in steps, so a huge declared length costs memory only as the data really arrives
            part = read(min(n, _READ))
            if not part:
                raise EOFError
            parts.append(part)
            n -= len(part)
        return b"".join(parts)

    def _read_chunked(self) -> bytes:
        parts = []
        readline = self.rfile.readline
        while True:
            line = readline(_MAX_LINE + 1)
            if not line:
                raise EOFError
            if len(line) > _MAX_LINE or not line.endswith(b"\n"):
                raise _BadFraming(400, "chunk size line too long")
            size_text = line.split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9a-fA-F]{1,15}", size_text):
                raise _BadFraming(400, f"bad chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                for _ in range(100):  # trailer fields, ignored
                    line = readline(_MAX_LINE + 1)
                    if not line:
                        raise EOFError
                    if line in (b"\r\n", b"\n"):
                        return b"".join(parts)
                raise _BadFraming(400, "too many trailer fields")
            parts.append(self._read_exact(size))
            if self.rfile.read(2) != b"\r\n":
                raise _BadFraming(400, "chunk not followed by CRLF")

    def _respond(self, status: int, message: str, head: bool = False) -> None:
        source = self.source
        reason = self.responses.get(status, ("",))[0]
        lines = [f"HTTP/1.1 {status} {reason}"]
        if source.send_date:
            lines.append(f"Date: {self.date_time_string()}")
        if source.send_server:
            lines.append(f"Server: pyflume/{agent.__version__}")
        body = b""
        if status != 200:
            body = _error_page(status, message, self.path).encode("iso-8859-1", "xmlcharrefreplace")
            lines.append("Content-Type: text/html;charset=iso-8859-1")
            lines.append("Cache-Control: must-revalidate,no-cache,no-store")
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        try:
            self.wfile.write(head_bytes if head else head_bytes + body)
        except OSError:
            self.close_connection = True


def _read_headers(rfile: Any) -> tuple[HTTPMessage, dict[str, str]]:
    """The header fields up to the empty line: the message handlers see (as http.client would build it) and the
    first value of each field by lower-case name, for the framing's own lookups. An obsolete folded line continues
    the field before it; a line that is not ``name: value`` is answered 400."""
    pairs: list[list[str]] = []  # [name, value] in order; a folded line extends the last value
    readline = rfile.readline
    for _ in range(_MAX_HEADERS + 1):
        line = readline(_MAX_HEADER_LINE + 1)
        if len(line) > _MAX_HEADER_LINE:
            raise _BadFraming(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
        if line == b"\r\n" or line == b"\n" or not line:
            message = HTTPMessage()
            fields: dict[str, str] = {}
            for name, value in pairs:
                message[name] = value
                fields.setdefault(name.lower(), value)
            return message, fields
        text = line.decode("iso-8859-1")
        if text[0] in " \t":
            if not pairs:
                raise _BadFraming(HTTPStatus.BAD_REQUEST, "Bad header: a folded line with no field before it")
            last = pairs[-1]
            last[1] = f"{last[1]} {text.strip()}" if last[1] else text.strip()
            continue
        name, colon, rest = text.partition(":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise _BadFraming(HTTPStatus.BAD_REQUEST, f"Bad header line {text.rstrip()[:80]!r}")
        pairs.append([name, rest.strip(" \t\r\n")])
    raise _BadFraming(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")


def _error_page(status: int, message: str, path: str) -> str:
    """An error page like Jetty's: the status and the message, for a person reading it."""
    msg = html.escape(message)
    return (f"<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n"
            f"<title>Error {status} {msg}</title>\n</head>\n<body><h2>HTTP ERROR {status} {msg}</h2>\n<table>\n"
            f"<tr><th>URI:</th><td>{html.escape(path.partition('?')[0])}</td></tr>\n"
            f"<tr><th>STATUS:</th><td>{status}</td></tr>\n<tr><th>MESSAGE:</th><td>{msg}</td></tr>\n"
            f"</table>\n</body>\n</html>\n")

