"""The Thrift source: receives events over Flume's Thrift RPC (``ThriftSourceProtocol``: ``append``,
``appendBatch``) from Thrift sinks (pyflume's or Apache Flume's) and applications using Flume's SDK
``ThriftRpcClient`` or :class:`agent.thrift_rpc.ThriftClient`, in the compact (Flume's default) or binary
protocol, over framed transport, optionally over TLS. With ``kerberos = true`` every client authenticates with
Kerberos first (Thrift's SASL transport with GSSAPI, QOP auth, in place of the framed transport, as Flume's
secure ThriftSource); a client that does not is told why (SASL BAD) and disconnected.

Each call is committed to the channels before the answer: ``OK`` only after the commit, ``FAILED`` when the
channels refused (full), so the sender keeps the batch and retries. A connection that sends something that is not
a valid call is closed with a logged reason; the source goes on. :class:`ThriftServerSource` is the serving loop
this source and the scribe source share.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable

from agent import thrift_rpc as wire
from agent import thrift_sasl
from agent.core import ChannelException, _rate_limited
from agent.listen import BIND_PROP, HANDSHAKE_TIMEOUT, ListeningSource, TcpListener, port_prop, tls_handshake
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
        #: turns an accepted (TLS) socket into the connection carrying the frames (the SASL negotiation of a
        #: secure source); None: framed transport at once
        self.handshake: Callable[[socket.socket], wire.FramedConnection] | None = None

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
        if self.handshake is None:
            conn = wire.FramedConnection(sock, self.max_frame)
        else:
            try:
                sock.settimeout(HANDSHAKE_TIMEOUT)
                conn = self.handshake(sock)
                sock.settimeout(None)
            except EOFError:  # a port probe
                if slots is not None:
                    slots.release()
                return
            except (OSError, wire.FrameError) as exc:
                # the client's host, not its port, in the head: a flood of refused clients logs once per 10 s
                _rate_limited(self.log, f"{self.label} source {self.name}: refused the connection from {addr[0]} "
                                        f"(port {addr[1]}): {exc}")
                if slots is not None:
                    slots.release()
                return
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
        *thrift_sasl.SOURCE_KERBEROS_PROPS,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.bind = c.bind
        self.port = c.port
        self.protocol = wire.flume_protocol(conf, "thrift source")
        self._tls = ServerTls(conf) if c.ssl else None
        self.kerberos = thrift_sasl.source_identity(conf)
        self.kerberos_identities = [self.kerberos] if self.kerberos else []  # one principal per agent
        if c.threads > 0:  # Flume: the selector server's worker pool; with ssl or kerberos, one thread per connection
            slots = threading.BoundedSemaphore(c.threads)
            if c.ssl or c.kerberos:
                self.connection_slots = slots
            else:
                self.request_slots = slots

    def start(self) -> None:
        if self._tls is not None:
            self.ssl_context = self._tls.context()  # OSError naming the file when the key material cannot be read
        if self.kerberos is not None:
            ident = self.kerberos
            thrift_sasl.acceptor_credentials(ident.principal, ident.keytab)  # SaslError now when it cannot accept
            self.handshake = self._sasl
            self.log.info("Thrift source %s: clients authenticate with Kerberos to %s (keytab %s)", self.name,
                          ident.principal, ident.keytab)
        super().start()

    def _sasl(self, sock: socket.socket) -> wire.FramedConnection:
        # credentials of its own per connection (cheap: the keytab is read by the library): no GSSAPI handle is
        # shared between connection threads, and a keytab replaced with new keys is used from the next connection
        assert self.kerberos is not None
        creds = thrift_sasl.acceptor_credentials(self.kerberos.principal, self.kerberos.keytab)
        conn = thrift_sasl.server(sock, creds, "auth", max_frame=self.max_frame)
        self.log.debug("Thrift source %s: %s authenticated", self.name, conn.peer)
        return conn

    def answer(self, call: wire.Call) -> int:
        events = call.events or []  # a Batch when the events share their headers
        try:
            self.deliver(events, count="append" if call.name == "append" else "append_batch")
        except ChannelException as exc:
            _rate_limited(self.log, f"Thrift source {self.name}: the channel refused {len(events)} events ({exc}); "
                                    f"answering FAILED so the sender retries")
            return 1  # FAILED
        return 0  # OK
