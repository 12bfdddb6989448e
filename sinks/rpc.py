"""What Flume's RPC sinks (avro, thrift) share: the connection to the next tier, opened at start (a failure is
not fatal: the first batch retries), reopened after ``reset-connection-interval`` seconds and after any failure,
and Flume's connection counters. A subclass makes ``self.client`` and says which exception its client raises.
"""

from __future__ import annotations

import time
from typing import Protocol

from agent.core import BatchSink, ChannelException, Event, EventDeliveryException, Status, Transaction
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


#: How long one ``process()`` keeps sending batches it took ahead before it returns to the runner (which must see
#: a stop request soon).
_AHEAD_SECONDS = 0.05


class _Client(Protocol):
    connected: bool

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def append_batch(self, events: list[Event]) -> None: ...


class _AheadClient(_Client, Protocol):
    """A client that can write a batch's call and read its answer separately (``RpcSink.takes_ahead``)."""

    def encode_batch(self, events: list[Event]) -> bytes: ...

    pipelined: bool

    def send_batch(self, params: bytes) -> None: ...

    def batch_answer(self, n: int) -> None: ...


class RpcSink(BatchSink):
    """A sink that forwards each batch with one ``append_batch`` call and commits after the peer's OK."""

    batch_size_prop = "batch-size"
    label = "RPC"  # the name in log lines: "Avro", "Thrift"
    client: _Client
    client_error: type[Exception] = Exception
    #: the client is an _AheadClient: on a channel with ``take_ahead``, while the peer works on a full batch the
    #: sink takes and encodes the next one. It sends it at once on a pipelined connection (a pyflume peer that
    #: refuses every call behind a refused one: agent/rpc.py PIPELINE_META), else as soon as the first is answered
    #: OK; either way batches arrive in the order they were taken
    takes_ahead = False

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

    def _ready(self) -> None:
        """Connected, after a reconnect when ``reset-connection-interval`` is due."""
        client = self.client
        if client.connected and self.reset_interval and time.monotonic() - self._opened > self.reset_interval:
            self._disconnect()
        if not client.connected:
            self._connect()

    def _failure(self, exc: Exception) -> EventDeliveryException:
        if not self.client.connected:
            self.counter.add(connection_closed=1)
        return EventDeliveryException(f"{self.label} sink {self.name}: {exc}")

    def deliver(self, events: list[Event]) -> None:
        self._ready()
        try:
            self.client.append_batch(events)
        except self.client_error as exc:
            raise self._failure(exc) from exc

    def process(self) -> Status:
        channel = self.channel
        assert channel is not None
        if not (self.takes_ahead and channel.take_ahead):
            return super().process()
        # BatchSink.process, with the next batch taken while the peer works on this one, and sent at once when
        # the connection is pipelined (else as soon as the first is answered OK). ``txs`` holds every open
        # transaction, oldest first, and ``sent`` the batches of its first ones that are on the wire; a failure
        # rolls back the newest first, so the channel gets every batch back in its order.
        client: _AheadClient = self.client  # type: ignore[assignment]
        counter = self.counter
        size = self.batch_size() or 100
        txs: list[Transaction] = []
        sent: list[list[Event]] = []
        try:
            events = self._take_into(channel.transaction(), size, txs)
            if not events:
                counter.add(batch_empty=1)
                txs[0].commit()
                self.idle()
                return Status.BACKOFF
            try:
                self._ready()
                try:
                    client.send_batch(client.encode_batch(events))
                    sent.append(events)
                    until = time.monotonic() + _AHEAD_SECONDS
                    following: list[Event] = []
                    while True:
                        if (not following and len(sent) < 2 and len(sent[-1]) == size and channel.size() >= size
                                and time.monotonic() < until):
                            following = self._take_into(channel.ready_transaction(), size, txs)
                            if following:
                                params = client.encode_batch(following)
                                if client.pipelined:
                                    client.send_batch(params)
                                    sent.append(following)
                                    following = []
                            else:  # taken by another sink meanwhile
                                txs[-1].commit()
                                txs.pop().close()
                        client.batch_answer(len(sent[0]))
                        txs[0].commit()
                        txs.pop(0).close()
                        counter.drained(len(sent.pop(0)))
                        if following:
                            client.send_batch(params)
                            sent.append(following)
                            following = []
                        if not sent:
                            return Status.READY
                except self.client_error as exc:
                    raise self._failure(exc) from exc
            except Exception:
                counter.add(write_fail=1)
                raise
        except BaseException as exc:
            for tx in reversed(txs):
                tx.rollback()
            if isinstance(exc, (EventDeliveryException, ChannelException)) or not isinstance(exc, Exception):
                raise
            raise EventDeliveryException(f"Failed to deliver batch from sink {self.name}: {exc}") from exc
        finally:
            for tx in txs:  # each one committed or rolled back above
                tx.close()

    def _take_into(self, tx: Transaction, size: int, txs: list[Transaction]) -> list[Event]:
        """Begin ``tx``, add it to ``txs`` (so a failure rolls it back) and take up to ``size`` events with it."""
        tx.begin()
        txs.append(tx)
        return self._take(tx, size)
