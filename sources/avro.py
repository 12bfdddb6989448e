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
import threading

from agent import rpc
from agent.core import ChannelException, EventDrivenSource, _rate_limited
from agent.spec import Conf, Prop, Spec
from agent.tls import HANDSHAKE_TIMEOUT, ServerTls, server_tls_props

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


class AvroSource(EventDrivenSource):
    """Listens for Flume Avro RPC; answers OK only after the batch is committed to the channels."""

    alias = "avro"
    flume_class = "org.apache.flume.source.AvroSource"
    spec = Spec(
        Prop("bind", "str", required=True, doc="Host name or IP address to listen on."),
        Prop("port", "int", required=True, doc="Port to listen on.", min=0, max=65535),
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
        self.bind = conf["bind"]
        self.port = conf["port"]
        self.deflate = conf["compression-type"] == "deflate"
        self._tls = ServerTls(conf) if conf["ssl"] else None
        self.ssl_context: ssl.SSLContext | None = None  # read from the key store at start
        self.filter: IpFilter | None = None
        if conf["ipFilter"]:
            try:
                self.filter = IpFilter(conf.get("ipFilterRules") or "")
            except ValueError as exc:
                conf.error(str(exc), "ipFilterRules")
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None
        self._conns: set[rpc.Connection] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._tls is not None:
            self.ssl_context = self._tls.context()  # OSError naming the file when the key material cannot be read
        sock = socket.socket(socket.AF_INET6 if ":" in self.bind else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.bind, self.port))
        sock.listen(1024)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._stop.clear()
        self._acceptor = threading.Thread(target=self._accept, name=f"{self.name}-accept", daemon=True)
        self._acceptor.start()
        self.counter.started()
        self.log.info("Avro source %s started on %s:%d%s%s", self.name, self.bind, self.port,
                      " (deflate)" if self.deflate else "", " (TLS)" if self.ssl_context else "")

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        if self._acceptor is not None:
            self._acceptor.join(5)
        with self._lock:
            for c in list(self._conns):
                try:
                    c.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.counter.stopped()
        self.log.info("Avro source %s stopped", self.name)

    def failed(self) -> str | None:
        if self._acceptor is not None and not self._acceptor.is_alive() and not self._stop.is_set():
            return "accept thread ended"
        return None

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                sock, addr = self._sock.accept()
            except OSError:
                if self._stop.is_set():
                    return
                continue
            if self.filter is not None and not self.filter.allows(addr[0]):
                self.log.info("Avro source %s: connection from %s refused by ipFilterRules", self.name, addr[0])
                sock.close()
                continue
            threading.Thread(target=self._serve, args=(sock, addr), name=f"{self.name}-conn", daemon=True).start()

    def _serve(self, sock: socket.socket, addr: tuple) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if self.ssl_context is not None:
            sock.settimeout(HANDSHAKE_TIMEOUT)
            try:
                if self.deflate:  # Flume 1.11's order: the TLS records travel inside the zlib streams
                    sock = rpc.ZlibTlsSocket(sock, self.ssl_context, server_side=True)  # type: ignore[assignment]
                    sock.do_handshake()  # type: ignore[attr-defined]
                else:
                    sock = self.ssl_context.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError, rpc.FrameError) as exc:
                _rate_limited(self.log, f"Avro source {self.name}: a TLS handshake failed: {exc} (client {peer})")
                sock.close()
                return
            sock.settimeout(None)
        # with TLS, deflate is done around it by the ZlibTlsSocket, not on the packs
        conn = rpc.Connection(sock, deflate=self.deflate and self.ssl_context is None)
        state = rpc.ServerState()
        with self._lock:
            self._conns.add(conn)
        with self.counter.lock:
            self.counter.open_connections += 1
        try:
            while not self._stop.is_set():
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
                    continue
                if kind == "unknown" or events is None:
                    conn.write_pack(serial, rpc.encode_response(
                        prefix, error=f"org.apache.avro.AvroRuntimeException: No such remote message: {name}"))
                    continue
                conn.write_pack(serial, rpc.encode_response(prefix, self._commit(events, kind)))
        except OSError as exc:
            if not self._stop.is_set():
                self.log.info("Avro source %s: connection from %s ended: %s", self.name, peer, exc)
        finally:
            with self._lock:
                self._conns.discard(conn)
            with self.counter.lock:
                self.counter.open_connections -= 1
            conn.close()

    def _commit(self, events: list, kind: str) -> str:
        n = len(events)
        counter = self.counter
        assert self.channel_processor is not None
        try:
            self.channel_processor.process_batch(events)
        except ChannelException as exc:
            with counter.lock:
                counter.channel_write_fail += 1
                counter.event_received += n
                if kind == "append":
                    counter.append_received += 1
                else:
                    counter.append_batch_received += 1
            self.log.warning("Avro source %s: the channel refused %d events (%s); answering FAILED so the sender "
                             "retries", self.name, n, exc)
            return "FAILED"
        with counter.lock:
            counter.event_received += n
            counter.event_accepted += n
            if kind == "append":
                counter.append_received += 1
                counter.append_accepted += 1
            else:
                counter.append_batch_received += 1
                counter.append_batch_accepted += 1
        return "OK"
