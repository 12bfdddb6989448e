"""``multiport_syslogtcp``: syslog over TCP (or TLS) on several ports at once, parsed by Flume's SyslogParser, with
a character set per port; one message per line or RFC 6587 octet-counted (decided per connection, :mod:`.framing`)."""

from __future__ import annotations

import codecs
import socket
from typing import Any

from agent.core import Event
from agent.spec import Conf, Prop, Spec
from sources.syslog.base import CLIENT_PROPS, HOST_PROP, SSL_PROPS, SyslogSource, keep_fields_prop
from sources.syslog.fields import INCOMPLETE, INVALID, STATUS_HEADER
from sources.syslog.framing import OctetCountedFrames, starts_octet_counted
from sources.syslog.parser import SyslogParser, split_lines

__all__ = ["MultiportSyslogTCPSource"]


class MultiportSyslogTCPSource(SyslogSource):
    """Syslog over TCP on several ports at once, parsed by Flume's SyslogParser, with a character set per port.
    Beyond Flume, a connection whose first byte is a digit is read as RFC 6587 octet counting (`<len> <msg>`, what
    syslog-ng's syslog() destination, rsyslog with octet-counted framing and `logger --octet-count` send)."""

    alias = "multiport_syslogtcp"
    flume_class = "org.apache.flume.source.MultiportSyslogTCPSource"
    spec = Spec(
        HOST_PROP,
        Prop("ports", "list", required=True, doc="Space-separated TCP ports to listen on."),
        Prop("eventSize", "int", 2500,
             "Longest line in bytes; a longer one is cut there and flagged Incomplete.", min=1),
        keep_fields_prop(""),
        Prop("portHeader", "str", None, "Header that gets the port the message arrived on."),
        *CLIENT_PROPS,
        Prop("charset.default", "str", "UTF-8", "Character set of the messages (a line that does not decode is "
                                                "kept as raw bytes and flagged Invalid)."),
        Prop("charset.port.", prefix=True, doc="charset.port.<port> = the character set of that port's messages."),
        Prop("batchSize", "int", 100, "Most events per channel transaction.", min=1),
        # Flume's code reads readBufferBytes; its user guide documents readBufferSize, so both are accepted.
        Prop("readBufferBytes", "int", 1024,
             "Socket read size in bytes (also read as readBufferSize, the user guide's name); pyflume reads at "
             "least 64 KiB at a time.", min=1, aliases=("readBufferSize",)),
        Prop("numProcessors", "int", None,
             "Accepted and ignored: MINA's processor threads; pyflume serves each connection on its own thread.",
             min=1),
        *SSL_PROPS,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        config = self.config
        self.ports: list[int] = []
        for text in config.ports or []:
            try:
                port = int(text, 10)
                if not 0 <= port <= 65535:
                    raise ValueError
            except ValueError:
                conf.error(f"{text!r} is not a port number (0-65535)", "ports")
                continue
            self.ports.append(port)
        self.max_len: int = config.event_size
        self.read_size = max(config.read_buffer_bytes, 64 * 1024)
        self.port_header: str | None = config.port_header
        self.default_charset = _charset(conf, config.charset_default, "charset.default")
        self.port_charsets: dict[int, str] = {}
        for key, value in config.charset_port.items():
            if not key.isdigit():
                conf.error(f"{key!r} is not a port number", "charset.port." + key)
                continue
            self.port_charsets[int(key)] = _charset(conf, value, "charset.port." + key)

    def start(self) -> None:
        listener = self._listen_tcp(self.ports, self._serve)
        self.log.info("Source %s listening for syslog on tcp %s ports %s", self.name, self.host or "*",
                      " ".join(map(str, listener.ports)))

    def _serve(self, conn: socket.socket, port: int, addr: Any) -> None:
        """One connection: the lines completed by each chunk read go to the channel in batches of batchSize."""
        parser = SyslogParser()
        charset = self.port_charsets.get(port, self.default_charset)
        extra = self._client_headers(addr[0]) if (self.ip_header or self.hostname_header) else {}
        if self.port_header:
            extra[self.port_header] = str(port)
        recv = conn.recv
        saved = b""
        frames: OctetCountedFrames | None = None  # RFC 6587 octet counting, decided by the first byte
        decided = False
        while not self.stopping.is_set():
            chunk = recv(self.read_size)
            if not decided and chunk and (octet := starts_octet_counted(chunk)) is not None:
                decided, frames = True, OctetCountedFrames(self.max_len) if octet else None
            more = bool(chunk)
            if frames is not None:
                pieces, more = self._octet_pieces(frames, chunk, addr)
                lines = [(piece, cut) for piece, _first, cut in pieces]
            elif chunk:
                lines, saved = split_lines(chunk, saved, self.max_len)
            else:
                lines, saved = ([(saved, False)] if saved else []), b""
            events = self._events(parser, lines, charset)
            if events and not self._deliver(events, extra):
                return
            if not more:
                return

    def _events(self, parser: SyslogParser, lines: list[tuple[bytes, bool]], charset: str) -> list[Event]:
        """One event per non-empty line; a line that does not decode or parse is kept, flagged Invalid (and
        counted as EventReadFail)."""
        events = []
        failed = 0
        keep = self.keep
        for line, incomplete in lines:
            if not line:
                continue
            try:
                msg = line.decode(charset)
            except UnicodeDecodeError:
                failed += 1
                events.append(Event(line, {STATUS_HEADER: INVALID}))
                continue
            try:
                headers, data = parser.parse(msg, keep)
            except ValueError:
                failed += 1
                events.append(Event(msg.encode(charset, "replace"), {STATUS_HEADER: INVALID}))
                continue
            if incomplete:
                headers[STATUS_HEADER] = INCOMPLETE
            events.append(Event(data.encode(charset, "replace"), headers))
        if failed:
            self.counter.add(event_read_fail=failed)
        return events


def _charset(conf: Conf, name: str, prop: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        conf.error(f"unknown character set {name!r}", prop)
        return "utf-8"
