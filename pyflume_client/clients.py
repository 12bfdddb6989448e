"""RPC clients for Python applications that send events to a Flume Avro source (pyflume's or Apache Flume's): the
counterparts of Flume's RPC SDK (NettyAvroRpcClient, FailoverRpcClient, LoadBalancingRpcClient).

Each client takes Flume's RPC client keys (``batch-size``, ``connect-timeout``, ``request-timeout`` in ms,
``compression-type``, ``compression-level``, ``ssl``, ``trust-all-certs``, ``truststore``, ``truststore-password``,
``include-protocols`` …) as keyword arguments with ``_`` for ``-`` (``compression_type="deflate"``), and the
connection to each host is made by the pyflume ``avro`` sink's own code, so a Python application speaks exactly
as a pyflume (and so an Apache Flume 1.11) Avro sink does: same handshake, deflate and TLS layering, same
defaults. ``append_batch`` sends sub-batches of at most ``batch-size`` events, one RPC each, and returns when every
one was answered OK; anything else raises :class:`ClientError`.

A transport other than Avro plugs in through :data:`TRANSPORTS`: a name mapped to a :class:`Transport`, whose
``connect(host, port, props)`` returns an object with ``connected``, ``connect()``, ``close()``,
``append_batch(events)`` (agent.rpc.RpcClient's shape), and ``errors``, the exceptions that mean "this host
failed". The clients here are thread safe: one call at a time per client.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent.core import Event

__all__ = ["ClientError", "FlumeClient", "AvroClient", "FailoverClient", "LoadBalancingClient", "Transport",
           "TRANSPORTS", "HostConnection", "event"]

log = logging.getLogger("pyflume_client")

_MAX_BACKOFF_MS = 30_000  # Flume's OrderSelector: the longest a failed host is skipped
_SEQUENTIAL_RANGE_MS = 3_600_000  # failures closer together than this (plus the backoff) count as in a row


class ClientError(Exception):
    """The events were not delivered (every host tried failed, or the client is closed); the message says why."""


class HostConnection(Protocol):
    connected: bool

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def append_batch(self, events: Sequence[Event]) -> None: ...


@dataclass(frozen=True)
class Transport:
    """How to reach one host: ``connect(host, port, props)`` makes an unconnected :class:`HostConnection` from
    Flume's RPC client keys; ``errors`` are the exceptions its calls raise when the host failed."""

    connect: Callable[[str, int, Mapping[str, str]], HostConnection]
    errors: tuple[type[Exception], ...]


def _avro(host: str, port: int, props: Mapping[str, str]) -> HostConnection:
    """The avro sink's client for ``host:port``, its keys validated by the sink's spec (ClientError naming them)."""
    from agent.spec import ConfigError, Problem, Raw
    from sinks.avro import AvroSink

    raw = {k: Raw(str(v), 0) for k, v in props.items()}
    raw.update(hostname=Raw(host, 0), port=Raw(str(port), 0))
    problems: list[Problem] = []
    conf = AvroSink.spec.bind(raw, problems=problems, component=f"avro client {host}:{port}")
    try:
        sink = AvroSink("client", conf)
    except ConfigError as exc:
        raise ClientError(f"avro client {host}:{port}: {exc.message}") from None
    for p in problems:
        if p.severity != "error":
            log.warning("%s", _text(p))
    errors = [_text(p) for p in problems if p.severity == "error"]
    if errors:
        raise ClientError("; ".join(errors))
    return sink.client


def _text(problem: Any) -> str:
    """A configuration problem without the file and line a properties file would have."""
    return ": ".join(part for part in (problem.component, problem.prop, problem.message) if part)


def _avro_errors() -> tuple[type[Exception], ...]:
    from agent.rpc import RpcError

    return (RpcError,)


#: Transports by name; "avro" is Flume's default. Another module may add one (a Thrift client, say).
TRANSPORTS: dict[str, Transport] = {"avro": Transport(_avro, _avro_errors())}


def event(body: str | bytes, headers: Mapping[str, str] | None = None) -> Event:
    """An event from text (encoded as UTF-8) or bytes, like Flume's EventBuilder.withBody."""
    return Event(body.encode("utf-8") if isinstance(body, str) else bytes(body), dict(headers or {}))


def _events(items: Iterable[Event | str | bytes]) -> list[Event]:
    return [e if isinstance(e, Event) else event(e) for e in items]


def _props(settings: Mapping[str, Any]) -> dict[str, str]:
    """Keyword arguments (compression_type="deflate", ssl=True) as Flume's keys and text."""
    out = {}
    for key, value in settings.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out[key.replace("_", "-")] = text
    return out


class FlumeClient:
    """What every client does: ``append``, ``append_batch`` (sub-batches of ``batch_size``), ``close``, ``with``.

    Events are :class:`agent.core.Event` objects, or text and bytes (bodies without headers). A subclass fills in
    ``_send(batch)``, called under the client's lock with at most ``batch_size`` events.
    """

    def __init__(self, batch_size: int = 100):
        if batch_size < 1:
            raise ValueError(f"batch_size = {batch_size}: expected at least 1")
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._closed = False

    def append(self, event: Event | str | bytes) -> None:
        self.append_batch([event])

    def append_batch(self, events: Iterable[Event | str | bytes]) -> None:
        batch = _events(events)
        with self._lock:
            if self._closed:
                raise ClientError(f"{self}: the client is closed")
            for i in range(0, len(batch), self.batch_size):
                self._send(batch[i:i + self.batch_size])

    def _send(self, batch: list[Event]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._close()

    def _close(self) -> None:
        pass

    def after_fork(self) -> None:
        """In a child process: new connections on the next call (the inherited sockets belong to the parent; they
        are let go without a word on them), and a new lock (the parent's may have been held at the fork)."""
        self._lock = threading.Lock()
        for host in self._hosts():
            host.renew()

    def _hosts(self) -> list[_Host]:
        return []

    def __enter__(self) -> FlumeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Host:
    """One host of a client and its connection (made lazily, opened by the first call)."""

    def __init__(self, host: str, port: int, transport: Transport, props: Mapping[str, str]):
        self.host, self.port = host, port
        self.transport, self.props = transport, props
        self.errors = transport.errors
        self.conn = transport.connect(host, port, props)

    def renew(self) -> None:
        """A fresh, unconnected connection object in place of the current one, which is dropped unclosed."""
        self.conn = self.transport.connect(self.host, self.port, self.props)

    def send(self, batch: list[Event]) -> None:
        try:
            self.conn.append_batch(batch)
        except self.errors as exc:
            self.conn.close()
            raise ClientError(str(exc)) from exc

    def close(self) -> None:
        if self.conn.connected:
            self.conn.close()

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _hosts(hosts: Sequence[tuple[str, int] | str], transport: str, props: Mapping[str, str]) -> list[_Host]:
    if transport not in TRANSPORTS:
        raise ClientError(f"transport {transport!r}: expected one of {', '.join(sorted(TRANSPORTS))}")
    out = []
    for h in hosts:
        if isinstance(h, str):
            name, _, port = h.rpartition(":")
            if not name or not port.isdigit():
                raise ClientError(f"host {h!r}: expected host:port")
            h = (name, int(port))
        out.append(_Host(h[0], int(h[1]), TRANSPORTS[transport], props))
    if not out:
        raise ClientError("no hosts given")
    return out


class AvroClient(FlumeClient):
    """One Flume Avro source (Flume's default client, NettyAvroRpcClient). Keyword arguments are Flume's RPC
    client keys with ``_`` for ``-``: ``AvroClient("collector", 41414, compression_type="deflate", ssl=True,
    truststore="ca.pem")``."""

    def __init__(self, host: str, port: int, *, batch_size: int = 100, transport: str = "avro", **settings: Any):
        super().__init__(batch_size)
        self.host = _hosts([(host, port)], transport, _props(settings))[0]

    def _send(self, batch: list[Event]) -> None:
        try:
            self.host.send(batch)
        except ClientError as exc:
            raise ClientError(f"{len(batch)} events not delivered to {self.host}: {exc}") from exc

    def _close(self) -> None:
        self.host.close()

    def _hosts(self) -> list[_Host]:
        return [self.host]

    def __str__(self) -> str:
        return f"AvroClient({self.host})"


class _MultiHost(FlumeClient):
    """A client over several hosts."""

    def __init__(self, hosts: Sequence[tuple[str, int] | str], transport: str, batch_size: int,
                 settings: Mapping[str, Any]):
        super().__init__(batch_size)
        self.hosts = _hosts(hosts, transport, _props(settings))

    def _close(self) -> None:
        for host in self.hosts:
            host.close()

    def _hosts(self) -> list[_Host]:
        return self.hosts

    def __str__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(str, self.hosts))})"


class FailoverClient(_MultiHost):
    """Several hosts, one used at a time (Flume's ``default_failover``): a failed call closes that host's
    connection and the same batch goes to the next host, in order, wrapping around, up to ``max_attempts`` calls
    (default: the number of hosts). The client stays on the host that answered; there is no fail-back."""

    def __init__(self, hosts: Sequence[tuple[str, int] | str], *, max_attempts: int | None = None,
                 batch_size: int = 100, transport: str = "avro", **settings: Any):
        super().__init__(hosts, transport, batch_size, settings)
        self.max_attempts = max_attempts or len(self.hosts)
        self._current = 0

    def _send(self, batch: list[Event]) -> None:
        failures = []
        for _ in range(self.max_attempts):
            host = self.hosts[self._current]
            try:
                host.send(batch)
                return
            except ClientError as exc:
                failures.append(f"{host}: {exc}")
                log.warning("Flume failover client: %s failed, trying the next host: %s", host, exc)
                self._current = (self._current + 1) % len(self.hosts)
        raise ClientError(f"{len(batch)} events not delivered after {len(failures)} attempts: "
                          + "; ".join(failures))



class LoadBalancingClient(_MultiHost):
    """Spreads calls over several hosts (Flume's ``default_loadbalance``): each call tries the hosts in
    ``host_selector`` order (``round_robin``: starting one further each call; ``random``) until one answers. With
    ``backoff`` a failed host is skipped for 1 s, doubling with each failure in a row, at most ``max_backoff`` ms
    (default 30000), as Flume's OrderSelector."""

    def __init__(self, hosts: Sequence[tuple[str, int] | str], *, host_selector: str = "round_robin",
                 backoff: bool = False, max_backoff: int = 0, batch_size: int = 100, transport: str = "avro",
                 clock: Callable[[], float] = time.monotonic, **settings: Any):
        super().__init__(hosts, transport, batch_size, settings)
        if len(self.hosts) < 2:
            raise ClientError("the load balancing client needs at least two hosts (as Flume's)")
        if host_selector.lower() not in ("round_robin", "random"):
            raise ClientError(f"host_selector = {host_selector!r}: expected round_robin or random")
        self.random = host_selector.lower() == "random"
        self.backoff = backoff
        self.max_backoff_ms = max_backoff or _MAX_BACKOFF_MS
        self._clock = clock
        self._next = 0
        self._state = {id(h): [0.0, 0.0, 0] for h in self.hosts}  # last failure, restore time (ms), failures

    def _order(self) -> list[_Host]:
        now = self._clock() * 1000
        active = [h for h in self.hosts if not self.backoff or self._state[id(h)][1] < now]
        if self.random:
            return random.sample(active, len(active))
        if self._next >= len(active):
            self._next = 0
        begin = self._next
        self._next = (self._next + 1) % max(1, len(active))
        return active[begin:] + active[:begin]

    def _failed(self, host: _Host) -> None:
        if not self.backoff:
            return
        state = self._state[id(host)]
        now = self._clock() * 1000
        last_backoff = min(self.max_backoff_ms, 1000 * (1 << state[2]))
        state[2] = min(state[2] + 1, 16) if now - state[0] < last_backoff + _SEQUENTIAL_RANGE_MS else 1
        state[0] = now
        state[1] = now + min(self.max_backoff_ms, 1000 * (1 << state[2]))

    def _send(self, batch: list[Event]) -> None:
        failures = []
        for host in self._order():
            try:
                host.send(batch)
                return
            except ClientError as exc:
                self._failed(host)
                failures.append(f"{host}: {exc}")
                log.warning("Flume load balancing client: %s failed: %s", host, exc)
        raise ClientError(f"{len(batch)} events not delivered to any host: "
                          + ("; ".join(failures) or "every host is backing off after failures"))

