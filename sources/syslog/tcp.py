"""``syslogtcp``: syslog over TCP (or TLS), one message per line or RFC 6587 octet-counted (decided per
connection, :mod:`.framing`), parsed by Flume's SyslogUtils."""

from __future__ import annotations

import socket
from typing import Any

from agent.listen import port_prop
from agent.spec import Conf, Prop, Spec
from sources.syslog.base import CLIENT_PROPS, FORMAT_PROP, SSL_PROPS, SyslogSource, keep_fields_prop
from sources.syslog.decoder import SyslogUtilsDecoder
from sources.syslog.framing import OctetCountedFrames, starts_octet_counted

__all__ = ["SyslogTcpSource"]

_CHUNK = 256 * 1024


class SyslogTcpSource(SyslogSource):
    """Syslog over TCP, one message per line, parsed by Flume's SyslogUtils (RFC 5424, then RFC 3164). Beyond
    Flume, a connection whose first byte is a digit is read as RFC 6587 octet counting (`<len> <msg>`, what syslog-ng's
    syslog() destination, rsyslog with octet-counted framing and `logger --octet-count` send)."""

    alias = "syslogtcp"
    flume_class = "org.apache.flume.source.SyslogTcpSource"
    spec = Spec(
        Prop("host", "str", None,
             "Host name or IP address to listen on (every interface when unset; the user guide marks it required, "
             "Flume's code does not)."),
        port_prop(),
        Prop("eventSize", "int", 2500,
             "Longest message in bytes, priority included; a longer one is cut and flagged Incomplete.", min=1),
        keep_fields_prop(""),
        *CLIENT_PROPS,
        FORMAT_PROP,
        *SSL_PROPS,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.event_size: int = self.config.event_size
        self.port: int = self.config.port

    def start(self) -> None:
        listener = self._listen_tcp([self.port], self._serve)
        self.port = listener.ports[0]
        self.log.info("Source %s listening for syslog on tcp %s:%d", self.name, self.host or "*", self.port)

    def _serve(self, conn: socket.socket, port: int, addr: Any) -> None:
        """One connection: the messages completed by each chunk read become one batch."""
        decoder = SyslogUtilsDecoder(self.event_size, self.keep)
        extra = self._client_headers(addr[0]) if (self.ip_header or self.hostname_header) else None
        recv = conn.recv
        frames: OctetCountedFrames | None = None  # RFC 6587 octet counting, decided by the first byte
        decided = False
        while not self.stopping.is_set():
            chunk = recv(_CHUNK)
            if not decided and chunk and (octet := starts_octet_counted(chunk)) is not None:
                decided, frames = True, OctetCountedFrames(self.event_size) if octet else None
            more = bool(chunk)
            if frames is not None:
                pieces, more = self._octet_pieces(frames, chunk, addr)
                events = decoder.framed(pieces)
            elif chunk:
                events = decoder.feed(chunk)
            else:
                last = decoder.finish()
                events = [last] if last is not None else []
            if events and not self._deliver(events, extra):
                return
            if not more:
                return
