"""A client from Flume's RPC client properties, as Flume's ``RpcClientFactory.getInstance(Properties)`` makes one:
the same keys, so a properties file written for a Java application (or ``flume-ng avro-client --rpcProps``) works
unchanged.

- ``client.type``: ``default`` (one Avro host; a second one listed is ignored with a warning, as Flume),
  ``default_failover``, ``default_loadbalance``, or the name of another registered transport (``thrift`` once a
  Thrift transport is registered in :data:`~pyflume_client.clients.TRANSPORTS`).
- ``hosts = h1 h2`` and ``hosts.h1 = host:port``; ``batch-size`` (default 100; a bad value falls back to it with a
  warning, as Flume); failover: ``max-attempts``; load balance: ``host-selector`` (``round_robin``, ``random``),
  ``backoff``, ``maxBackoff`` (ms).
- Every other key goes to each host's connection (``connect-timeout``, ``request-timeout``, ``compression-type``,
  ``compression-level``, ``ssl``, ``truststore`` …), checked there: an unknown key is warned about with the nearest
  valid name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from pyflume_client.clients import (
    TRANSPORTS,
    AvroClient,
    ClientError,
    FailoverClient,
    FlumeClient,
    LoadBalancingClient,
)

__all__ = ["client_from_properties"]

log = logging.getLogger("pyflume_client")

_OWN_KEYS = ("client.type", "hosts", "batch-size", "max-attempts", "host-selector", "backoff", "maxBackoff",
             "maxConnections")


def client_from_properties(props: Mapping[str, str] | str | os.PathLike[str]) -> FlumeClient:
    """A client configured by Flume's RPC client keys: a mapping, or the path of a Java properties file."""
    if not isinstance(props, Mapping):
        from agent.properties import load_properties

        props = {e.key.strip(): e.value.strip() for e in load_properties(os.fspath(props))}
    kind = (props.get("client.type") or "default").strip()
    names = (props.get("hosts") or "").split()
    hosts = [_host(props, n) for n in names if f"hosts.{n}" in props]  # a host without hosts.<n> is skipped
    if not hosts:
        raise ClientError("no hosts: set hosts = h1 and hosts.h1 = host:port")
    if props.get("kerberos", "false").strip().lower() == "true":
        raise ClientError("kerberos = true is not supported by pyflume_client")
    rest = {k: v for k, v in props.items() if k not in _OWN_KEYS and not k.startswith("hosts.")
            and k != "kerberos"}
    common: dict[str, Any] = {"batch_size": _batch_size(props.get("batch-size")), **_keywords(rest)}
    lowered = kind.lower()
    if lowered == "default_failover":
        attempts = props.get("max-attempts", "").strip()
        return FailoverClient(hosts, max_attempts=int(attempts) if attempts.isdigit() else None, **common)
    if lowered == "default_loadbalance":
        return LoadBalancingClient(hosts, host_selector=props.get("host-selector", "round_robin").strip(),
                                   backoff=props.get("backoff", "false").strip().lower() == "true",
                                   max_backoff=int(props.get("maxBackoff", "0").strip() or 0), **common)
    transport = "avro" if lowered == "default" else lowered
    if transport not in TRANSPORTS:
        raise ClientError(f"client.type = {kind!r}: expected default, default_failover, default_loadbalance"
                          + "".join(f" or {t}" for t in sorted(TRANSPORTS) if t != "avro"))
    if len(hosts) > 1:
        log.warning("client.type = %s uses one host; %s:%d is used, the others are ignored (as in Flume)", kind,
                    *hosts[0])
    return AvroClient(hosts[0][0], hosts[0][1], transport=transport, **common)


def _host(props: Mapping[str, str], name: str) -> tuple[str, int]:
    value = props[f"hosts.{name}"].strip()
    host, sep, port = value.partition(":")
    if not sep or ":" in port or not port.strip().isdigit():
        raise ClientError(f"hosts.{name} = {value!r}: expected host:port")
    return host.strip(), int(port)


def _batch_size(text: str | None) -> int:
    if text is None or not text.strip():
        return 100
    try:
        size = int(text.strip())
    except ValueError:
        size = 0
    if size < 1:
        log.warning("batch-size = %r is not a positive integer; using 100 (as Flume)", text)
        return 100
    return size


def _keywords(props: Mapping[str, str]) -> dict[str, str]:
    """Flume keys as the clients' keyword arguments (``compression-type`` → ``compression_type``)."""
    return {k.replace("-", "_"): v for k, v in props.items()}
