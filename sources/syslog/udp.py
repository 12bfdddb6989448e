"""``syslogudp``: syslog over UDP, one message per datagram, parsed by Flume's SyslogUtils."""

from __future__ import annotations

from typing import Any

from agent.listen import UdpListener, port_prop
from agent.spec import Conf, Spec
from sources.syslog.base import CLIENT_PROPS, FORMAT_PROP, HOST_PROP, SyslogSource, keep_fields_prop
from sources.syslog.decoder import SyslogUtilsDecoder

__all__ = ["SyslogUDPSource"]

_MAX_DATAGRAM = 1 << 16  # Flume: 64 KiB, the largest datagram
_HOSTNAME_CACHE = 4096


class SyslogUDPSource(SyslogSource):
    """Syslog over UDP, one message per datagram, parsed by Flume's SyslogUtils."""

    alias = "syslogudp"
    flume_class = "org.apache.flume.source.SyslogUDPSource"
    spec = Spec(
        HOST_PROP,
        port_prop("UDP"),
        keep_fields_prop(" (The user guide says false; Flume's code defaults to none, the same thing.)"),
        *CLIENT_PROPS,
        FORMAT_PROP,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.port: int = self.config.port
        self._hostnames: dict[str, dict[str, str]] = {}
        self._decoder = SyslogUtilsDecoder(_MAX_DATAGRAM, self.keep)

    def start(self) -> None:
        self.port = self.listen(UdpListener(self, self.host, self.port, self._receive)).port
        self.log.info("Source %s listening for syslog on udp %s:%d", self.name, self.host or "*", self.port)

    def _headers_for(self, ip: str) -> dict[str, str]:
        extra = self._hostnames.get(ip)
        if extra is None:
            if len(self._hostnames) >= _HOSTNAME_CACHE:
                self._hostnames.clear()
            extra = self._hostnames[ip] = self._client_headers(ip)
        return extra

    def _receive(self, datagrams: list[tuple[bytes, Any]]) -> bool:
        """The datagrams read at once become one batch; an empty one is counted as EventReadFail and dropped."""
        decoder = self._decoder
        client = bool(self.ip_header or self.hostname_header)
        events = []
        for data, addr in datagrams:
            ev = decoder.datagram(data)
            if ev is None:
                continue
            if client:
                ev.headers.update(self._headers_for(addr[0]))
            events.append(ev)
        if len(events) < len(datagrams):
            self.counter.add(event_read_fail=len(datagrams) - len(events))
        return not events or self._deliver(events)
