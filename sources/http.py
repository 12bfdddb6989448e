"""The HTTP source: each POST (or GET) request becomes one batch of events, through a pluggable handler.

As in Flume, any path works; the handler turns the request into events (``JSONHandler`` by default), all events of
one request go to the channel in one batch, and the answer comes only after the channel committed it:

==========================================================  ======================================================
200, empty body                                              the events are committed
400 "Bad request from client. <reason>"                      the handler rejected the body (malformed JSON ...)
500 "Deserializer threw unexpected exception. <reason>"      the handler failed otherwise (empty body, charset)
503 "Error appending event to channel. Channel might be      the channel is full: nothing was kept from the
full. <reason>"                                              batch's failed part; the client should retry
403                                                          TRACE and OPTIONS (disabled, as in Flume)
405 / 501                                                    other methods
==========================================================  ======================================================

Connections are kept alive (HTTP/1.1), bodies may be chunked, ``Expect: 100-continue`` is honoured. A batch larger
than the channel's ``transactionCapacity`` goes in as several transactions; if a later one fails the client gets
503 and its retry repeats the part that was already committed (at-least-once, never loss).

TLS: ``ssl = true`` with ``keystore`` + ``keystore-type`` PKCS12 (read with the ``cryptography`` package) or PEM
(one file with the certificate chain and the key), or pyflume's ``ssl.certificate`` + ``ssl.key`` PEM files. Java
keystores (JKS) cannot be read; convert them.

A handler of your own: subclass :class:`HTTPSourceHandler`, put it on PYTHONPATH and name it in ``handler`` as
``package.module.Class``; its ``handler.*`` properties are checked against its ``spec``.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import json
import logging
import re
import socket
import ssl
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import agent
from agent.core import ChannelException, Event, EventDrivenSource, _rate_limited
from agent.spec import Conf, ConfigError, Prop, Spec
from agent.tls import ServerTls, server_tls_props

__all__ = [
    "HTTPSource",
    "HTTPSourceHandler",
    "HTTPRequest",
    "HTTPBadRequestError",
    "JSONHandler",
    "BlobHandler",
    "BLOBHandler",
]

_JSON_HANDLER = "org.apache.flume.source.http.JSONHandler"
_MORPHLINE_BLOB = "org.apache.flume.sink.solr.morphline.BlobHandler"
_CORE_BLOB = "org.apache.flume.source.http.BLOBHandler"
_READ = 1 << 20
_MAX_LINE = 8192


# --------------------------------------------------------------------------------------------------------------
# Handlers


class HTTPBadRequestError(Exception):
    """Raised by a handler for a request the client must fix: the source answers 400 with this message."""


class HTTPRequest:
    """One request as a handler sees it: method, path, raw query, headers (case-insensitive), the whole body."""

    __slots__ = ("method", "path", "query", "headers", "body", "client_address", "_params")

    def __init__(self, method: str, path: str, query: str, headers: Message, body: bytes,
                 client_address: tuple[str, int]):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.client_address = client_address
        self._params: dict[str, list[str]] | None = None

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header as sent, or None."""
        return self.headers.get("Content-Type")

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter of the Content-Type (lower case), or None (Servlet getCharacterEncoding)."""
        return self.headers.get_content_charset()

    def is_form(self) -> bool:
        """A POST whose body is form parameters (``application/x-www-form-urlencoded``), read as parameters."""
        ctype = (self.content_type or "").split(";", 1)[0].strip().lower()
        return self.method == "POST" and ctype == "application/x-www-form-urlencoded"

    def parameters(self) -> dict[str, list[str]]:
        """Query parameters, then form parameters of a form POST, each name with its values in order (Servlet)."""
        if self._params is None:
            params: dict[str, list[str]] = {}
            pairs = parse_qsl(self.query, keep_blank_values=True, errors="replace")
            if self.is_form():
                charset = self.charset or "utf-8"
                pairs += parse_qsl(self.body.decode(charset, "replace"), keep_blank_values=True, encoding=charset,
                                   errors="replace")
            for k, v in pairs:
                params.setdefault(k, []).append(v)
            self._params = params
        return self._params


class HTTPSourceHandler:
    """Turns one HTTP request into events (Flume's HTTPSourceHandler).

    Contract: ``__init__(conf)`` only reads ``conf``, the ``handler.*`` properties checked against the class's
    ``spec`` (names without the ``handler.`` prefix); raise ConfigError for a bad setting. ``get_events(request)``
    is called on the connection's thread, concurrently for different connections, and returns the request's
    events in order. Raise :class:`HTTPBadRequestError` for a request the client must fix (answered 400); any other
    exception is answered 500. Events are committed to the channel before the client gets 200.
    """

    spec: ClassVar[Spec] = Spec()
    #: The source's logger (set by the source), for a handler's own rate-limited warnings.
    log: logging.Logger = logging.getLogger("pyflume.source")

    def __init__(self, conf: Conf):
        self.conf = conf

    def get_events(self, request: HTTPRequest) -> list[Event]:
        raise NotImplementedError


class JSONHandler(HTTPSourceHandler):
    """Flume's JSONHandler: a JSON array of ``{"headers": {...}, "body": "..."}``.

    Both fields may be missing (no headers, empty body). The body text is stored in the request's charset: UTF-8
    (the default), UTF-16 (big-endian with a byte-order mark, as Java writes it) or UTF-32 (big-endian); any other
    charset is answered 500. Numbers and booleans are taken as their text. Unlike Flume's lenient Gson, the JSON must
    be standard (no comments, single quotes or unquoted names), a header repeated in one object keeps its last
    value, and a header whose value is null is left out.
    """

    def get_events(self, request: HTTPRequest) -> list[Event]:
        charset = request.charset or "utf-8"
        if charset not in ("utf-8", "utf-16", "utf-32"):
            raise ValueError(f"JSON handler supports UTF-8, UTF-16 and UTF-32 only, not {charset!r}.")
        text = _java_decode(request.body, charset)
        if not text.strip(" \t\r\n"):
            raise ValueError("the request body is empty (expected a JSON array of events)")
        try:
            data = json.loads(text, parse_int=str, parse_float=str, parse_constant=str)
        except json.JSONDecodeError as exc:
            raise HTTPBadRequestError(f"Request has invalid JSON Syntax. ({exc})") from None
        if data is None:
            raise ValueError("the request body is JSON null (expected a JSON array of events)")
        if data.__class__ is not list:
            raise HTTPBadRequestError(f"Request has invalid JSON Syntax. (expected an array of events, got "
                                      f"{_json_kind(data)})")
        sanitize = "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None
        if charset == "utf-8" and not sanitize:
            fast = _utf8_events(data)
            if fast is not None:
                return fast
        events = []
        append = events.append
        for i, item in enumerate(data):
            if item.__class__ is not dict:
                if item is None:
                    raise ValueError(f"event {i} is null")
                raise HTTPBadRequestError(f"Request has invalid JSON Syntax. (event {i}: expected an object, "
                                          f"got {_json_kind(item)})")
            headers = item.get("headers")
            if headers is None:
                headers = {}
            elif headers.__class__ is not dict:
                raise HTTPBadRequestError(f"Request has invalid JSON Syntax. (event {i}: headers must be an "
                                          f"object, got {_json_kind(headers)})")
            else:
                for v in headers.values():
                    if v.__class__ is not str:
                        headers = _coerce_headers(headers, i)
                        break
            body = item.get("body")
            if body.__class__ is not str:
                body = _coerce_body(body, i)
            if sanitize:
                headers = {_clean(k): _clean(v) for k, v in headers.items()}
            append(Event(_java_encode(body, charset), headers))
        return events


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _utf8_events(data: list[Any]) -> list[Event] | None:
    """The common request, made fast: UTF-8, every item an object whose headers (if any) are all strings and whose
    body is a string. None as soon as an item is anything else; the general loop then checks and reports it."""
    events = []
    append = events.append
    for item in data:
        if item.__class__ is not dict:
            return None
        body = item.get("body")
        if body.__class__ is not str:
            return None
        headers = item.get("headers")
        if headers is None:
            headers = {}
        elif headers.__class__ is not dict or (headers and not all(v.__class__ is str for v in headers.values())):
            return None
        append(Event(body.encode(), headers))
    return events


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    return "a string or number"


def _coerce_headers(headers: dict[str, Any], i: int) -> dict[str, str]:
    out = {}
    for k, v in headers.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif not isinstance(v, str):
            raise HTTPBadRequestError(f"Request has invalid JSON Syntax. (event {i}: header {k!r} must be a "
                                      f"string, got {_json_kind(v)})")
        out[k] = v
    return out


def _coerce_body(body: Any, i: int) -> str:
    if body is None:
        return ""
    if isinstance(body, bool):
        return "true" if body else "false"
    raise HTTPBadRequestError(f"Request has invalid JSON Syntax. (event {i}: body must be a string, got "
                              f"{_json_kind(body)})")


def _clean(text: str) -> str:
    """A lone surrogate (from a ``\\ud800`` escape) becomes '?', as Java's encoder writes it."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _java_decode(body: bytes, charset: str) -> str:
    """Decode as Java does: UTF-16/UTF-32 honour a byte-order mark and are big-endian without one."""
    if charset == "utf-8":
        return body.decode("utf-8", "replace")
    if charset == "utf-16":
        if body[:2] == b"\xff\xfe":
            return body[2:].decode("utf-16-le", "replace")
        return body[2:].decode("utf-16-be", "replace") if body[:2] == b"\xfe\xff" else body.decode(
            "utf-16-be", "replace")
    if body[:4] == b"\xff\xfe\x00\x00":
        return body[4:].decode("utf-32-le", "replace")
    return body[4:].decode("utf-32-be", "replace") if body[:4] == b"\x00\x00\xfe\xff" else body.decode(
        "utf-32-be", "replace")


def _java_encode(text: str, charset: str) -> bytes:
    """String.getBytes(charset): UTF-16 is big-endian after a byte-order mark, UTF-32 big-endian without one."""
    if charset == "utf-8":
        return text.encode("utf-8", "replace")
    if charset == "utf-16":
        return b"\xfe\xff" + text.encode("utf-16-be", "replace") if text else b""
    return text.encode("utf-32-be", "replace")


class BlobHandler(HTTPSourceHandler):
    """Flume's morphline BlobHandler: the whole request body is one event.

    Its headers are ``Content-Type`` (when sent) and the request's parameters (the first value of each). A body
    longer than ``handler.maxBlobLength`` is cut there (logged).
    """

    spec = Spec(
        Prop("maxBlobLength", "int", 100_000_000, "Longest body in bytes; a longer one is cut to this length.",
             min=1),
    )

    def __init__(self, conf: Conf):
        super().__init__(conf)
        self.max_length: int = conf["maxBlobLength"]

    def get_events(self, request: HTTPRequest) -> list[Event]:
        headers: dict[str, str] = {}
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        for name, values in request.parameters().items():
            headers[name] = values[0]
        body = b"" if request.is_form() else request.body
        if len(body) >= self.max_length:
            if len(body) > self.max_length:
                _rate_limited(self.log, f"Request length exceeds maxBlobLength ({self.max_length}), truncating "
                                        f"BLOB event!")
            body = body[:self.max_length]
        return [Event(body, headers)]


class BLOBHandler(HTTPSourceHandler):
    """Flume's core BLOBHandler: the body is one event, the request parameters are its headers.

    Every parameter named in ``handler.mandatoryParameters`` must be present, else the answer is 500 (as in
    Flume). With Flume's default (empty) it demands a parameter named "", so every request fails: set it.
    """

    spec = Spec(
        Prop("mandatoryParameters", "str", "",
             "Comma-separated parameters every request must carry (Flume's empty default makes every request "
             "fail, as in Flume)."),
    )

    def __init__(self, conf: Conf):
        super().__init__(conf)
        parts = conf["mandatoryParameters"].split(",")
        while len(parts) > 1 and parts[-1] == "":  # Java's String.split drops trailing empty strings
            parts.pop()
        self.mandatory = parts
        if "" in parts:
            conf.warn("with mandatoryParameters empty (Flume's default) every request is refused with 500, as "
                      "in Flume; list the parameters requests must carry", "mandatoryParameters")

    def get_events(self, request: HTTPRequest) -> list[Event]:
        headers = {name: values[0] for name, values in request.parameters().items()}
        for name in self.mandatory:
            if name not in headers:
                raise ValueError(f"Please specify {name} parameter in the request.")
        return [Event(b"" if request.is_form() else request.body, headers)]


_HANDLERS: dict[str, type[HTTPSourceHandler]] = {
    _JSON_HANDLER: JSONHandler,
    _MORPHLINE_BLOB: BlobHandler,
    _CORE_BLOB: BLOBHandler,
}
_JAVA_NAME = re.compile(r"^(org|com|net|io|de|fr|uk|edu|gov)\.[\w.$]+$")


def _handler_class(name: str) -> type[HTTPSourceHandler]:
    name = name.strip()
    if name in _HANDLERS:
        return _HANDLERS[name]
    expected = f"expected {_JSON_HANDLER}, {_MORPHLINE_BLOB}, {_CORE_BLOB}, or a dotted Python path to a subclass " \
               f"of sources.http.HTTPSourceHandler"
    if "." not in name:
        raise ConfigError(f"unknown handler {name!r}; {expected}")
    module_name, _, cls_name = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError, ValueError) as exc:
        if _JAVA_NAME.match(name):
            raise ConfigError(f"{name!r} looks like a Java class; Java handlers cannot run in pyflume. Write it as "
                              f"a Python subclass of sources.http.HTTPSourceHandler, put it on PYTHONPATH and name "
                              f"it here as package.module.Class") from None
        raise ConfigError(f"cannot load handler {name!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, HTTPSourceHandler)):
        raise ConfigError(f"{name!r} is not a handler: it must subclass sources.http.HTTPSourceHandler")
    return cls


# --------------------------------------------------------------------------------------------------------------
# The source

# Jetty settings pyflume applies; every other QueuedThreadPool.*, HttpConfiguration.*, SslContextFactory.* and
# ServerConnector.* key is accepted with a warning that it has no effect.
_JETTY_USED = {"ServerConnector.idleTimeout": "int", "HttpConfiguration.sendServerVersion": "bool",
               "HttpConfiguration.sendDateHeader": "bool"}

class HTTPSource(EventDrivenSource):
    """Accepts events by HTTP POST (and GET); a handler turns each request into one batch (JSON by default)."""

    alias = "http"
    flume_class = "org.apache.flume.source.http.HTTPSource"
    spec = Spec(
        Prop("bind", "str", "0.0.0.0", "Host name or IP address to listen on."),
        Prop("port", "int", required=True, doc="TCP port to listen on (0 picks a free port).", min=0, max=65535),
        Prop("handler", "str", _JSON_HANDLER,
             f"How a request becomes events: {_JSON_HANDLER}, {_MORPHLINE_BLOB}, {_CORE_BLOB}, or a dotted Python "
             f"path to a subclass of sources.http.HTTPSourceHandler."),
        Prop("handler.", prefix=True, doc="Properties of the handler, checked against its spec "
                                          "(e.g. handler.maxBlobLength)."),
        *server_tls_props("HTTPS", deprecated_names=True),
        Prop("QueuedThreadPool.", prefix=True,
             doc="Jetty thread pool settings: accepted, no effect (each connection has its own thread)."),
        Prop("HttpConfiguration.", prefix=True,
             doc="Jetty settings; sendServerVersion and sendDateHeader apply, the others have no effect."),
        Prop("SslContextFactory.", prefix=True, doc="Jetty TLS settings: accepted, no effect."),
        Prop("ServerConnector.", prefix=True,
             doc="Jetty connector settings; idleTimeout (ms, default 30000) applies, the others have no effect."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.bind: str = conf["bind"]
        if not self.bind:
            conf.error("bind is empty", "bind")
        self.port: int = conf["port"]
        self.handler: HTTPSourceHandler = HTTPSourceHandler(Conf({}, {}))  # replaced below unless misconfigured
        try:
            cls = _handler_class(conf["handler"])
        except ConfigError as exc:
            conf.error(exc.message, "handler")
        else:
            hconf = conf.nested("handler.", cls.spec)
            try:
                self.handler = cls(hconf)
            except ConfigError as exc:
                hconf.error(exc.message, exc.prop)
            self.handler.log = self.log
        self.idle_timeout = 30.0
        self.send_server = True
        self.send_date = True
        self._jetty(conf)
        self.ssl_enabled: bool = conf["ssl"]
        self._tls = ServerTls(conf) if self.ssl_enabled else None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._crash: str | None = None

    def _jetty(self, conf: Conf) -> None:
        for prefix in ("QueuedThreadPool.", "HttpConfiguration.", "SslContextFactory.", "ServerConnector."):
            for key, raw in conf.sub(prefix).items():
                full = prefix + key
                kind = _JETTY_USED.get(full)
                if kind is None:
                    conf.warn(f"{full} is a Jetty setting that has no effect in pyflume; ignored", full)
                    continue
                value = raw.value.strip()
                if kind == "bool":
                    setting: Any = value.lower() == "true"  # Java's Boolean.parseBoolean
                else:
                    if not value.isdigit():
                        conf.error(f"{value!r} is not an integer", full)
                        continue
                    setting = int(value)
                if full == "ServerConnector.idleTimeout":
                    self.idle_timeout = setting / 1000.0 if setting > 0 else None
                elif full == "HttpConfiguration.sendServerVersion":
                    self.send_server = setting
                else:
                    self.send_date = setting

    # Lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        context = self._tls.context() if self._tls is not None else None
        try:
            server = _Server(self, (self.bind, self.port), context)
        except OSError as exc:
            raise OSError(f"cannot listen on {self.bind}:{self.port}: {exc.strerror or exc}") from None
        self.port = server.server_address[1]
        self._server = server
        self._running = True
        self._crash = None
        self._thread = threading.Thread(target=self._serve_forever, name=f"http-{self.name}", daemon=True)
        self._thread.start()
        self.log.info("Source %s listening on %s://%s:%d", self.name, "https" if context else "http", self.bind,
                      self.port)

    def _serve_forever(self) -> None:
        server = self._server
        assert server is not None
        try:
            server.serve_forever(poll_interval=0.5)
        except Exception as exc:  # the accept loop itself failed: let the supervisor restart the source
            self._crash = f"the HTTP server failed: {exc}"
        else:
            if self._running:
                self._crash = "the HTTP server stopped"

    def stop(self) -> None:
        self._running = False
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(2.0)
        self.log.info("Source %s stopped", self.name)

    def failed(self) -> str | None:
        return self._crash

    # Requests -----------------------------------------------------------------------------------------------
    def _process(self, request: HTTPRequest) -> tuple[int, str]:
        """Flume's FlumeHTTPServlet.doPost: status and message for one request."""
        counter = self.counter
        try:
            events = list(self.handler.get_events(request))
        except HTTPBadRequestError as exc:
            with counter.lock:
                counter.event_read_fail += 1
            _rate_limited(self.log, f"Source {self.name}: bad request from client {request.client_address[0]}: "
                                    f"{exc}")
            return 400, f"Bad request from client. {exc}"
        except Exception as exc:
            with counter.lock:
                counter.event_read_fail += 1
            _rate_limited(self.log, f"Source {self.name}: handler failed on a request from "
                                    f"{request.client_address[0]}: {exc}")
            return 500, f"Deserializer threw unexpected exception. {exc}"
        n = len(events)
        with counter.lock:
            counter.append_batch_received += 1
            counter.event_received += n
        proc = self.channel_processor
        assert proc is not None
        try:
            proc.process_batch(events)
        except ChannelException as exc:
            with counter.lock:
                counter.channel_write_fail += 1
            _rate_limited(self.log, f"Source {self.name}: error appending a batch of {n} events to the channel, "
                                    f"answering 503 ({exc}); consider a larger channel capacity or faster sinks")
            return 503, f"Error appending event to channel. Channel might be full. {exc}"
        except Exception as exc:
            with counter.lock:
                counter.generic_processing_fail += 1
            _rate_limited(self.log, f"Source {self.name}: unexpected error appending events to the channel: {exc}")
            return 500, f"Unexpected error while appending event to channel. {exc}"
        with counter.lock:
            counter.append_batch_accepted += 1
            counter.event_accepted += n
        return 200, ""


# --------------------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    """A thread per connection; TLS handshakes happen on that thread, never on the accepting one."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, source: HTTPSource, address: tuple[str, int], context: ssl.SSLContext | None):
        self.source = source
        self.context = context
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:  # HTTPServer's would look up the host's full name: slow, and not needed
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn = request
        conn.settimeout(self.source.idle_timeout)
        if self.context is not None:
            try:
                conn = self.context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                _rate_limited(self.source.log, f"Source {self.source.name}: TLS handshake with {client_address[0]} "
                                               f"failed: {exc}")
                return
        with self._conns_lock:
            self._conns.add(conn)
        try:
            _RequestHandler(conn, client_address, self)
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            if conn is not request:
                conn.close()

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # a client that went away mid-request
            return
        _rate_limited(self.source.log, f"Source {self.source.name}: request from {client_address[0]} failed: "
                                       f"{type(exc).__name__}: {exc}")


class _BadFraming(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.source.idle_timeout
        super().setup()

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
        source = self.server.source
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
        status, message = source._process(request)
        self._respond(status, message, head)

    def _read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            codings = [c.strip().lower() for c in te.split(",") if c.strip()]
            if codings == ["identity"]:
                pass
            elif codings != ["chunked"]:
                raise _BadFraming(501, f"Transfer-Encoding {te!r} is not supported (only chunked)")
            else:
                return self._read_chunked()
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return b""
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
        source = self.server.source
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


def _error_page(status: int, message: str, path: str) -> str:
    """An error page like Jetty's: the status and the message, for a person reading it."""
    msg = html.escape(message)
    return (f"<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=ISO-8859-1\"/>\n"
            f"<title>Error {status} {msg}</title>\n</head>\n<body><h2>HTTP ERROR {status} {msg}</h2>\n<table>\n"
            f"<tr><th>URI:</th><td>{html.escape(path.partition('?')[0])}</td></tr>\n"
            f"<tr><th>STATUS:</th><td>{status}</td></tr>\n<tr><th>MESSAGE:</th><td>{msg}</td></tr>\n"
            f"</table>\n</body>\n</html>\n")
