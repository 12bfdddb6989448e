"""netcat sources: each line received on a TCP port (``netcat``) or each UDP datagram (``netcatudp``) is an event.

The TCP source reads large chunks and hands every complete line of a chunk to the channel as one batch. With
``ack-every-event = true`` each event still gets its ``OK`` only after it was committed (the OKs of a batch go
out in one write). A full channel is back-pressure: the source stops reading that connection and retries the
same batch, so a client is slowed down, never silently dropped (Flume replies FAILED and loses the line).
"""

from __future__ import annotations

import codecs
import socket
from typing import Any

from agent.core import Batch, Event
from agent.listen import BIND_PROP, ListeningSource, TcpListener, UdpListener, port_prop
from agent.spec import Conf, Prop, Spec

__all__ = ["NetcatSource", "NetcatUdpSource"]

_CHUNK = 256 * 1024


class NetcatSource(ListeningSource):
    """Each line received on a TCP port becomes one event (the line without its newline; a ``\\r`` is kept)."""

    alias = "netcat"
    flume_class = "org.apache.flume.source.NetcatSource"
    spec = Spec(
        BIND_PROP,
        port_prop(),
        Prop("max-line-length", "int", 512,
             "Longest line in characters, newline included. A longer line gets 'FAILED: Event exceeds the maximum "
             "length' and the connection is closed, as in Flume.", min=1),
        Prop("ack-every-event", "bool", True, "Reply 'OK' after each event has been committed to the channel."),
        Prop("encoding", "str", "utf-8", "Character set of the incoming text; bodies are stored as UTF-8."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        config = self.config
        self.bind: str = config.bind
        self.port: int = config.port
        self.max_len: int = config.max_line_length
        self.ack: bool = config.ack_every_event
        try:
            self.encoding = codecs.lookup(config.encoding).name
        except LookupError:
            conf.error(f"unknown character set {config.encoding!r}", "encoding")
            self.encoding = "utf-8"

    def start(self) -> None:
        self.port = self.listen(TcpListener(self, self.bind, [self.port], self._serve)).ports[0]
        self.log.info("Source %s listening on %s:%d", self.name, self.bind, self.port)

    # I/O ----------------------------------------------------------------------------------------------------
    def _serve(self, conn: socket.socket, port: int, addr: Any) -> None:
        """One connection: complete lines of each chunk read become one batch."""
        recv = conn.recv
        max_len = self.max_len
        max_bytes_ok = max_len - 1  # a line of at most this many bytes is within the limit whatever its encoding
        utf8 = self.encoding == "utf-8"
        pending = b""
        while not self.stopping.is_set():
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
        """Commit the lines, retrying while the channel is full (the connection is not read meanwhile); each
        committed slice is acknowledged with one write when ack-every-event is on."""
        acknowledge = (lambda n: conn.sendall(b"OK\n" * n)) if self.ack else None
        if not self.deliver(Batch(lines), hold=True, sliced=True, committed=acknowledge):
            raise OSError("source stopping")

    def metrics(self) -> dict[str, str] | None:
        return None  # Flume's NetcatSource registers no MBean


class NetcatUdpSource(ListeningSource):
    """Each UDP datagram becomes one event: the bytes before its first newline."""

    alias = "netcatudp"
    flume_class = "org.apache.flume.source.NetcatUdpSource"
    spec = Spec(
        Prop("bind", "str", "0.0.0.0", "Host name or IP address to listen on (all interfaces by default)."),
        port_prop("UDP"),
        Prop("remoteAddress", "str", None,
             "Header that gets the sender's address as '/ip:port' (Flume's user guide calls it "
             "remoteAddressHeader; Flume's code reads remoteAddress, so both are accepted).",
             aliases=("remoteAddressHeader",)),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.bind: str = self.config.bind
        self.port: int = self.config.port
        self.addr_header: str | None = self.config.remote_address

    def start(self) -> None:
        self.port = self.listen(UdpListener(self, self.bind, self.port, self._receive)).port
        self.log.info("Source %s listening on udp %s:%d", self.name, self.bind, self.port)

    def stop(self) -> None:
        self.stop_listening()  # netcatudp has never logged a line when it stops

    def _receive(self, datagrams: list[tuple[bytes, Any]]) -> bool:
        """A burst of datagrams becomes one batch, retried while the channel is full (the socket buffers)."""
        header = self.addr_header
        events = []
        for data, addr in datagrams:
            event = Event(data.split(b"\n", 1)[0])
            if header:
                event.headers[header] = f"/{addr[0]}:{addr[1]}"
            events.append(event)
        return self.deliver(events, hold=True)

    def metrics(self) -> dict[str, str] | None:
        return None  # Flume's NetcatUdpSource registers no MBean
