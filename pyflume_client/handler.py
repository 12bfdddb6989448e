"""A ``logging.Handler`` that sends log records to a Flume Avro source, the counterpart of Flume's Log4jAppender,
without ever making the application wait for the network.

``emit`` formats the record into an event and appends it to a bounded buffer; a background thread sends the
buffer in batches through a client (:class:`~pyflume_client.clients.AvroClient` by default, or any client:
failover, load balancing). While the source is unreachable the sender keeps its batch and retries (waits doubling
from 0.1 s to ``retry_max`` s), and the buffer fills; when it is full, ``when_full`` decides:

- ``"drop_oldest"`` (default): the oldest waiting record is dropped to make room; ``emit`` never blocks.
- ``"block"``: ``emit`` waits for room (at most ``block_timeout`` seconds, None: as long as it takes), then drops
  the new record if there is still none.

Every record dropped is counted (``handler.dropped``), and the handler writes one line to stderr when the source
becomes unreachable and one when it is back (with the count dropped meanwhile), never one per record.

Headers are Log4jAppender's: ``flume.client.log4j.logger.name``, ``flume.client.log4j.log.level`` (Log4j's level
number: Python's level × 1000, so ERROR is 40000 and WARNING 30000), ``flume.client.log4j.timestamp`` (epoch ms of
the record), ``flume.client.log4j.address`` (this host's IP address, as Log4jAppender finds it),
``flume.client.log4j.message.encoding`` = ``UTF8``; plus any ``headers`` given. The body is the formatted record,
UTF-8 (the handler's formatter; the default one gives the message, and the traceback of an exception).
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from agent.core import Event
from pyflume_client.clients import AvroClient, ClientError, FlumeClient

__all__ = ["FlumeHandler", "LOGGER_NAME", "LOG_LEVEL", "TIMESTAMP", "ADDRESS", "MESSAGE_ENCODING"]

LOGGER_NAME = "flume.client.log4j.logger.name"
LOG_LEVEL = "flume.client.log4j.log.level"
TIMESTAMP = "flume.client.log4j.timestamp"
ADDRESS = "flume.client.log4j.address"
MESSAGE_ENCODING = "flume.client.log4j.message.encoding"

_POLICIES = ("drop_oldest", "block")


class FlumeHandler(logging.Handler):
    """Sends log records to a Flume Avro source from a background thread; see the module's documentation.

    ``FlumeHandler("collector", 41414)`` sends to one host; ``FlumeHandler(client=FailoverClient([...]))`` through
    any client. ``capacity`` records wait at most; ``batch_size`` go in one call. ``close()`` (called by
    ``logging.shutdown`` at exit) sends what is left for at most ``close_timeout`` seconds.
    """

    def __init__(self, host: str | None = None, port: int | None = None, *, client: FlumeClient | None = None,
                 capacity: int = 10_000, when_full: str = "drop_oldest", block_timeout: float | None = None,
                 batch_size: int = 100, headers: Mapping[str, str] | None = None, retry_max: float = 5.0,
                 close_timeout: float = 5.0, level: int = logging.NOTSET, **client_settings: Any):
        super().__init__(level)
        if when_full not in _POLICIES:
            raise ValueError(f"when_full = {when_full!r}: expected one of {', '.join(_POLICIES)}")
        if capacity < 1 or batch_size < 1:
            raise ValueError(f"capacity = {capacity}, batch_size = {batch_size}: both must be at least 1")
        if client is None:
            if host is None or port is None:
                raise ValueError("FlumeHandler needs host and port, or client=")
            client = AvroClient(host, port, batch_size=batch_size, **client_settings)
        self.client = client
        self.capacity, self.when_full, self.block_timeout = capacity, when_full, block_timeout
        self.batch_size, self.retry_max, self.close_timeout = batch_size, retry_max, close_timeout
        bad = [k for k, v in (headers or {}).items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise ValueError(f"headers[{bad[0]!r}]: header names and values are strings")
        self.static_headers = {MESSAGE_ENCODING: "UTF8", ADDRESS: _local_address(), **(headers or {})}
        #: records sent (answered OK), dropped (buffer full, or not sent by close), failed send attempts
        self.sent = self.dropped = self.failures = 0
        self._buffer: collections.deque[Event] = collections.deque()
        self._inflight = 0
        self._cond = threading.Condition(threading.Lock())
        self._closing = False
        self._stalled_at: int | None = None  # self.sent when a flush last gave up
        self._stop = threading.Event()  # set by close(): cuts the sender's retry wait short
        self._start_sender()
        _after_fork_in_child(self)

    def _start_sender(self) -> None:
        self._sender = threading.Thread(target=self._run, name="FlumeHandler-sender", daemon=True)
        self._sender.start()

    def _after_fork(self) -> None:
        """In a child process (a pre-forking server's worker): the parent's thread is not here; start one, with
        an empty buffer (the parent sends what it held), new counters and new connections."""
        self._cond = threading.Condition(threading.Lock())
        self._stop = threading.Event()
        self._buffer.clear()
        self._inflight = 0
        self.sent = self.dropped = self.failures = 0
        self._stalled_at = None
        self.client.after_fork()
        if not self._closing:
            self._start_sender()

    # -- the application's side -------------------------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> bool:
        """Filter and emit without the handler's lock (the buffer has its own): an application thread waiting
        for room under ``block`` must not hold a lock the sender needs when it logs (a failover client's warning)."""
        if threading.get_ident() == self._sender.ident:
            return False  # what the sender (or its client) logs would feed back into the buffer
        result = self.filter(record)
        if isinstance(result, logging.LogRecord):  # Python 3.12: a filter may return a changed record
            record = result
        if result:
            self.emit(record)
        return bool(result)

    def emit(self, record: logging.LogRecord) -> None:
        if threading.get_ident() == self._sender.ident:
            return
        try:
            event = self._event(record)
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise into the application
            self.handleError(record)
            return
        with self._cond:
            if self._closing:
                self.dropped += 1
                return
            if len(self._buffer) >= self.capacity and not self._make_room():
                self.dropped += 1
                return
            self._buffer.append(event)
            if len(self._buffer) == 1:  # the sender waits only for an empty buffer
                self._cond.notify_all()

    def _make_room(self) -> bool:
        """With the lock held and the buffer full: drop the oldest, or wait for room (``block``)."""
        if self.when_full == "drop_oldest":
            self._buffer.popleft()
            self.dropped += 1
            return True
        deadline = None if self.block_timeout is None else time.monotonic() + self.block_timeout
        while len(self._buffer) >= self.capacity and not self._closing:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._cond.wait(left)
        return len(self._buffer) < self.capacity

    def _event(self, record: logging.LogRecord) -> Event:
        headers = {LOGGER_NAME: record.name, LOG_LEVEL: str(record.levelno * 1000),
                   TIMESTAMP: str(int(record.created * 1000)), **self.static_headers}
        return Event(self.format(record).encode("utf-8", "replace"), headers)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every buffered record was sent (at most ``timeout`` s, default ``close_timeout``); whether
        everything was."""
        deadline = time.monotonic() + (self.close_timeout if timeout is None else timeout)
        with self._cond:
            while self._buffer or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._stalled_at = self.sent
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        """Send what is left (at most ``close_timeout`` s, none when a flush just gave up and nothing was sent
        since: ``logging.shutdown`` flushes first), stop the sender, close the client. Records not sent by then
        are counted as dropped and reported on stderr."""
        with self._cond:
            if self._closing:
                return
            stalled = self._stalled_at == self.sent
        deadline = time.monotonic() + self.close_timeout
        if not stalled:
            self.flush()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._stop.set()
        self._sender.join(0.1 if stalled else max(0.1, deadline - time.monotonic()))
        with self._cond:
            lost = len(self._buffer) + self._inflight
            self.dropped += lost
            self._buffer.clear()
        if lost:
            _report(f"closed with {lost} records not sent to {self.client}")
        try:
            self.client.close()
        finally:
            super().close()

    def stats(self) -> dict[str, int]:
        """sent, dropped, failures (send attempts that failed), buffered (waiting now)."""
        with self._cond:
            return {"sent": self.sent, "dropped": self.dropped, "failures": self.failures,
                    "buffered": len(self._buffer) + self._inflight}

    # -- the sender thread -------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._buffer and not self._closing:
                    self._cond.wait()
                if not self._buffer:
                    return  # closing, nothing left
                n = min(self.batch_size, len(self._buffer))
                batch = [self._buffer.popleft() for _ in range(n)]
                self._inflight = n
                self._cond.notify_all()  # room for a blocked emit
            if not self._deliver(batch):
                return

    def _deliver(self, batch: list[Event]) -> bool:
        """Send one batch, retrying while the source is unreachable; False when closing cut the retries short."""
        wait, down_since, dropped_before = 0.1, None, 0
        while True:
            try:
                self.client.append_batch(batch)
            except ClientError as exc:  # the source is unreachable or refused: keep the batch, retry later
                with self._cond:
                    if self._closing:  # close() cut the call short and counted this batch as dropped already
                        return False
                    self.failures += 1
                    if down_since is None:
                        down_since, dropped_before = time.monotonic(), self.dropped
                        _report(f"cannot send to {self.client}: {exc}; keeping up to {self.capacity} records "
                                f"and retrying")
                if self._stop.wait(wait):  # not woken by new records: they would make the retries a storm
                    return False
                wait = min(wait * 2, self.retry_max)
                continue
            except Exception as exc:  # noqa: BLE001 - a bug, not an outage: retrying would fail the same way
                with self._cond:
                    self.failures += 1
                    self.dropped += len(batch)
                    self._inflight = 0
                    self._cond.notify_all()
                _report(f"dropped {len(batch)} records that could not be sent: {type(exc).__name__}: {exc}")
                return True
            with self._cond:
                self.sent += len(batch)
                self._inflight = 0
                self._cond.notify_all()
                if down_since is not None:
                    _report(f"sending to {self.client} again after {time.monotonic() - down_since:.1f} s; "
                            f"{self.dropped - dropped_before} records dropped meanwhile")
            return True

def _after_fork_in_child(handler: FlumeHandler) -> None:
    """Restart ``handler``'s sender in a forked child, for as long as the handler lives."""
    ref = weakref.ref(handler)

    def restart() -> None:
        live = ref()
        if live is not None:
            live._after_fork()

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=restart)


def _local_address() -> str:
    """This host's IP address, as Log4jAppender finds it (InetAddress.getLocalHost()); empty when unknown."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return ""


def _report(message: str) -> None:
    """One line on stderr about the handler itself (as Log4j's LogLog): never through logging, which would loop."""
    try:
        sys.stderr.write(f"pyflume_client.FlumeHandler: {message}\n")
    except (OSError, ValueError):
        pass
