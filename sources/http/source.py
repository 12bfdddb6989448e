"""The http source itself: its properties, the handler it builds, listening (agent.listen), and the answer to each
request (200 only after the commit)."""

from __future__ import annotations

import socket
from typing import Any

from agent import registry
from agent.core import Batch, ChannelException, _rate_limited
from agent.listen import ListeningSource, TcpListener, port_prop, tls_handshake
from agent.spec import Conf, ConfigError, Prop, Spec
from agent.tls import ServerTls, server_tls_props
from sources.http import handlers
from sources.http.framing import serve_connection
from sources.http.handlers import HTTPBadRequestError, HTTPRequest, HTTPSourceHandler

__all__ = ["HTTPSource"]

_HANDLERS = ", ".join(h.flume_class or "" for h in (handlers.JSONHandler, handlers.BlobHandler, handlers.BLOBHandler))
# Jetty settings pyflume applies; every other QueuedThreadPool.*, HttpConfiguration.*, SslContextFactory.* and
# ServerConnector.* key is accepted with a warning that it has no effect.
_JETTY_USED = {"ServerConnector.idleTimeout": "int", "HttpConfiguration.sendServerVersion": "bool",
               "HttpConfiguration.sendDateHeader": "bool"}


class HTTPSource(ListeningSource):
    """Accepts events by HTTP POST (and GET); a handler turns each request into one batch (JSON by default)."""

    alias = "http"
    flume_class = "org.apache.flume.source.http.HTTPSource"
    spec = Spec(
        Prop("bind", "str", "0.0.0.0", "Host name or IP address to listen on."),
        port_prop(),
        Prop("handler", "str", handlers.JSONHandler.flume_class,
             f"How a request becomes events: {_HANDLERS}, or a dotted Python path to a subclass of "
             f"sources.http.HTTPSourceHandler."),
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
        config = self.config
        self.bind: str = config.bind
        if not self.bind:
            conf.error("bind is empty", "bind")
        self.port: int = config.port
        self.handler = self._handler(conf, config.handler)
        self.idle_timeout: float | None = 30.0
        self.send_server = True
        self.send_date = True
        self._jetty(conf)
        self.ssl_enabled: bool = config.ssl
        self._tls = ServerTls(conf) if self.ssl_enabled else None

    def _handler(self, conf: Conf, text: str) -> HTTPSourceHandler:
        """The handler named by ``handler``, built with the ``handler.*`` properties; a do-nothing one (and the
        problem recorded) when it cannot be loaded or built."""
        handler = HTTPSourceHandler(self.name, Conf({}, {}))
        try:
            cls = registry.resolve("http_handler", text)
        except ConfigError as exc:
            conf.error(exc.message, "handler")
            return handler
        hconf = conf.nested("handler.", cls.spec)
        try:
            handler = cls(self.name, hconf)
        except ConfigError as exc:
            hconf.error(exc.message, exc.prop)
        handler.log = self.log
        return handler

    def _jetty(self, conf: Conf) -> None:
        config = self.config
        for prefix, settings in (("QueuedThreadPool.", config.queued_thread_pool),
                                 ("HttpConfiguration.", config.http_configuration),
                                 ("SslContextFactory.", config.ssl_context_factory),
                                 ("ServerConnector.", config.server_connector)):
            for key, text in settings.items():
                full = prefix + key
                kind = _JETTY_USED.get(full)
                if kind is None:
                    conf.warn(f"{full} is a Jetty setting that has no effect in pyflume; ignored", full)
                    continue
                value = text.strip()
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
        listener = TcpListener(self, self.bind, [self.port], self._serve, handshake=tls_handshake(context))
        self.port = self.listen(listener).ports[0]
        self.log.info("Source %s listening on %s://%s:%d", self.name, "https" if context else "http", self.bind,
                      self.port)

    def _serve(self, conn: socket.socket, port: int, addr: Any) -> None:
        serve_connection(conn, addr, self)

    # Requests -----------------------------------------------------------------------------------------------
    def answer(self, request: HTTPRequest) -> tuple[int, str]:
        """Flume's FlumeHTTPServlet.doPost: status and message for one request."""
        try:
            events = self.handler.get_events(request)
            if type(events) is not list and type(events) is not Batch:  # a custom handler's iterable
                events = list(events)
        except HTTPBadRequestError as exc:
            self.counter.add(event_read_fail=1)
            _rate_limited(self.log, f"Source {self.name}: bad request from client {request.client_address[0]}: "
                                    f"{exc}")
            return 400, f"Bad request from client. {exc}"
        except Exception as exc:
            self.counter.add(event_read_fail=1)
            _rate_limited(self.log, f"Source {self.name}: handler failed on a request from "
                                    f"{request.client_address[0]}: {exc}")
            return 500, f"Deserializer threw unexpected exception. {exc}"
        try:
            self.deliver(events)
        except ChannelException as exc:
            _rate_limited(self.log, f"Source {self.name}: error appending a batch of {len(events)} events to the "
                                    f"channel, answering 503 ({exc}); consider a larger channel capacity or faster "
                                    f"sinks")
            return 503, f"Error appending event to channel. Channel might be full. {exc}"
        except Exception as exc:
            self.counter.add(generic_processing_fail=1)
            _rate_limited(self.log, f"Source {self.name}: unexpected error appending events to the channel: {exc}")
            return 500, f"Unexpected error while appending event to channel. {exc}"
        return 200, ""
