"""What Flume's RPC sinks (avro, thrift) share: the connection to the next tier, opened at start (a failure is
not fatal: the first batch retries), reopened after ``reset-connection-interval`` seconds and after any failure,
and Flume's connection counters. A subclass makes ``self.client`` and says which exception its client raises.
"""

from __future__ import annotations

import time
from typing import Protocol

from agent.core import BatchSink, Event, EventDeliveryException
from agent.spec import Conf, Prop

__all__ = ["RpcSink", "RPC_SINK_PROPS"]

#: The keys of every RPC sink (Flume's AbstractRpcSink and RpcClientConfigurationConstants).
RPC_SINK_PROPS = (
    Prop("hostname", "str", required=True, doc="Host of the source to send to."),
    Prop("port", "int", required=True, doc="Its port.", min=1, max=65535),
    Prop("batch-size", "int", 100, "Events per transaction and per appendBatch call.", min=1),
    Prop("connect-timeout", "int", 20000, "Milliseconds to wait for the connection (and handshake).", min=1),
    Prop("request-timeout", "int", 20000, "Milliseconds to wait for the answer to a batch.", min=1),
    Prop("reset-connection-interval", "int", 0, "Seconds after which the connection is reopened (0: never), "
         "e.g. to rebalance behind a load balancer.", min=0),
)


class _Client(Protocol):
    connected: bool

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def append_batch(self, events: list[Event]) -> None: ...


class RpcSink(BatchSink):
    """A sink that forwards each batch with one ``append_batch`` call and commits after the peer's OK."""

    batch_size_prop = "batch-size"
    label = "RPC"  # the name in log lines: "Avro", "Thrift"
    client: _Client
    client_error: type[Exception] = Exception

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.host: str = c.hostname
        self.port: int = c.port
        self.reset_interval: int = c.reset_connection_interval
        self._opened = 0.0

    def start(self) -> None:
        self.counter.started()
        try:
            self._connect()
        except self.client_error as exc:  # not fatal: the first batch retries
            self.log.warning("%s sink %s: %s (will retry)", self.label, self.name, exc)
        self.log.info("%s sink %s started, sending to %s:%d", self.label, self.name, self.host, self.port)

    def stop(self) -> None:
        self._disconnect()
        self.counter.stopped()
        self.log.info("%s sink %s stopped", self.label, self.name)

    def _connect(self) -> None:
        try:
            self.client.connect()
        except self.client_error:
            self.counter.add(connection_failed=1)
            raise
        self.counter.add(connection_created=1)
        self._opened = time.monotonic()

    def _disconnect(self) -> None:
        if self.client.connected:
            self.client.close()
            self.counter.add(connection_closed=1)

    def deliver(self, events: list[Event]) -> None:
        client = self.client
        if client.connected and self.reset_interval and time.monotonic() - self._opened > self.reset_interval:
            self._disconnect()
        if not client.connected:
            self._connect()
        try:
            client.append_batch(events)
        except self.client_error as exc:
            if not client.connected:
                self.counter.add(connection_closed=1)
            raise EventDeliveryException(f"{self.label} sink {self.name}: {exc}") from exc
