"""Flume's RPC client properties (``avro-client --rpcProps FILE``): which hosts to send to, and how.

The file is the one Flume's SDK reads (``RpcClientFactory.getInstance(File)``): ``hosts = h1 h2`` names the hosts,
``hosts.h1 = host:port`` gives each, and ``client.type`` picks the client:

- ``default``: one connection to the first host listed (the others are ignored with a warning, as in Flume).
- ``default_failover``: one host at a time, in the order listed. A host that cannot be reached is skipped; a batch
  that fails closes that connection and goes to the next host, up to ``max-attempts`` tries (default: the number
  of hosts). The client stays on a host that works.
- ``default_loadbalance``: each batch starts at the next host in turn (``host-selector = round_robin``) or tries
  the hosts in a random order (``random``); a batch that fails goes to the next host in that order. With
  ``backoff = true`` a host that failed is skipped for 2, 4, 8 … seconds, at most ``maxBackoff`` ms.

``batch-size``, ``connect-timeout``, ``request-timeout``, ``compression-type`` / ``compression-level`` and the TLS
keys (``ssl``, ``trust-all-certs``, ``truststore`` …) apply to every host. Errors name the file, line and key.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent.core import Event
from agent.properties import load_properties
from agent.rpc import RpcClient, RpcError
from agent.spec import Conf, Problem, Prop, Raw, Spec
from agent.tls import CLIENT_TLS_PROPS, CLIENT_TRUST_PROPS, client_context

__all__ = ["SPEC", "HostAddress", "Sender", "FailoverClient", "LoadBalancingClient", "load_rpc_props",
           "bind_rpc_props", "build_sender"]

log = logging.getLogger("pyflume.avro-client")

_DEFAULT_TIMEOUT_MS = 20000
_DEFAULT_MAX_BACKOFF_MS = 30000

SPEC = Spec(
    Prop("client.type", "enum", "default", "Which client sends the batches.",
         choices={"default": "one host: the first one listed in hosts",
                  "default_failover": "one host at a time, moving to the next when a batch fails",
                  "default_loadbalance": "batches spread over the hosts, each failed batch retried on the next",
                  "thrift": "Flume's Thrift client (not provided by pyflume's avro-client)"}),
    Prop("hosts", "list", required=True, doc="Space-separated names of the hosts, each given by hosts.<name>."),
    Prop("hosts.", prefix=True, doc="hosts.<name> = host:port of one host."),
    Prop("batch-size", "int", 100, "Events per appendBatch call.", min=1),
    Prop("connect-timeout", "int", _DEFAULT_TIMEOUT_MS,
         "Milliseconds to wait for a connection; below 1000 Flume uses the default (and so does pyflume).", min=0),
    Prop("request-timeout", "int", _DEFAULT_TIMEOUT_MS,
         "Milliseconds to wait for the answer to a batch; below 1000 the default is used, as in Flume.", min=0),
    Prop("max-attempts", "int", None, "default_failover: batches tried before giving up (default: the number of "
         "hosts).", min=1),
    Prop("host-selector", "enum", "round_robin", "default_loadbalance: the order in which hosts are tried.",
         choices={"round_robin": "each batch starts at the next host in turn",
                  "random": "each batch tries the hosts in a random order"}),
    Prop("backoff", "bool", False, "default_loadbalance: skip a host that failed for a time that doubles with "
         "each failure in a row."),
    Prop("maxBackoff", "int", 0, "default_loadbalance: the longest a failed host is skipped (ms); 0: 30000.",
         min=0),
    Prop("compression-type", "enum", "none", "deflate: zlib-compress both directions (the source must match).",
         choices={"none": "no compression", "deflate": "zlib, as the avro source's compression-type = deflate"}),
    Prop("compression-level", "int", 6, "zlib level for deflate (0-9).", min=0, max=9),
    *CLIENT_TRUST_PROPS,
    *CLIENT_TLS_PROPS,
    Prop("maxIoWorkers", "int", None, "Accepted and ignored, as Flume 1.11 ignores it.", min=1),
    Prop("maxConnections", "int", 5, "Thrift client only; accepted.", min=1),
)


@dataclass(frozen=True)
class HostAddress:
    name: str  # the reference name of hosts.<name>
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


class Sender(Protocol):
    """What avro-client sends through: ``append_batch`` returns once a host accepted the whole batch."""

    def append_batch(self, events: Sequence[Event]) -> None: ...

    def close(self) -> None: ...


@dataclass
class RpcProps:
    """The bound properties and the hosts they name, in the order of ``hosts``."""

    conf: Conf
    hosts: list[HostAddress]


def load_rpc_props(path: str | Path, problems: list[Problem]) -> RpcProps:
    """Read and check an RPC client properties file; every problem (with its line) is appended to ``problems``."""
    entries = load_properties(path)
    raw = {e.key: Raw(e.value, e.line, e.path) for e in entries}
    return bind_rpc_props(raw, problems, Raw("", 0, str(path)))


def bind_rpc_props(raw: Mapping[str, Raw], problems: list[Problem], decl: Raw) -> RpcProps:
    """Check RPC client properties given as text (from a file, or from code: pyflume_client); every problem is
    appended to ``problems``."""
    conf = SPEC.bind(raw, problems=problems, component="", decl=decl)
    typed = conf.typed
    named = {name: r for name, r in conf.sub("hosts.").items()}
    hosts: list[HostAddress] = []
    for name in typed.hosts or []:
        r = named.get(name)
        if r is None:
            message = f"'{name}' has no hosts.{name} = host:port"
            if typed.client_type == "default" and not hosts:
                conf.error(message, "hosts")
            else:
                conf.warn(message + "; it is left out, as Flume does", "hosts")
            continue
        parts = r.value.split(":")
        port = parts[1].strip() if len(parts) == 2 else ""
        if not port.isdigit() or not 0 < int(port) < 65536 or not parts[0].strip():
            conf.error(f"'{r.value}' is not host:port (a host name or address, a colon, a port from 1 to 65535)",
                       "hosts." + name)
            continue
        hosts.append(HostAddress(name, parts[0].strip(), int(port)))
    for name in named:
        if name not in (typed.hosts or []):
            conf.warn(f"'{name}' is not listed in hosts ({' '.join(typed.hosts or [])}); unused", "hosts." + name)
    _check_client_type(conf, hosts)
    return RpcProps(conf, hosts)


def _check_client_type(conf: Conf, hosts: list[HostAddress]) -> None:
    typed = conf.typed
    kind = typed.client_type
    if kind == "thrift":
        conf.error("the Thrift RPC client is not provided by pyflume's avro-client; use default, default_failover "
                   "or default_loadbalance with Avro sources", "client.type")
    elif kind == "default" and len(hosts) > 1:
        conf.warn(f"more than one host for the default client: only {hosts[0].name} is used (client.type = "
                  f"default_failover or default_loadbalance uses them all)", "hosts")
    elif kind == "default_loadbalance" and len(hosts) < 2:
        conf.error(f"at least two hosts are required to use the load balancing RPC client; {len(hosts)} given",
                   "hosts")
    elif kind == "default_failover" and not hosts:
        conf.error("the failover client needs at least one host", "hosts")
    for key in ("connect-timeout", "request-timeout"):
        if conf.is_set(key) and conf[key] < 1000:
            conf.warn(f"less than 1000 ms; the default ({_DEFAULT_TIMEOUT_MS}) is used, as Flume does", key)


def build_sender(props: RpcProps) -> tuple[Sender, int]:
    """The client the properties describe, and its batch size."""
    conf = props.conf
    c = conf.typed
    ctx = client_context(conf)  # None without ssl

    def timeout(ms: int) -> float:
        return (ms if ms >= 1000 else _DEFAULT_TIMEOUT_MS) / 1000.0

    def connect_to(addr: HostAddress) -> RpcClient:
        return RpcClient(addr.host, addr.port, connect_timeout=timeout(c.connect_timeout),
                         request_timeout=timeout(c.request_timeout), deflate=c.compression_type == "deflate",
                         level=c.compression_level, ssl_context=ctx)

    hosts = props.hosts
    if c.client_type == "default_failover":
        sender: Sender = FailoverClient(hosts, c.max_attempts or len(hosts), connect_to)
    elif c.client_type == "default_loadbalance":
        order = HostOrder(len(hosts), c.host_selector == "random", c.backoff,
                          c.max_backoff or _DEFAULT_MAX_BACKOFF_MS)
        sender = LoadBalancingClient(hosts, order, connect_to)
    else:
        sender = connect_to(hosts[0])
    return sender, c.batch_size


class FailoverClient:
    """Flume's FailoverRpcClient: stays on one host; a failed batch closes it and moves to the next reachable host,
    until ``max_attempts`` batches were tried."""

    def __init__(self, hosts: list[HostAddress], max_attempts: int,
                 connect_to: Callable[[HostAddress], RpcClient]):
        self.hosts = hosts
        self.max_attempts = max_attempts
        self._connect_to = connect_to
        self._client: RpcClient | None = None
        self._last = -1  # index of the host in use, or last tried

    def _next_client(self) -> RpcClient:
        n = len(self.hosts)
        start = 0 if self._last == n - 1 else self._last + 1
        reasons = []
        for i in [*range(start, n), *range(0, start)]:
            client = self._connect_to(self.hosts[i])
            try:
                client.connect()
            except RpcError as exc:
                log.info("Could not connect to %s: %s", self.hosts[i], exc)
                reasons.append(f"{self.hosts[i]}: {exc}")
                continue
            self._last = i
            return client
        self._last = -1
        raise RpcError("no host could be reached: " + "; ".join(reasons))

    def append_batch(self, events: Sequence[Event]) -> None:
        last_error: RpcError | None = None
        for _ in range(self.max_attempts):
            if self._client is None:
                self._client = self._next_client()
            client = self._client
            try:
                client.append_batch(events)
                return
            except RpcError as exc:
                log.warning("Host %s failed, trying the next one: %s", self.hosts[self._last], exc)
                client.close()
                self._client = None
                last_error = exc
        raise RpcError(f"tried {self.max_attempts} times (max-attempts), could not send the batch: {last_error}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class HostOrder:
    """Flume's OrderSelector for the load balancing client: round-robin or random order over the hosts, and with
    backoff a host that failed is left out until 2^failures seconds (at most ``max_backoff_ms``) have passed;
    failures an hour apart do not count as in a row."""

    def __init__(self, n: int, random_order: bool, backoff: bool, max_backoff_ms: int,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None):
        self.n = n
        self.random_order = random_order
        self.backoff = backoff
        self.max_backoff = max_backoff_ms / 1000.0
        self._clock = clock
        self._rng = rng or random.Random()
        self._next = 0
        self._fails = [0] * n
        self._last_fail = [float("-inf")] * n
        self._restore = [float("-inf")] * n

    def order(self) -> list[int]:
        now = self._clock()
        active = [i for i in range(self.n) if not self.backoff or self._restore[i] < now]
        if self.random_order:
            self._rng.shuffle(active)
            return active
        if not active:
            return []
        if self._next >= len(active):
            self._next = 0
        begin = self._next
        self._next = (begin + 1) % len(active)
        return active[begin:] + active[:begin]

    def failed(self, i: int) -> None:
        if not self.backoff:
            return
        now = self._clock()
        previous = min(self.max_backoff, float(1 << self._fails[i]))
        if now - self._last_fail[i] < previous + 3600:
            self._fails[i] = min(self._fails[i] + 1, 16)
        else:
            self._fails[i] = 1
        self._last_fail[i] = now
        self._restore[i] = now + min(self.max_backoff, float(1 << self._fails[i]))


class LoadBalancingClient:
    """Flume's LoadBalancingRpcClient: each batch goes to the first host of the selector's order that takes it."""

    def __init__(self, hosts: list[HostAddress], order: HostOrder, connect_to: Callable[[HostAddress], RpcClient]):
        self.hosts = hosts
        self._order = order
        self._clients = [connect_to(h) for h in hosts]  # each connects on its first batch, and again after a failure

    def append_batch(self, events: Sequence[Event]) -> None:
        reasons = []
        for i in self._order.order():
            try:
                self._clients[i].append_batch(events)
                return
            except RpcError as exc:
                self._order.failed(i)
                self._clients[i].close()
                log.warning("Failed to send batch to host %s: %s", self.hosts[i], exc)
                reasons.append(f"{self.hosts[i]}: {exc}")
        raise RpcError("Unable to send batch to any host" + (": " + "; ".join(reasons) if reasons else
                                                             " (every host is backing off after a failure)"))

    def close(self) -> None:
        for client in self._clients:
            client.close()
