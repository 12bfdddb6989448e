"""What the three syslog sources share: their common properties, keepFields, the client headers, listening and
stopping.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

from agent.core import Event
from agent.listen import ListeningSource, Serve, TcpListener, tls_handshake
from agent.spec import Conf, Prop
from agent.tls import ServerTls, server_tls_props
from sources.syslog.fields import FIELDS, KEEP_ALL, choose_fields_to_keep
from sources.syslog.framing import FramingError, OctetCountedFrames

__all__ = ["SyslogSource", "HOST_PROP", "SSL_PROPS", "CLIENT_PROPS", "FORMAT_PROP", "keep_fields_prop"]

HOST_PROP = Prop("host", "str", None, "Host name or IP address to listen on (every interface when unset).")
SSL_PROPS = server_tls_props("syslog over TLS (framed as on plain TCP)")
CLIENT_PROPS = (
    Prop("clientIPHeader", "str", None, "Header that gets the client's IP address (do not reuse a syslog header)."),
    Prop("clientHostnameHeader", "str", None,
         "Header that gets the client's host name, by reverse DNS lookup (cached per connection)."),
)
FORMAT_PROP = Prop("format.", prefix=True,
                   doc="Flume's undocumented extra format (format.regex, search, replace, dateFormat): not "
                       "supported yet, rejected.")


def keep_fields_prop(default_doc: str) -> Prop:
    return Prop("keepFields", "str", "none",
                "Which header fields stay in the body: none (the message only), all (the whole line), or any of "
                f"priority version timestamp hostname. true/false are older spellings of all/none.{default_doc}")


class SyslogSource(ListeningSource):
    """The syslog sources' common part: ``host``, ``keepFields``, the client headers, ``format.*`` (refused),
    TLS for the TCP ones, and delivery: each batch is retried while the channel is full (the connection is not
    read meanwhile, the UDP socket buffers), counted as Flume's syslog sources count (events only)."""

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        config = self.config
        self.host: str | None = config.host
        self.keep = _check_keep_fields(conf, config.keep_fields)
        self.ip_header: str | None = config.client_ip_header
        self.hostname_header: str | None = config.client_hostname_header
        for key in getattr(config, "format", {}):  # multiport_syslogtcp has no format.*
            conf.error("format.* (an extra syslog format) is not supported yet", "format." + key)
        self._tls = ServerTls(conf) if getattr(config, "ssl", False) else None

    def _listen_tcp(self, ports: list[int], serve: Serve) -> TcpListener:
        """Listen on ``ports`` (TLS when ``ssl``); OSError naming the address or key file when that fails."""
        # the key store is read here, at start: a missing or wrong file fails the start, naming the file
        context = self._tls.context(session_tickets=False) if self._tls is not None else None
        return self.listen(TcpListener(self, self.host, ports, serve, handshake=tls_handshake(context)))

    def _client_headers(self, ip: str) -> dict[str, str]:
        address = _java_host_address(ip)
        extra: dict[str, str] = {}
        if self.ip_header:
            extra[self.ip_header] = address
        if self.hostname_header:
            extra[self.hostname_header] = _hostname(address)
        return extra

    def _deliver(self, events: list[Event], extra: dict[str, Any] | None = None) -> bool:
        """Add the client headers, then commit in slices of the channels' transactionCapacity (and batchSize),
        retrying each while the channel is full. False when the source stopped first."""
        if extra:
            for e in events:
                e.headers.update(extra)
        return self.deliver(events, hold=True, sliced=True, count=None)

    def _octet_pieces(self, frames: OctetCountedFrames, chunk: bytes,
                      addr: Any) -> tuple[list[tuple[bytes, bool, bool]], bool]:
        """The octet-counted pieces completed by ``chunk`` (b"": the stream ended) and whether to read on. A bad
        length or a torn last message is logged once for the connection and counted in EventReadFail."""
        try:
            if chunk:
                return frames.feed(chunk), True
            pieces, problem = frames.finish()
        except FramingError as e:
            pieces, problem = e.pieces, f"{e}; closing the connection"
        if problem:
            self.counter.add(event_read_fail=1)
            self.log.error("Source %s: syslog client %s:%s: %s", self.name, addr[0], addr[1], problem)
        return pieces, False


def _check_keep_fields(conf: Conf, text: str) -> frozenset[str] | None:
    keep = choose_fields_to_keep(text)
    if keep is not None and keep is not KEEP_ALL:
        unknown = [w for w in re.split(r"[\s,]+", text.strip().lower()) if w and w not in FIELDS]
        if unknown or not keep:
            conf.warn(f"keepFields = {text!r}: {', '.join(repr(u) for u in unknown) or 'no field'} not recognised; "
                      f"expected none, all, or any of {' '.join(FIELDS)}", "keepFields")
    return keep


def _java_host_address(ip: str) -> str:
    """The client address as Java's getHostAddress prints it (IPv4-mapped IPv6 as IPv4, IPv6 uncompressed)."""
    if ":" not in ip:
        return ip
    addr, _, scope = ip.partition("%")
    try:
        v6 = ipaddress.IPv6Address(addr)
    except ValueError:
        return ip
    if v6.ipv4_mapped is not None:
        return str(v6.ipv4_mapped)
    text = ":".join(group.lstrip("0") or "0" for group in v6.exploded.split(":"))
    return f"{text}%{scope}" if scope else text


def _hostname(ip: str) -> str:
    try:
        return socket.gethostbyaddr(ip)[0]
    except (OSError, UnicodeError):
        return ip
