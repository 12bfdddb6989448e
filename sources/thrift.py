"""The Thrift source: receives events over Flume's Thrift RPC (``ThriftSourceProtocol``: ``append``,
``appendBatch``) from Thrift sinks (pyflume's or Apache Flume's) and applications using Flume's SDK
``ThriftRpcClient`` or :class:`agent.thrift_rpc.ThriftClient`, in the compact (Flume's default) or binary
protocol, over framed transport, optionally over TLS.

Each call is committed to the channels before the answer: ``OK`` only after the commit, ``FAILED`` when the
channels refused (full), so the sender keeps the batch and retries. A connection that sends something that is not
a valid call is closed with a logged reason; the source goes on. :class:`ThriftServerSource` is the serving loop
this source and the scribe source share.
"""

from __future__ import annotations

import socket
import ssl
import threading

from agent import thrift_rpc as wire
from agent.core import ChannelException, Event, _rate_limited
from agent.listen import BIND_PROP, ListeningSource, TcpListener, port_prop, tls_handshake
from agent.spec import Conf, Prop, Spec
from agent.tls import ServerTls, server_tls_props

__all__ = ["ThriftSource", "ThriftServerSource"]


class ThriftServerSource(ListeningSource):
    """A source serving a Thrift service over framed transport, one thread per connection.

    A subclass sets ``methods`` (see :data:`agent.thrift_rpc.FLUME_METHODS`), ``protocol``, ``bind``, ``port``,
    and answers each call's events in ``answer(call)`` with the enum value to return. ``request_slots`` bounds the
    calls worked on at once (further calls wait); ``connection_slots`` bounds the connections served at once
    (a connection above it is closed at once)."""

    label = "Thrift"
    methods: dict[str, tuple[str, bool]] = wire.FLUME_METHODS
    strict = True  # binary protocol: write the versioned message header

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.protocol = wire.COMPACT
        self.bind: str | None = None
        self.port = 0
        self.max_frame = wire.DEFAULT_MAX_FRAME
        self.ssl_context: ssl.SSLContext | None = None
        self.request_slots: threading.BoundedSemaphore | None = None
        self.connection_slots: threading.BoundedSemaphore | None = None

    def start(self) -> None:
        listener = TcpListener(self, self.bind, [self.port], self._serve, backlog=1024, keepalive=True,
                               handshake=tls_handshake(self.ssl_context))
        self.port = self.listen(listener).ports[0]
        self.log.info("%s source %s started on %s:%d (%s protocol%s)", self.label, self.name, self.bind or "*",
                      self.port, self.protocol, ", TLS" if self.ssl_context else "")

    def stop(self) -> None:
        self.stop_listening()
        self.log.info("%s source %s stopped", self.label, self.name)

    def answer(self, call: wire.Call) -> int:
        raise NotImplementedError

    def _serve(self, sock: socket.socket, port: int, addr: tuple) -> None:
        """One connection: each call is answered once its events are committed or refused."""
        peer = f"{addr[0]}:{addr[1]}"
        slots = self.connection_slots
        if slots is not None and not slots.acquire(blocking=False):
            _rate_limited(self.log, f"{self.label} source {self.name}: all {self.config.threads} threads are "
                                    f"serving connections; closing the one from {addr[0]}")
            return
        conn = wire.FramedConnection(sock, self.max_frame)
        protocol, methods, strict = self.protocol, self.methods, self.strict
        requests = self.request_slots
        try:
            while not self.stopping.is_set():
                try:
                    call = wire.decode_call(conn.read_frame(), protocol, methods)
                except EOFError:
                    return
                except wire.FrameError as exc:
                    self.log.warning("%s source %s: closing the connection from %s: %s", self.label, self.name,
                                     peer, exc)
                    return
                if call.events is None:
                    reply = wire.encode_exception(protocol, call.name, call.seqid,
                                                  f"Invalid method name: '{call.name}'", strict=strict)
                elif requests is None:
                    reply = wire.encode_reply(protocol, call.name, call.seqid, self.answer(call), strict)
                else:
                    with requests:
                        reply = wire.encode_reply(protocol, call.name, call.seqid, self.answer(call), strict)
                if not call.oneway:
                    conn.write_frame(reply)
        except OSError as exc:
            if not self.stopping.is_set():
                self.log.info("%s source %s: connection from %s ended: %s", self.label, self.name, peer, exc)
        finally:
            conn.close()
            if slots is not None:
                slots.release()


class ThriftSource(ThriftServerSource):
    """Listens for Flume Thrift RPC; answers OK only after the batch is committed to the channels."""

    alias = "thrift"
    flume_class = "org.apache.flume.source.ThriftSource"
    spec = Spec(
        BIND_PROP,
        port_prop(),
        Prop("threads", "int", 0, "At most this many calls are worked on at once (with ssl: connections served "
             "at once; a connection above it is closed), as Flume's Thrift servers do; 0: no limit."),
        wire.THRIFT_PROTOCOL_PROP,
        *server_tls_props("TLS"),
        Prop("kerberos", "bool", False, "Authenticate clients with Kerberos (SASL/GSSAPI): not supported by "
             "pyflume yet."),
        Prop("agent-principal", "str", None, "With kerberos: the principal of this source."),
        Prop("agent-keytab", "str", None, "With kerberos: the keytab of agent-principal."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.bind = c.bind
        self.port = c.port
        self.protocol = wire.flume_protocol(conf, "thrift source")
        self._tls = ServerTls(conf) if c.ssl else None
        if c.kerberos:
            conf.error(wire.KERBEROS_NOT_YET, "kerberos")
        if c.threads > 0:  # Flume: the selector server's worker pool; with ssl, the thread-per-connection pool
            slots = threading.BoundedSemaphore(c.threads)
            if c.ssl:
                self.connection_slots = slots
            else:
                self.request_slots = slots

    def start(self) -> None:
        if self._tls is not None:
            self.ssl_context = self._tls.context()  # OSError naming the file when the key material cannot be read
        super().start()

    def answer(self, call: wire.Call) -> int:
        events: list[Event] = call.events or []
        try:
            self.deliver(events, count="append" if call.name == "append" else "append_batch")
        except ChannelException as exc:
            _rate_limited(self.log, f"Thrift source {self.name}: the channel refused {len(events)} events ({exc}); "
                                    f"answering FAILED so the sender retries")
            return 1  # FAILED
        return 0  # OK
