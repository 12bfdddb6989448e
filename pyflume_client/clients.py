"""RPC clients for Python applications that send events to a Flume Avro source (pyflume's or Apache Flume's): the
counterparts of Flume's RPC SDK (NettyAvroRpcClient, FailoverRpcClient, LoadBalancingRpcClient).

Every client is made from Flume's RPC client keys (``batch-size``, ``connect-timeout``, ``request-timeout`` in ms,
``compression-type``, ``compression-level``, ``ssl``, ``trust-all-certs``, ``truststore`` …), given as keyword
arguments with ``_`` for ``-`` (``compression_type="deflate"``), and built by :mod:`agent.rpc_client_props`, the
code behind ``avro-client --rpcProps``: the same checks, host order, failover and backoff, and the avro sink's
connection (handshake, deflate, TLS inside zlib as Flume 1.11). What this module adds is what an application
needs: thread safety, sub-batches of ``batch-size``, text or bytes as events, one :class:`ClientError`, and new
connections in a forked child.

Another transport (Flume's Thrift source) plugs in as a *sender*: any object with ``append_batch(events)`` that
raises :class:`agent.rpc.RpcError` when the host failed, and ``close()``: ``FlumeClient(sender)``, or
``FlumeClient(make=...)`` with a function that makes one; ``agent.rpc_client_props``' FailoverClient and
LoadBalancingClient spread over several hosts given a ``connect_to(host)`` that returns such connections (with
``connect()`` too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from agent.core import Event
from agent.rpc import RpcError
from agent.rpc_client_props import RpcProps, Sender, bind_rpc_props, build_sender
from agent.spec import Problem, Raw

__all__ = ["ClientError", "FlumeClient", "AvroClient", "ThriftClient", "FailoverClient", "LoadBalancingClient",
           "event", "client_for"]

log = logging.getLogger("pyflume_client")


class ClientError(Exception):
    """The events were not delivered (every host tried failed, or the client is closed), or the client's settings
    are wrong; the message says why."""


def event(body: str | bytes, headers: Mapping[str, str] | None = None) -> Event:
    """An event from text (encoded as UTF-8) or bytes, like Flume's EventBuilder.withBody."""
    return Event(body.encode("utf-8") if isinstance(body, str) else bytes(body), dict(headers or {}))


def _events(items: Iterable[Event | str | bytes]) -> list[Event]:
    return [e if isinstance(e, Event) else event(e) for e in items]


class FlumeClient:
    """Sends through a sender (one host, failover, load balance, or another transport): ``append``,
    ``append_batch`` (sub-batches of at most ``batch_size``), ``close``, ``with``. Thread safe: one call at a time.

    Give a ``sender``, or ``make``, a function that makes one (with ``make``, a forked child makes its own, see
    :meth:`after_fork`). Events are :class:`agent.core.Event` objects, or text and bytes (bodies without headers).
    """

    def __init__(self, sender: Sender | None = None, *, make: Callable[[], Sender] | None = None,
                 batch_size: int = 100, target: str = "?"):
        if sender is None and make is None:
            raise ClientError("give a sender, or make= (a function that makes one)")
        if batch_size < 1:
            raise ClientError(f"batch_size = {batch_size}: expected at least 1")
        self._make = make
        self._sender: Sender = sender if sender is not None else make()  # type: ignore[misc]
        self.batch_size = batch_size
        self.target = target
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
                part = batch[i:i + self.batch_size]
                try:
                    self._sender.append_batch(part)
                except RpcError as exc:
                    raise ClientError(f"{len(part)} events not delivered to {self.target}: {exc}") from exc

    def close(self) -> None:
        """Close the connections. A call still waiting for an answer gets a second to finish; after that its
        connection is closed under it (it then fails, as it would have at its request timeout)."""
        self._closed = True
        locked = self._lock.acquire(timeout=1.0)
        try:
            self._sender.close()
        finally:
            if locked:
                self._lock.release()

    def after_fork(self) -> None:
        """In a child process: a new lock (the parent's may have been held at the fork) and a new sender from
        ``make``; the inherited one's sockets belong to the parent and are let go unclosed. A client given a
        sender without ``make`` cannot send from the child (its calls fail, saying so)."""
        self._lock = threading.Lock()
        self._sender = self._make() if self._make is not None else _Inherited()

    def __enter__(self) -> FlumeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __str__(self) -> str:
        return f"{type(self).__name__}({self.target})"


class _Inherited:
    """The sender of a client made before a fork, in the child, when the client cannot make a new one."""

    def append_batch(self, events: Sequence[Event]) -> None:
        raise RpcError("this client was made before the process forked and has no make= to open its own "
                       "connection in the child")

    def close(self) -> None:
        pass


def client_for(props: RpcProps) -> FlumeClient:
    """The client checked RPC client properties describe: an AvroClient, FailoverClient or LoadBalancingClient."""
    kinds = {"default_failover": FailoverClient, "default_loadbalance": LoadBalancingClient}
    cls = kinds.get(props.conf.typed.client_type, AvroClient)
    client = cls.__new__(cls)
    FlumeClient.__init__(client, **_made_by(props))
    return client


def _made_by(props: RpcProps) -> dict[str, Any]:
    """FlumeClient's arguments for ``props``: the sender, its maker, the batch size, the hosts used. ClientError
    when the sender cannot be made (a trust store that cannot be read)."""
    known = len(props.conf.problems)
    sender, batch_size = build_sender(props)
    errors = [_problem(p) for p in props.conf.problems[known:] if p.severity == "error"]
    if errors:
        raise ClientError("; ".join(errors))
    hosts = props.hosts[:1] if props.conf.typed.client_type == "default" else props.hosts
    return {"sender": sender, "make": lambda: build_sender(props)[0], "batch_size": batch_size,
            "target": ", ".join(f"{h.host}:{h.port}" for h in hosts)}


def _bind(keys: Mapping[str, Any], what: str) -> RpcProps:
    """Flume's RPC client keys given in code, checked: ClientError listing every error; warnings are logged."""
    raw = {k: Raw(_text_value(v), 0) for k, v in keys.items() if v is not None}
    problems: list[Problem] = []
    props = bind_rpc_props(raw, problems, Raw("", 0, what))
    for p in problems:
        if p.severity != "error":
            log.warning("%s: %s", what, _problem(p))
    errors = [_problem(p) for p in problems if p.severity == "error"]
    if errors:
        raise ClientError(f"{what}: " + "; ".join(errors))
    return props


def _problem(p: Problem) -> str:
    return ": ".join(part for part in (p.prop, p.message) if part)


def _text_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _keys(client_type: str, hosts: Sequence[tuple[str, int] | str], batch_size: int,
          settings: Mapping[str, Any]) -> dict[str, Any]:
    """Flume's keys for ``hosts`` (``host:port`` or (host, port)) and keyword settings (``_`` for ``-``)."""
    names = [f"h{i + 1}" for i in range(len(hosts))]
    keys: dict[str, Any] = {"client.type": client_type, "hosts": " ".join(names), "batch-size": batch_size}
    for name, h in zip(names, hosts, strict=True):
        keys[f"hosts.{name}"] = h if isinstance(h, str) else f"{h[0]}:{h[1]}"
    keys.update({k.replace("_", "-"): v for k, v in settings.items()})
    return keys


class AvroClient(FlumeClient):
    """One Flume Avro source (Flume's ``default`` client): ``AvroClient("collector", 41414,
    compression_type="deflate", ssl=True, truststore="ca.pem")``."""

    def __init__(self, host: str, port: int, *, batch_size: int = 100, **settings: Any):
        props = _bind(_keys("default", [(host, port)], batch_size, settings), f"AvroClient({host}:{port})")
        super().__init__(**_made_by(props))


class ThriftClient(FlumeClient):
    """One Flume Thrift source (Flume's ``thrift`` client type): ``ThriftClient("collector", 4353)``;
    ``protocol`` is ``compact`` (Flume's default) or ``binary``, timeouts are in ms as Flume's keys, and
    ``ssl_context`` (an :class:`ssl.SSLContext`) connects with TLS."""

    def __init__(self, host: str, port: int, *, protocol: str = "compact", batch_size: int = 100,
                 connect_timeout: int = 20000, request_timeout: int = 20000, ssl_context: Any = None):
        from agent import thrift_rpc

        if protocol not in thrift_rpc.PROTOCOLS:
            raise ClientError(f"protocol = {protocol!r}: expected compact or binary")

        def make() -> thrift_rpc.ThriftClient:
            return thrift_rpc.ThriftClient(host, port, protocol=protocol, connect_timeout=connect_timeout / 1000,
                                           request_timeout=request_timeout / 1000, ssl_context=ssl_context)

        super().__init__(make=make, batch_size=batch_size, target=f"{host}:{port}")


class FailoverClient(FlumeClient):
    """Several hosts, one used at a time (Flume's ``default_failover``): a failed batch closes that connection and
    goes to the next host in order, up to ``max_attempts`` tries (default: the number of hosts); the client stays
    on the host that answered."""

    def __init__(self, hosts: Sequence[tuple[str, int] | str], *, max_attempts: int | None = None,
                 batch_size: int = 100, **settings: Any):
        keys = _keys("default_failover", hosts, batch_size, {"max_attempts": max_attempts, **settings})
        super().__init__(**_made_by(_bind(keys, "FailoverClient")))


class LoadBalancingClient(FlumeClient):
    """Spreads batches over several hosts (Flume's ``default_loadbalance``): each batch tries the hosts in
    ``host_selector`` order (``round_robin``: starting one further each batch; ``random``) until one takes it.
    With ``backoff``, a failed host is left out for 2, 4, 8 … s, at most ``max_backoff`` ms (0: 30000)."""

    def __init__(self, hosts: Sequence[tuple[str, int] | str], *, host_selector: str = "round_robin",
                 backoff: bool = False, max_backoff: int = 0, batch_size: int = 100, **settings: Any):
        keys = _keys("default_loadbalance", hosts, batch_size,
                     {"host_selector": host_selector, "backoff": backoff, **settings})
        keys["maxBackoff"] = max_backoff
        super().__init__(**_made_by(_bind(keys, "LoadBalancingClient")))
