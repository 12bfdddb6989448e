"""netcat sources: each line received on a TCP port (``netcat``) or each UDP datagram (``netcatudp``) is an event.

The TCP source reads large chunks and hands every complete line of a chunk to the channel as one batch. With
``ack-every-event = true`` each event still gets its ``OK`` only after it was committed (the OKs of a batch go
out in one write). A full channel is back-pressure: the source stops reading that connection and retries the
same batch, so a client is slowed down, never silently dropped (Flume replies FAILED and loses the line).
"""

from __future__ import annotations

import socket
import threading
import time

from agent.core import ChannelException, ChannelProcessor, Event, EventDrivenSource, _rate_limited
from agent.spec import Conf, Prop, Spec

__all__ = ["NetcatSource", "NetcatUdpSource"]

_CHUNK = 256 * 1024
_RETRY_MAX = 1.0


class NetcatSource(EventDrivenSource):
    """Each line received on a TCP port becomes one event (the line without its newline; a ``\\r`` is kept)."""

    alias = "netcat"
    flume_class = "org.apache.flume.source.NetcatSource"
    spec = Spec(
        Prop("bind", "str", required=True, doc="Host name or IP address to listen on."),
        Prop("port", "int", required=True, doc="TCP port to listen on (0 picks a free port).", min=0, max=65535),
        Prop("max-line-length", "int", 512,
             "Longest line in characters, newline included. A longer line gets 'FAILED: Event exceeds the maximum "
             "length' and the connection is closed, as in Flume.", min=1),
        Prop("ack-every-event", "bool", True, "Reply 'OK' after each event has been committed to the channel."),
        Prop("encoding", "str", "utf-8", "Character set of the incoming text; bodies are stored as UTF-8."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.bind = conf["bind"]
        self.port = conf["port"]
        self.max_len = conf["max-line-length"]
        self.ack = conf["ack-every-event"]
        enc = conf["encoding"]
        try:
            import codecs

            self.encoding = codecs.lookup(enc).name
        except LookupError:
            conf.error(f"unknown character set {enc!r}", "encoding")
            self.encoding = "utf-8"
        self._server: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._conns: dict[int, socket.socket] = {}
        self._conn_lock = threading.Lock()
        self._running = False
        self._crash: str | None = None

    # Lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        srv = socket.socket(socket.AF_INET6 if ":" in self.bind else socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            srv.bind((self.bind, self.port))
        except OSError as exc:
            srv.close()
            raise OSError(f"cannot listen on {self.bind}:{self.port}: {exc.strerror or exc}") from None
        srv.listen(128)
        self.port = srv.getsockname()[1]
        self._server = srv
        self._running = True
        self._crash = None
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"netcat-{self.name}-accept", daemon=True)
        self._acceptor.start()
        self.log.info("Source %s listening on %s:%d", self.name, self.bind, self.port)

    def stop(self) -> None:
        self._running = False
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._conn_lock:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._acceptor is not None:
            self._acceptor.join(2.0)
        self.log.info("Source %s stopped", self.name)

    def failed(self) -> str | None:
        return self._crash

    # I/O ----------------------------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        srv = self._server
        assert srv is not None
        while self._running:
            try:
                conn, addr = srv.accept()
            except OSError:
                if self._running:
                    self._crash = "the listening socket failed"
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve, args=(conn,), name=f"netcat-{self.name}-{addr[1]}", daemon=True)
            with self._conn_lock:
                self._conns[id(conn)] = conn
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._serve_lines(conn)
        except OSError:
            pass
        except Exception:
            self.log.exception("Source %s: connection handler failed", self.name)
        finally:
            with self._conn_lock:
                self._conns.pop(id(conn), None)
            try:
                conn.close()
            except OSError:
                pass

    def _serve_lines(self, conn: socket.socket) -> None:
        recv = conn.recv
        max_len = self.max_len
        max_bytes_ok = max_len - 1  # a line of at most this many bytes is within the limit whatever its encoding
        utf8 = self.encoding == "utf-8"
        pending = b""
        while self._running:
            chunk = recv(_CHUNK)
            if not chunk:
                return  # Flume drops a final line without its newline; so do we
            if pending:
                chunk = pending + chunk
            lines = chunk.split(b"\n")
            pending = lines.pop()
            if len(pending) > max_bytes_ok and self._too_long(pending, partial=True):
                self._reject(conn)
                return
            if not lines:
                continue
            if max(map(len, lines)) > max_bytes_ok:
                keep = []
                for line in lines:
                    if len(line) > max_bytes_ok and self._too_long(line, partial=False):
                        if keep:
                            self._deliver(conn, keep)
                        self._reject(conn)
                        return
                    keep.append(line)
                lines = keep
            if not utf8:
                lines = [line.decode(self.encoding, "replace").encode() for line in lines]
            self._deliver(conn, lines)

    def _too_long(self, line: bytes, partial: bool) -> bool:
        chars = len(line.decode(self.encoding, "replace"))
        return chars + (0 if partial else 1) > self.max_len

    def _reject(self, conn: socket.socket) -> None:
        msg = f"FAILED: Event exceeds the maximum length ({self.max_len} chars, including newline)\n"
        try:
            conn.sendall(msg.encode(self.encoding))
        except OSError:
            pass
        self.log.warning("Source %s: a client sent a line longer than max-line-length (%d); connection closed",
                         self.name, self.max_len)

    def _deliver(self, conn: socket.socket, lines: list[bytes]) -> None:
        proc = self.channel_processor
        assert proc is not None
        limit = proc.max_batch
        if limit and len(lines) > limit:
            for i in range(0, len(lines), limit):
                self._deliver_batch(conn, proc, lines[i:i + limit])
        else:
            self._deliver_batch(conn, proc, lines)

    def _deliver_batch(self, conn: socket.socket, proc: ChannelProcessor, lines: list[bytes]) -> None:
        events = list(map(Event, lines))
        delay = 0.01
        while True:
            try:
                proc.process_batch(events)
                break
            except ChannelException as exc:
                if not self._running:
                    raise OSError("source stopping") from exc
                _rate_limited(self.log, f"Source {self.name}: channel refused a batch of {len(events)} events "
                                        f"({exc}); holding the connection and retrying")
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
        if self.ack:
            conn.sendall(b"OK\n" * len(events))

    def metrics(self) -> dict[str, str] | None:
        return None  # Flume's NetcatSource registers no MBean


class NetcatUdpSource(EventDrivenSource):
    """Each UDP datagram becomes one event: the bytes before its first newline."""

    alias = "netcatudp"
    flume_class = "org.apache.flume.source.NetcatUdpSource"
    spec = Spec(
        Prop("bind", "str", "0.0.0.0", "Host name or IP address to listen on (all interfaces by default)."),
        Prop("port", "int", required=True, doc="UDP port to listen on.", min=0, max=65535),
        Prop("remoteAddress", "str", None,
             "Header that gets the sender's address as '/ip:port' (Flume's user guide calls it "
             "remoteAddressHeader; Flume's code reads remoteAddress, so both are accepted).",
             aliases=("remoteAddressHeader",)),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.bind = conf["bind"]
        self.port = conf["port"]
        self.addr_header = conf.get("remoteAddress")
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._crash: str | None = None

    def start(self) -> None:
        s = socket.socket(socket.AF_INET6 if ":" in self.bind else socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        try:
            s.bind((self.bind, self.port))
        except OSError as exc:
            s.close()
            raise OSError(f"cannot listen on udp {self.bind}:{self.port}: {exc.strerror or exc}") from None
        self.port = s.getsockname()[1]
        self._sock = s
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=f"netcatudp-{self.name}", daemon=True)
        self._thread.start()
        self.log.info("Source %s listening on udp %s:%d", self.name, self.bind, self.port)

    def stop(self) -> None:
        self._running = False
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(2.0)

    def failed(self) -> str | None:
        return self._crash

    def _loop(self) -> None:
        s = self._sock
        assert s is not None
        s.settimeout(0.5)
        header = self.addr_header
        proc = self.channel_processor
        assert proc is not None
        while self._running:
            try:
                data, addr = s.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._running:
                    self._crash = "the UDP socket failed"
                return
            batch = [(data, addr)]
            # Drain what else is already queued, so a burst becomes one transaction.
            while len(batch) < 1000:
                try:
                    batch.append(s.recvfrom(65536, socket.MSG_DONTWAIT))
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
            events = []
            for d, a in batch:
                body = d.split(b"\n", 1)[0]
                ev = Event(body)
                if header:
                    ev.headers[header] = f"/{a[0]}:{a[1]}"
                events.append(ev)
            delay = 0.01
            while self._running:
                try:
                    proc.process_batch(events)
                    break
                except ChannelException as exc:
                    _rate_limited(self.log, f"Source {self.name}: channel refused {len(events)} datagrams ({exc}); "
                                            f"retrying")
                    time.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)

    def metrics(self) -> dict[str, str] | None:
        return None  # Flume's NetcatUdpSource registers no MBean
