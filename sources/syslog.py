"""Syslog sources: ``syslogtcp``, ``multiport_syslogtcp`` and ``syslogudp``, parsing RFC 5424 and RFC 3164 as
Flume's SyslogUtils does (headers Facility, Severity, priority, version, timestamp, host, and
``flume.syslog.status`` = Invalid / Incomplete).

Unlike Flume, which drops an event the channel refuses, these sources stop reading while the channel is full and
retry the batch, so TCP flow control pushes back on the sender and nothing is lost (UDP has no such luck: a full
channel there still means datagrams pile up in the kernel buffer and may be dropped by it).
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import threading
import time

from agent.core import ChannelException, Event, EventDrivenSource
from agent.spec import Conf, Prop, Spec
from sources.avro import SSL_PROPS, server_ssl_context

__all__ = ["SyslogParser", "SyslogTcpSource", "MultiportSyslogTCPSource", "SyslogUDPSource"]

_RFC5424 = re.compile(
    r"(?:<(\d{1,3})>)(?:(\d?)\s?)"
    r"(?:(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[+-]\d{2}:\d{2}|Z)?)|-)\s"
    r"(?:([\w][\w\d.@\-]*)|-)\s(.*)")
_RFC3164 = re.compile(
    r"(?:<(\d{1,3})>)(?:(\d)?\s?)([A-Z][a-z][a-z]\s{1,2}\d{1,2}\s\d{2}:\d{2}:\d{2})\s([\w][\w\d.@-]*)\s(.*)")
_MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}
_KEEP = ("priority", "version", "timestamp", "hostname")


def _local_tz() -> dt.tzinfo:
    return dt.datetime.now().astimezone().tzinfo  # type: ignore[return-value]


def _ts5424(text: str) -> str | None:
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_local_tz())
    return str(int(t.timestamp() * 1000))


def _ts3164(text: str, now: float) -> str | None:
    parts = text.split()
    try:
        month, day = _MONTHS[parts[0]], int(parts[1])
        hh, mm, ss = (int(x) for x in parts[2].split(":"))
        year = dt.datetime.fromtimestamp(now, dt.UTC).year
        t = dt.datetime(year, month, day, hh, mm, ss, tzinfo=_local_tz())
    except (KeyError, ValueError, IndexError):
        return None
    ms = t.timestamp() * 1000
    nowms = now * 1000
    # Flume's window: at most one month ahead, eleven months back; otherwise the year is wrong by one.
    if ms > nowms + 31 * 86400_000:
        t = t.replace(year=year - 1)
    elif ms < nowms - 335 * 86400_000:
        t = t.replace(year=year + 1)
    return str(int(t.timestamp() * 1000))


class SyslogParser:
    """Turns syslog messages into events exactly as Flume's SyslogUtils (or, with ``capital``, SyslogParser of the
    multiport source: ``Priority`` / ``Version`` headers, ``-`` timestamps meaning now)."""

    def __init__(self, keep_fields: str = "none", event_size: int = 2500, capital: bool = False,
                 charset: str = "utf-8"):
        low = keep_fields.strip().lower()
        self.keep_all = low in ("all", "true")
        self.keep = set() if low in ("none", "false", "") or self.keep_all else {k for k in _KEEP if k in low}
        self.event_size = max(event_size, 10)
        self.capital = capital
        self.charset = charset

    def split(self, data: bytes) -> list[tuple[bytes, bool]]:
        """One message (without its newline) as pieces of at most eventSize bytes; a piece that reached eventSize
        is Incomplete, as in Flume (even when the newline came right after it)."""
        size = self.event_size
        if len(data) < size:
            return [(data, False)]
        return [(data[i:i + size], len(data) - i >= size) for i in range(0, len(data), size)]

    def event(self, raw: bytes, incomplete: bool = False, now: float | None = None) -> Event:
        headers: dict[str, str] = {}
        m = re.match(rb"<(\d{1,3})>", raw)
        bad = m is None
        body = raw
        if not bad:
            pri = int(m.group(1))  # type: ignore[union-attr]
            headers["Facility"] = str(pri // 8)
            headers["Severity"] = str(pri % 8)
            text = raw.decode(self.charset, "replace")
            match = _RFC5424.fullmatch(text)
            is5424 = match is not None
            if match is None:
                match = _RFC3164.fullmatch(text)
            if match is not None:
                prio, version, stamp, host, msg = match.groups()
                now = time.time() if now is None else now
                ts = None
                if stamp:
                    ts = _ts5424(stamp) if is5424 else _ts3164(stamp, now)
                elif self.capital:
                    ts = str(int(now * 1000))
                headers["Priority" if self.capital else "priority"] = prio
                if version:
                    headers["Version" if self.capital else "version"] = version
                if ts:
                    headers["timestamp"] = ts
                if host:
                    headers["host"] = host
                if not self.keep_all:
                    parts = []
                    if "priority" in self.keep:
                        parts.append(f"<{prio}>")
                    if "version" in self.keep and version:
                        parts.append(f"{version} ")
                    if "timestamp" in self.keep and stamp:
                        parts.append(f"{stamp} ")
                    if "hostname" in self.keep and host:
                        parts.append(f"{host} ")
                    full = "".join(parts) + msg
                    if full:
                        body = full.encode(self.charset)
        else:
            headers["Facility"] = "0"
            headers["Severity"] = "0"
        if bad:
            headers["flume.syslog.status"] = "Invalid"
        elif incomplete:
            headers["flume.syslog.status"] = "Incomplete"
        return Event(body, headers)


_COMMON = (
    Prop("host", "str", "0.0.0.0", "Address to listen on."),
    Prop("keepFields", "str", "none", "Keep header fields in the body: none, all, or any of priority version "
         "timestamp hostname."),
    Prop("clientIPHeader", "str", None, "Header that gets the client's IP address."),
    Prop("clientHostnameHeader", "str", None, "Header that gets the client's host name (reverse DNS)."),
)


class _SyslogTcpBase(EventDrivenSource):
    capital = False

    def _setup(self, conf: Conf, ports: list[int]) -> None:
        self.bind = conf["host"]
        self.ports = ports
        self.ip_header = conf.get("clientIPHeader")
        self.host_header = conf.get("clientHostnameHeader")
        self.ssl_context: ssl.SSLContext | None = server_ssl_context(conf, self.name) if "ssl" in conf.values \
            else None
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def parser_for(self, port: int) -> SyslogParser:
        raise NotImplementedError

    def start(self) -> None:
        self._stop.clear()
        for i, port in enumerate(self.ports):
            sock = socket.socket(socket.AF_INET6 if ":" in self.bind else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.bind, port))
            sock.listen(256)
            self.ports[i] = sock.getsockname()[1]
            self._socks.append(sock)
            t = threading.Thread(target=self._accept, args=(sock, self.ports[i]), name=f"{self.name}-accept",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        self.counter.started()
        self.log.info("Syslog TCP source %s listening on %s port(s) %s", self.name, self.bind,
                      " ".join(map(str, self.ports)))

    def stop(self) -> None:
        self._stop.set()
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self._threads:
            t.join(5)
        self._socks, self._threads = [], []
        self.counter.stopped()
        self.log.info("Syslog TCP source %s stopped", self.name)

    def _accept(self, listener: socket.socket, port: int) -> None:
        while not self._stop.is_set():
            try:
                sock, addr = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock, addr, port), daemon=True).start()

    def _client_headers(self, addr: tuple) -> dict[str, str]:
        h = {}
        if self.ip_header:
            h[self.ip_header] = addr[0]
        if self.host_header:
            try:
                h[self.host_header] = socket.gethostbyaddr(addr[0])[0]
            except OSError:
                h[self.host_header] = addr[0]
        return h

    def _serve(self, sock: socket.socket, addr: tuple, port: int) -> None:
        if self.ssl_context is not None:
            try:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                self.log.warning("Syslog source %s: TLS handshake with %s failed: %s", self.name, addr[0], exc)
                sock.close()
                return
        parser = self.parser_for(port)
        extra = self._client_headers(addr)
        partial = b""
        try:
            while not self._stop.is_set():
                data = sock.recv(65536)
                if not data:
                    break
                lines = (partial + data).split(b"\n")
                partial = lines.pop()
                if len(partial) >= parser.event_size:  # Flume cuts an over-long event without waiting for its end
                    cut = len(partial) - len(partial) % parser.event_size
                    lines.append(partial[:cut])
                    partial = partial[cut:]
                events = []
                for line in lines:
                    if not line:
                        continue
                    for piece, incomplete in parser.split(line):
                        e = parser.event(piece, incomplete)
                        if extra:
                            e.headers.update(extra)
                        if self.capital and getattr(self, "port_header", None):
                            e.headers[self.port_header] = str(port)
                        events.append(e)
                if events:
                    self._deliver(events)
        except OSError:
            pass
        finally:
            sock.close()

    def _deliver(self, events: list[Event]) -> None:
        n = len(events)
        assert self.channel_processor is not None
        delay = 0.05
        while not self._stop.is_set():
            try:
                self.channel_processor.process_batch(events)
                self.counter.batch(n, n)
                return
            except ChannelException as exc:
                with self.counter.lock:
                    self.counter.channel_write_fail += 1
                self.log.warning("Syslog source %s: the channel refused %d events (%s); holding the connection "
                                 "and retrying", self.name, n, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)


class SyslogTcpSource(_SyslogTcpBase):
    """Syslog over TCP, one message per line."""

    alias = "syslogtcp"
    flume_class = "org.apache.flume.source.SyslogTcpSource"
    spec = Spec(
        Prop("port", "int", required=True, doc="Port to listen on.", min=0, max=65535),
        Prop("eventSize", "int", 2500, "Longest message in bytes; a longer one is cut (Incomplete).", min=1),
        *_COMMON,
        Prop("ssl", "bool", False, "Serve TLS (keystore: a PEM file with certificate and key)."),
        Prop("keystore", "str", None, "PEM file with the certificate chain and private key."),
        Prop("keystore-password", "str", None, "Password of the key."),
        Prop("keystore-type", "str", "JKS", "PEM (Java keystores must be converted)."),
        *SSL_PROPS,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self._setup(conf, [conf["port"]])
        self.parser = SyslogParser(conf["keepFields"], conf["eventSize"])

    def parser_for(self, port: int) -> SyslogParser:
        return self.parser


class MultiportSyslogTCPSource(_SyslogTcpBase):
    """Syslog over TCP on several ports, with per-port character sets and a port header."""

    alias = "multiport_syslogtcp"
    flume_class = "org.apache.flume.source.MultiportSyslogTCPSource"
    batch_size_prop = "batchSize"
    capital = True
    spec = Spec(
        Prop("ports", "list", required=True, doc="Space-separated ports to listen on."),
        Prop("eventSize", "int", 2500, "Longest message in bytes.", min=1),
        Prop("portHeader", "str", None, "Header that gets the port the message came in on."),
        Prop("charset.default", "str", "UTF-8", "Character set of the messages."),
        Prop("charset.port.", prefix=True, doc="charset.port.<port> = character set for that port."),
        Prop("batchSize", "int", 100, "Most events per channel transaction.", min=1),
        Prop("readBufferBytes", "int", 1024, "Accepted (Flume's read buffer; the user guide says readBufferSize).",
             aliases=("readBufferSize",)),
        Prop("numProcessors", "int", None, "Accepted (one thread per connection here).", min=1),
        *_COMMON,
        Prop("ssl", "bool", False, "Serve TLS (keystore: a PEM file with certificate and key)."),
        Prop("keystore", "str", None, "PEM file with the certificate chain and private key."),
        Prop("keystore-password", "str", None, "Password of the key."),
        Prop("keystore-type", "str", "JKS", "PEM (Java keystores must be converted)."),
        *SSL_PROPS,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        ports = []
        for p in conf["ports"] or []:
            try:
                ports.append(int(p))
            except ValueError:
                conf.error(f"'{p}' is not a port number", "ports")
        self._setup(conf, ports)
        self.port_header = conf.get("portHeader")
        self.charsets = {int(k): v for k, v in conf.sub_text("charset.port.").items() if k.isdigit()}
        self.default_charset = conf["charset.default"]
        self.keep = conf["keepFields"]
        self.event_size = conf["eventSize"]

    def parser_for(self, port: int) -> SyslogParser:
        return SyslogParser(self.keep, self.event_size, capital=True,
                            charset=self.charsets.get(port, self.default_charset))


class SyslogUDPSource(EventDrivenSource):
    """Syslog over UDP: one datagram, one message."""

    alias = "syslogudp"
    flume_class = "org.apache.flume.source.SyslogUDPSource"
    spec = Spec(Prop("port", "int", required=True, doc="Port to listen on.", min=0, max=65535), *_COMMON)

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.bind = conf["host"]
        self.port = conf["port"]
        self.parser = SyslogParser(conf["keepFields"], 65536)
        self.ip_header = conf.get("clientIPHeader")
        self.host_header = conf.get("clientHostnameHeader")
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.bind else socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((self.bind, self.port))
        sock.settimeout(0.5)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-udp", daemon=True)
        self._thread.start()
        self.counter.started()
        self.log.info("Syslog UDP source %s listening on %s:%d", self.name, self.bind, self.port)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()
        self.counter.stopped()
        self.log.info("Syslog UDP source %s stopped", self.name)

    def _run(self) -> None:
        assert self._sock is not None and self.channel_processor is not None
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            events = []
            for line in data.split(b"\n"):
                if line:
                    e = self.parser.event(line)
                    if self.ip_header:
                        e.headers[self.ip_header] = addr[0]
                    if self.host_header:
                        e.headers[self.host_header] = addr[0]
                    events.append(e)
            if not events:
                continue
            delay = 0.05
            while not self._stop.is_set():
                try:
                    self.channel_processor.process_batch(events)
                    self.counter.batch(len(events), len(events))
                    break
                except ChannelException:
                    with self.counter.lock:
                        self.counter.channel_write_fail += 1
                    self._stop.wait(delay)
                    delay = min(delay * 2, 1.0)
