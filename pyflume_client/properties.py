"""A client from Flume's RPC client properties, as Flume's ``RpcClientFactory.getInstance(Properties)`` makes one:
the same keys, so a properties file written for a Java application (or for ``avro-client --rpcProps``) works
unchanged: ``client.type`` (``default``, ``default_failover``, ``default_loadbalance``), ``hosts = h1 h2`` and
``hosts.h1 = host:port``, ``batch-size``, ``max-attempts``, ``host-selector``, ``backoff``, ``maxBackoff``, the
timeouts, compression and TLS keys. They are checked by :mod:`agent.rpc_client_props` (the keys and their meaning
are listed there and in docs/avro.md); a file's problems name its lines.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from agent.properties import PropertiesError
from agent.rpc_client_props import load_rpc_props
from agent.spec import Problem
from pyflume_client.clients import ClientError, FlumeClient, _bind, client_for

__all__ = ["client_from_properties"]

log = logging.getLogger("pyflume_client")


def client_from_properties(props: Mapping[str, str] | str | os.PathLike[str]) -> FlumeClient:
    """A client configured by Flume's RPC client keys: a mapping, or the path of a Java properties file.
    ClientError lists every error (with the file's lines); warnings are logged on the ``pyflume_client`` logger."""
    if isinstance(props, Mapping):
        return client_for(_bind(props, "RPC client properties"))
    problems: list[Problem] = []
    try:
        checked = load_rpc_props(os.fspath(props), problems)
    except (OSError, PropertiesError) as exc:
        raise ClientError(f"{os.fspath(props)}: {exc}") from None
    for p in problems:
        if p.severity != "error":
            log.warning("%s", p)
    errors = [str(p) for p in problems if p.severity == "error"]
    if errors:
        raise ClientError("; ".join(errors))
    return client_for(checked)
