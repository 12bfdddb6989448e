"""The HTTP source: each POST (or GET with a body) to any path is one batch, committed in one channel transaction.

Answers as Flume does: 200 with an empty body once the batch is committed; 400 for a body the handler cannot
parse (nothing is written); 503 when the channels refuse the batch (full), so the client retries; 500 for any other
failure. TRACE and OPTIONS are refused (405). Handlers: Flume's JSONHandler (the default), its BlobHandler
(the whole body as one event, query parameters as headers), or a dotted Python path to an HTTPSourceHandler.
"""

from __future__ import annotations

import codecs
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

from agent import registry
from agent.core import ChannelException, Component, Event, EventDrivenSource
from agent.spec import Conf, ConfigError, Prop, Spec
from sources.avro import SSL_PROPS, server_ssl_context

__all__ = ["HTTPSource", "HTTPSourceHandler", "JSONHandler", "BlobHandler", "BadRequest"]

MAX_BODY = 1 << 30


class BadRequest(Exception):
    """The request body cannot be turned into events: answered with 400."""


class HTTPSourceHandler(Component):
    """Turns one request into events. ``events(body, content_type, query)`` returns the events or raises
    BadRequest (400); any other exception is a 500."""

    kind = "handler"
    spec: ClassVar[Spec] = Spec()

    def events(self, body: bytes, content_type: str, query: dict[str, str]) -> list[Event]:
        raise NotImplementedError


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.lower() == "charset" and v:
            return v.strip().strip('"')
    return "UTF-8"


class JSONHandler(HTTPSourceHandler):
    """A JSON array of ``{"headers": {...}, "body": "text"}``; the body is encoded in the request's charset."""

    alias = "JSONHandler"
    flume_class = "org.apache.flume.source.http.JSONHandler"

    def events(self, body: bytes, content_type: str, query: dict[str, str]) -> list[Event]:
        charset = _charset(content_type)
        try:
            name = codecs.lookup(charset).name
        except LookupError:
            raise ValueError(f"unsupported charset {charset}") from None
        if not name.startswith("utf"):
            raise ValueError(f"unsupported charset {charset} (UTF-8, UTF-16 or UTF-32)")
        try:
            data = json.loads(body.decode(name))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"Request has invalid JSON Syntax: {exc}") from None
        if not isinstance(data, list):
            raise BadRequest("Request has invalid JSON Syntax: expected an array of events")
        out = []
        for item in data:
            if not isinstance(item, dict):
                raise BadRequest("Request has invalid JSON Syntax: each event must be an object")
            headers = item.get("headers") or {}
            if not isinstance(headers, dict):
                raise BadRequest("Request has invalid JSON Syntax: headers must be an object")
            text = item.get("body")
            if text is not None and not isinstance(text, str):
                text = json.dumps(text)
            out.append(Event(_java_encode(text or "", name),
                             {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in headers.items()}))
        return out


def _java_encode(text: str, codec: str) -> bytes:
    """String.getBytes(charset) as Java does it: "UTF-16" / "UTF-32" mean big-endian, UTF-16 with a BOM."""
    if codec == "utf-16":
        return b"\xfe\xff" + text.encode("utf-16-be") if text else b""
    if codec == "utf-32":
        return text.encode("utf-32-be")
    return text.encode(codec)


class BlobHandler(HTTPSourceHandler):
    """The whole request body as one event; query parameters (and the Content-Type) as headers."""

    alias = None
    flume_class = "org.apache.flume.sink.solr.morphline.BlobHandler"
    spec = Spec(Prop("maxBlobLength", "int", 100000000, "Largest body in bytes.", min=1))

    def events(self, body: bytes, content_type: str, query: dict[str, str]) -> list[Event]:
        if len(body) > self.conf["maxBlobLength"]:
            raise BadRequest(f"body of {len(body)} bytes exceeds maxBlobLength")
        headers = dict(query)
        if content_type:
            headers["Content-Type"] = content_type
        return [Event(body, headers)]


_HANDLERS: dict[str, type[HTTPSourceHandler]] = {
    "org.apache.flume.source.http.jsonhandler": JSONHandler,
    "jsonhandler": JSONHandler,
    "org.apache.flume.sink.solr.morphline.blobhandler": BlobHandler,
}


class HTTPSource(EventDrivenSource):
    """Accepts events over HTTP POST; 200 after commit, 400 bad body, 503 channel full."""

    alias = "http"
    flume_class = "org.apache.flume.source.http.HTTPSource"
    spec = Spec(
        Prop("port", "int", required=True, doc="Port to listen on.", min=0, max=65535),
        Prop("bind", "str", "0.0.0.0", "Address to listen on."),
        Prop("handler", "str", "org.apache.flume.source.http.JSONHandler",
             "How a request becomes events: Flume's JSONHandler or BlobHandler, or a dotted Python path to a "
             "sources.http.HTTPSourceHandler."),
        Prop("handler.", prefix=True, doc="Options of the handler."),
        Prop("ssl", "bool", False, "Serve HTTPS (keystore: a PEM file with certificate and key).",
             aliases=("enableSSL",)),
        Prop("keystore", "str", None, "PEM file with the certificate chain and private key."),
        Prop("keystore-password", "str", None, "Password of the key.", aliases=("keystorePassword",)),
        Prop("keystore-type", "str", "JKS", "PEM (Java keystores must be converted)."),
        *SSL_PROPS,
        Prop("QueuedThreadPool.", prefix=True, doc="Jetty tuning; accepted and ignored."),
        Prop("HttpConfiguration.", prefix=True, doc="Jetty tuning; accepted and ignored."),
        Prop("SslContextFactory.", prefix=True, doc="Jetty tuning; accepted and ignored."),
        Prop("ServerConnector.", prefix=True, doc="Jetty tuning; accepted and ignored."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.bind = conf["bind"]
        self.port = conf["port"]
        text = conf["handler"].strip()
        cls = _HANDLERS.get(text.lower())
        if cls is None:
            try:
                module, _, attr = text.rpartition(".")
                cls = registry.load_target(f"{module}:{attr}")
                if not (isinstance(cls, type) and issubclass(cls, HTTPSourceHandler)):
                    raise ConfigError(f"'{text}' is not a sources.http.HTTPSourceHandler")
            except (ImportError, AttributeError, ValueError, ConfigError) as exc:
                conf.error(f"cannot use handler '{text}': {exc}; expected org.apache.flume.source.http.JSONHandler, "
                           f"org.apache.flume.sink.solr.morphline.BlobHandler or a dotted Python path", "handler")
                cls = JSONHandler
        self.handler = cls(name, conf.nested("handler.", cls.spec))
        self.ssl_context = server_ssl_context(conf, name)
        for prefix in ("QueuedThreadPool.", "HttpConfiguration.", "SslContextFactory.", "ServerConnector."):
            for key in conf.sub(prefix):
                conf.warn(f"Jetty setting {prefix}{key} has no effect in pyflume", prefix + key)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # one line per request is too much
                pass

            def _answer(self, code: int, message: str = "") -> None:
                body = message.encode()
                self.send_response(code, message.split("\n")[0] if message else None)
                self.send_header("Content-Length", str(len(body)))
                if body:
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                if length < 0 or length > MAX_BODY:
                    self._answer(413, "Request body too large")
                    return
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                code, message = source.handle(body, self.headers.get("Content-Type", ""),
                                              dict(parse_qsl(url.query)))
                self._answer(code, message)

            do_GET = do_POST  # noqa: N815 - Flume's servlet handles GET like POST
            do_PUT = do_POST  # noqa: N815

            def do_TRACE(self) -> None:  # noqa: N802
                self._answer(405, "Method Not Allowed")

            do_OPTIONS = do_TRACE  # noqa: N815

        server = ThreadingHTTPServer((self.bind, self.port), Handler)
        server.daemon_threads = True
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"{self.name}-http", daemon=True)
        self._thread.start()
        self.counter.started()
        self.log.info("HTTP source %s listening on %s:%d%s", self.name, self.bind, self.port,
                      " (HTTPS)" if self.ssl_context else "")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self.counter.stopped()
        self.log.info("HTTP source %s stopped", self.name)

    def handle(self, body: bytes, content_type: str, query: dict[str, str]) -> tuple[int, str]:
        try:
            events = self.handler.events(body, content_type, query)
        except BadRequest as exc:
            with self.counter.lock:
                self.counter.event_read_fail += 1
            return 400, f"Bad request from client. {exc}"
        except Exception as exc:  # noqa: BLE001
            with self.counter.lock:
                self.counter.generic_processing_fail += 1
            return 500, f"Deserializer threw unexpected exception. {exc}"
        n = len(events)
        assert self.channel_processor is not None
        try:
            self.channel_processor.process_batch(events)
        except ChannelException as exc:
            with self.counter.lock:
                self.counter.channel_write_fail += 1
                self.counter.event_received += n
                self.counter.append_batch_received += 1
            return 503, f"Error appending event to channel. Channel might be full. {exc}"
        except Exception as exc:  # noqa: BLE001
            with self.counter.lock:
                self.counter.generic_processing_fail += 1
            return 500, f"Error appending event to channel: {exc}"
        self.counter.batch(n, n)
        return 200, ""


