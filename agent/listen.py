"""Listening sockets of the sources that serve clients: TCP (netcat, syslogtcp, multiport_syslogtcp, avro, http)
and UDP (netcatudp, syslogudp).

:class:`TcpListener` binds one or more ports of one host. One thread accepts on all of them; each connection gets
a thread of its own that checks the client against the source's filter, sets the socket options, does the TLS
handshake (on that thread, never on the accepting one, within ``HANDSHAKE_TIMEOUT``), counts the connection in
OpenConnectionCount when the source asks for it, and runs the source's ``serve(conn, port, addr)`` until the
client leaves. :class:`UdpListener` binds one UDP port; one thread reads whatever is queued (up to 1000
datagrams) and hands it to the source as one batch.

Both look at the source's ``stopping`` event a few times a second. ``stop()`` sets it, ends the listening thread,
closes the listening sockets and, for TCP, shuts down every open connection, so that the connection threads end.
A listening socket that fails while the source runs is reported by ``crash`` (the source's ``failed()``), and the
supervisor restarts the source. Without a host, both listen on every interface, IPv6 and IPv4 when the system can.

:class:`ListeningSource` is the base of those sources: ``start()`` builds the listener and hands it to
``listen()``; ``stop()`` and ``failed()`` come with it. ``BIND_PROP``, ``port_prop`` and ``tls_handshake`` are
what their specs and TLS setups share.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from agent.core import EventDrivenSource, Source, _rate_limited
from agent.spec import Conf, Prop
from agent.tls import HANDSHAKE_TIMEOUT

__all__ = ["ListeningSource", "TcpListener", "UdpListener", "BIND_PROP", "port_prop", "tls_handshake",
           "family_and_host"]

_TICK = 0.2  # seconds between looks at the stop signal
_UDP_BATCH = 1000  # datagrams read into one batch at the most
_UDP_BUFFER = 4 * 1024 * 1024

#: ``serve(conn, port, addr)``: one connection, the local port it came to, and the client's address.
Serve = Callable[[socket.socket, int, Any], None]
#: ``handshake(sock)``: the socket wrapped in TLS once the handshake succeeded; raises when it failed.
Handshake = Callable[[socket.socket], socket.socket]

#: The ``bind`` of the sources that must be told where to listen (netcat, avro).
BIND_PROP = Prop("bind", "str", required=True, doc="Host name or IP address to listen on.")


def port_prop(transport: str = "TCP") -> Prop:
    """The required ``port`` of a listening source."""
    return Prop("port", "int", required=True, doc=f"{transport} port to listen on (0 picks a free port).", min=0,
                max=65535)


def tls_handshake(context: ssl.SSLContext | None) -> Handshake | None:
    """The handshake of a TLS server with ``context``; None without one (plain TCP)."""
    if context is None:
        return None

    def handshake(sock: socket.socket) -> socket.socket:
        return context.wrap_socket(sock, server_side=True)

    return handshake


def family_and_host(host: str | None) -> tuple[socket.AddressFamily, str, bool]:
    """Where to bind: a given host as is; no host means every interface, IPv6 and IPv4 when the system can."""
    if host:
        return (socket.AF_INET6 if ":" in host else socket.AF_INET), host, False
    if socket.has_dualstack_ipv6():
        return socket.AF_INET6, "::", True
    return socket.AF_INET, "0.0.0.0", False


class TcpListener:
    """Accepts connections for one source on its ports; a thread per connection runs ``serve``.

    ``handshake`` wraps an accepted socket in TLS (it may raise: the handshake failed, logged once per 10 s, the
    connection is closed). ``allow(ip)`` refuses a client before anything is read. ``count`` keeps
    OpenConnectionCount. An exception from ``serve`` other than OSError (the client went away) is logged with its
    traceback and counted as GenericProcessingFail; the source goes on.
    """

    def __init__(self, source: Source, host: str | None, ports: Sequence[int], serve: Serve, *,
                 backlog: int = 128, handshake: Handshake | None = None,
                 allow: Callable[[str], bool] | None = None, keepalive: bool = False, count: bool = False):
        self.source = source
        self.host = host
        self.requested = list(ports)
        self.ports: list[int] = []
        self.serve = serve
        self.backlog = backlog
        self.handshake = handshake
        self.allow = allow
        self.keepalive = keepalive
        self.count = count
        #: why the listening sockets stopped working while the source ran, or None
        self.crash: str | None = None
        self._listeners: list[socket.socket] = []
        self._conns: dict[int, socket.socket] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None

    def start(self) -> None:
        """Bind every port (OSError naming the address when one cannot be bound) and start accepting."""
        family, host, dual = family_and_host(self.host)
        for port in self.requested:
            try:
                srv = socket.create_server((host, port), family=family, backlog=self.backlog, dualstack_ipv6=dual)
            except OSError as exc:
                self._close_listeners()
                raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
            srv.setblocking(False)
            self._listeners.append(srv)
            self.ports.append(srv.getsockname()[1])
        sel = selectors.DefaultSelector()
        for srv in self._listeners:
            sel.register(srv, selectors.EVENT_READ)
        self._selector = sel
        self.crash = None
        self._thread = threading.Thread(target=self._accept_loop, name=f"{_label(self.source)}-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close the listening sockets, shut down the open connections."""
        self.source.stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)  # the accept loop sees the stop signal within one tick
        if self._selector is not None:
            self._selector.close()
        self._close_listeners()
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _close_listeners(self) -> None:
        for srv in self._listeners:
            srv.close()
        self._listeners = []

    def _accept_loop(self) -> None:
        sel = self._selector
        assert sel is not None
        stopping = self.source.stopping
        while not stopping.is_set():
            try:
                ready = sel.select(_TICK)
            except (OSError, ValueError):
                if not stopping.is_set():
                    self.crash = "the listening sockets failed"
                return
            for key, _ in ready:
                srv: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    conn, addr = srv.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                except OSError:
                    if not stopping.is_set():
                        self.crash = "the listening socket failed"
                    return
                conn.setblocking(True)
                self._track(None, conn)
                threading.Thread(target=self._connection, args=(conn, srv.getsockname()[1], addr),
                                 name=f"{_label(self.source)}-{addr[1]}", daemon=True).start()

    def _track(self, old: socket.socket | None, new: socket.socket | None) -> None:
        with self._lock:  # stop() shuts down what it finds here: the TLS socket once there is one
            if old is not None:
                self._conns.pop(id(old), None)
            if new is not None:
                self._conns[id(new)] = new

    def _connection(self, conn: socket.socket, port: int, addr: Any) -> None:
        source = self.source
        counted = False
        try:
            if self.allow is not None and not self.allow(addr[0]):
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.keepalive:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if self.handshake is not None:
                secure = self._tls(conn, addr)
                if secure is None:
                    return
                conn = secure
            if self.count:
                source.counter.add(open_connections=1)
                counted = True
            self.serve(conn, port, addr)
        except OSError:
            pass
        except Exception:
            source.log.exception("Source %s: connection handler failed", source.name)
            source.counter.add(generic_processing_fail=1)
        finally:
            if counted:
                source.counter.add(open_connections=-1)
            self._track(conn, None)
            try:
                conn.close()
            except OSError:
                pass

    def _tls(self, raw: socket.socket, addr: Any) -> socket.socket | None:
        assert self.handshake is not None
        raw.settimeout(HANDSHAKE_TIMEOUT)
        try:
            conn = self.handshake(raw)
        except Exception as exc:  # noqa: BLE001 - a client that does not speak TLS, a bad certificate, a stall
            _rate_limited(self.source.log, f"Source {self.source.name}: TLS handshake with {addr[0]} failed: {exc}")
            return None
        self._track(raw, conn)
        conn.settimeout(None)
        return conn


class UdpListener:
    """Reads datagrams for one source: ``receive(batch)`` gets lists of ``(data, addr)`` as they are queued and
    returns False when the source is stopping."""

    def __init__(self, source: Source, host: str | None, port: int,
                 receive: Callable[[list[tuple[bytes, Any]]], bool]):
        self.source = source
        self.host = host
        self.port = port
        self.receive = receive
        #: why the socket stopped working while the source ran, or None
        self.crash: str | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        family, host, dual = family_and_host(self.host)
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if dual:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_BUFFER)
            s.bind((host, self.port))
        except OSError as exc:
            s.close()
            raise OSError(f"cannot listen on udp {host}:{self.port}: {exc.strerror or exc}") from None
        s.setblocking(False)
        self.port = s.getsockname()[1]
        self._sock = s
        self.crash = None
        self._thread = threading.Thread(target=self._loop, name=_label(self.source), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.source.stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _loop(self) -> None:
        s = self._sock
        assert s is not None
        stopping = self.source.stopping
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ)
        recvfrom = s.recvfrom
        try:
            while not stopping.is_set():
                if not sel.select(_TICK):
                    continue
                batch = []
                while len(batch) < _UDP_BATCH:  # what is queued already becomes one batch
                    try:
                        batch.append(recvfrom(65536))
                    except (BlockingIOError, InterruptedError):
                        break
                if batch and not self.receive(batch):
                    return
        except (OSError, ValueError):
            if not stopping.is_set():
                self.crash = "the UDP socket failed"
        finally:
            sel.close()


_L = TypeVar("_L", TcpListener, UdpListener)


class ListeningSource(EventDrivenSource):
    """An event-driven source whose input arrives through a :class:`TcpListener` or :class:`UdpListener`
    (netcat, netcatudp, the syslog sources, avro, http): ``start()`` builds its listener and calls ``listen``;
    ``stop()`` and ``failed()`` come from here."""

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.listener: TcpListener | UdpListener | None = None

    def listen(self, listener: _L) -> _L:
        """Start ``listener`` (OSError naming the address when it cannot bind) and keep it until ``stop()``."""
        self.stopping.clear()
        listener.start()
        self.listener = listener
        return listener

    def stop_listening(self) -> None:
        self.stopping.set()
        if self.listener is not None:
            self.listener.stop()
            self.listener = None

    def stop(self) -> None:
        self.stop_listening()
        self.log.info("Source %s stopped", self.name)

    def failed(self) -> str | None:
        return self.listener.crash if self.listener is not None else None


def _label(source: Source) -> str:
    return f"{source.alias or 'source'}-{source.name}"
