"""The Avro source: receives events over Flume's Avro RPC from Avro sinks (pyflume's or Apache Flume's) and
``flume-ng avro-client``.

Each ``append`` / ``appendBatch`` is committed to the channels before the answer; the answer is ``OK`` only after
the commit and ``FAILED`` when the channels refused (full): the sender keeps the batch and retries. A connection
that sends something that is not a valid request is closed with a logged reason; the source goes on.
"""

from __future__ import annotations

import fnmatch
import socket
import ssl

from agent import rpc
from agent.core import ChannelException
from agent.listen import BIND_PROP, ListeningSource, TcpListener, port_prop, tls_handshake
from agent.spec import Conf, Prop, Spec
from agent.tls import ServerTls, server_tls_props

__all__ = ["AvroSource", "IpFilter"]


class IpFilter:
    """Flume's ipFilterRules: ``allow|deny:ip|name:pattern`` separated by commas; the first matching rule decides;
    a connection no rule matches is allowed."""

    def __init__(self, text: str):
        self.rules: list[tuple[bool, str, str]] = []
        for part in [p.strip() for p in text.split(",") if p.strip()]:
            bits = part.split(":", 2)
            if len(bits) != 3 or bits[0] not in ("allow", "deny") or bits[1] not in ("ip", "name"):
                raise ValueError(f"bad rule '{part}': expected allow|deny:ip|name:<pattern>, e.g. allow:ip:127.*")
            self.rules.append((bits[0] == "allow", bits[1], bits[2]))

    def allows(self, ip: str) -> bool:
        name = None
        for allow, kind, pattern in self.rules:
            if kind == "ip":
                value = ip
            else:
                if name is None:
                    try:
                        name = socket.gethostbyaddr(ip)[0]
                    except OSError:
                        name = ip
                value = name
            if fnmatch.fnmatchcase(value, pattern):
                return allow
        return True


class AvroSource(ListeningSource):
    """Listens for Flume Avro RPC; answers OK only after the batch is committed to the channels."""

    alias = "avro"
    flume_class = "org.apache.flume.source.AvroSource"
    spec = Spec(
        BIND_PROP,
        port_prop(),
        Prop("threads", "int", None, "Accepted; Flume 1.11 does not use it either (one thread per connection).",
             min=1),
        Prop("compression-type", "enum", "none", "deflate: zlib-compress both directions (senders must match).",
             choices={"none": "", "deflate": ""}),
        *server_tls_props("TLS"),
        Prop("ipFilter", "bool", False, "Check each connection against ipFilterRules."),
        Prop("ipFilterRules", "str", None, "allow|deny:ip|name:<pattern>, comma-separated; first match decides."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        config = self.config
        self.bind: str = config.bind
        self.port: int = config.port
        self.deflate = config.compression_type == "deflate"
        self._tls = ServerTls(conf) if config.ssl else None
        self.ssl_context: ssl.SSLContext | None = None  # read from the key store at start
        self.filter: IpFilter | None = None
        if config.ip_filter:
            try:
                self.filter = IpFilter(config.ip_filter_rules or "")
            except ValueError as exc:
                conf.error(str(exc), "ipFilterRules")

    def start(self) -> None:
        if self._tls is not None:
            self.ssl_context = self._tls.context()  # OSError naming the file when the key material cannot be read
        handshake = self._handshake_in_zlib if self.deflate else tls_handshake(self.ssl_context)
        listener = TcpListener(self, self.bind, [self.port], self._serve, backlog=1024, keepalive=True, count=True,
                               handshake=handshake if self.ssl_context is not None else None,
                               allow=self._allow if self.filter is not None else None)
        self.port = self.listen(listener).ports[0]
        self.log.info("Avro source %s started on %s:%d%s%s", self.name, self.bind, self.port,
                      " (deflate)" if self.deflate else "", " (TLS)" if self.ssl_context else "")

    def stop(self) -> None:
        self.stop_listening()
        self.log.info("Avro source %s stopped", self.name)

    def _allow(self, ip: str) -> bool:
        assert self.filter is not None
        if self.filter.allows(ip):
            return True
        self.log.info("Avro source %s: connection from %s refused by ipFilterRules", self.name, ip)
        return False

    def _handshake_in_zlib(self, sock: socket.socket) -> socket.socket:
        """TLS with deflate, in Flume 1.11's order: the TLS records travel inside the zlib streams."""
        assert self.ssl_context is not None
        secure = rpc.ZlibTlsSocket(sock, self.ssl_context, server_side=True)
        secure.do_handshake()
        return secure  # type: ignore[return-value]

    def _serve(self, sock: socket.socket, port: int, addr: tuple) -> None:
        """One connection: each request is answered once its events are committed (OK) or refused (FAILED)."""
        peer = f"{addr[0]}:{addr[1]}"
        # with TLS, deflate is done around it by the ZlibTlsSocket, not on the packs
        conn = rpc.Connection(sock, deflate=self.deflate and self.ssl_context is None)
        state = rpc.ServerState()
        try:
            while not self.stopping.is_set():
                try:
                    serial, payload = conn.read_pack()
                    prefix, name, events, kind = rpc.decode_request(state, payload)
                except EOFError:
                    return
                except rpc.FrameError as exc:
                    self.log.warning("Avro source %s: closing the connection from %s: %s", self.name, peer, exc)
                    return
                if kind in ("none", "ping"):
                    conn.write_pack(serial, prefix)
                elif kind == "unknown" or events is None:
                    conn.write_pack(serial, rpc.encode_response(
                        prefix, error=f"org.apache.avro.AvroRuntimeException: No such remote message: {name}"))
                else:
                    pair = "append" if kind == "append" else "append_batch"  # the counters it goes to
                    if state.refusing:  # pipelined behind a refused call (rpc.PIPELINE_META): received, not tried
                        self.counter.delivered(len(events), 0, pair)
                        status = "FAILED"
                    else:
                        status = self._commit(events, pair)
                    conn.write_pack(serial, rpc.encode_response(prefix, status))
                    if status != "OK" and state.pipeline:
                        state.refusing = True
        except OSError as exc:
            if not self.stopping.is_set():
                self.log.info("Avro source %s: connection from %s ended: %s", self.name, peer, exc)
        finally:
            conn.close()

    def _commit(self, events: list, pair: str) -> str:
        try:
            self.deliver(events, count=pair)
        except ChannelException as exc:
            self.log.warning("Avro source %s: the channel refused %d events (%s); answering FAILED so the sender "
                             "retries", self.name, len(events), exc)
            return "FAILED"
        return "OK"
