"""pyflume_client: send events from Python applications to a Flume Avro source (pyflume's or Apache Flume's), the
counterpart of Flume's RPC SDK and Log4jAppender.

Logging, in five lines (the records go to the source in the background; the application never waits)::

    import logging
    from pyflume_client import FlumeHandler

    logging.getLogger().addHandler(FlumeHandler("collector.example.com", 41414))
    logging.getLogger("shop").warning("disk %d%% full", 91)

Events, with failover over two collectors::

    from pyflume_client import FailoverClient, event

    with FailoverClient(["c1:41414", "c2:41414"], compression_type="deflate") as client:
        client.append_batch([event("hello", {"app": "shop"}), "a body without headers"])

Clients: :class:`AvroClient` (one host), :class:`ThriftClient` (one Flume Thrift source),
:class:`FailoverClient`, :class:`LoadBalancingClient`, and
:func:`client_from_properties` for Flume's RPC client properties (``client.type``, ``hosts`` …). Their keyword
arguments are Flume's RPC client keys with ``_`` for ``-`` (``ssl=True, truststore="ca.pem"``). A failed call
raises :class:`ClientError`. :class:`FlumeHandler` (module :mod:`pyflume_client.handler`) is the logging handler.
Another transport plugs in as a sender: ``FlumeClient(sender)`` (see :mod:`pyflume_client.clients`).
"""

from pyflume_client.clients import (
    AvroClient,
    ClientError,
    FailoverClient,
    FlumeClient,
    LoadBalancingClient,
    ThriftClient,
    event,
)
from pyflume_client.handler import FlumeHandler
from pyflume_client.properties import client_from_properties

__all__ = ["AvroClient", "ThriftClient", "FailoverClient", "LoadBalancingClient", "FlumeClient", "ClientError",
           "event", "client_from_properties", "FlumeHandler"]
