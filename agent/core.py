"""The model every component shares: events, channel transactions, sources, sinks, interceptors, selectors.

Flume's model is kept as is. A source turns input into batches of events and hands each batch to its
:class:`ChannelProcessor`, which runs the interceptors, asks the selector which channels get each event and puts
the batch into each required channel in one transaction per channel. A sink takes a batch from its channel in a
transaction, delivers it, and commits, or rolls back so the events return to the head of the channel.

Everything on the hot path works on lists of events: one lock acquisition, one counter update and one write per
batch, never per event.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

from agent.metrics import ChannelCounter, SinkCounter, SourceCounter
from agent.spec import Conf, Prop, Spec, attr_name

__all__ = [
    "Event",
    "Batch",
    "as_events",
    "bodies_of",
    "concat",
    "Status",
    "ChannelException",
    "ChannelFullException",
    "EventDeliveryException",
    "Component",
    "Transaction",
    "Channel",
    "ChannelSelector",
    "ChannelProcessor",
    "Interceptor",
    "Source",
    "EventDrivenSource",
    "PollableSource",
    "Sink",
    "BatchSink",
    "SinkProcessor",
]

log = logging.getLogger("pyflume")
_thread_id = threading.get_ident


class Event:
    """One event: ``headers`` (str → str) and ``body`` (bytes). Cheap to create: two slots, no copying."""

    __slots__ = ("headers", "body")

    def __init__(self, body: bytes = b"", headers: dict[str, str] | None = None):
        self.body = body
        self.headers = {} if headers is None else headers

    def __repr__(self) -> str:
        return f"Event(headers={self.headers!r}, body={self.body[:64]!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.body == self.body and other.headers == self.headers

    __hash__ = None  # type: ignore[assignment]


class Batch(Sequence[Event]):
    """A batch of events kept as columns: the bodies in one list and the headers every event shares in one dict.

    Sources that split input into lines (seq, netcat, TAILDIR, spooldir, exec) build their batches this way, and
    the components that know the form (the memory channel, the replicating and multiplexing selectors, the
    timestamp/static/host interceptors, the null, file_roll, hdfs and avro sinks) work on ``bodies`` and
    ``shared`` directly, so no :class:`Event` object and no header dict is made per event on that path.

    Anything else sees an ordinary sequence of events: iterating, indexing or :meth:`events` materialises the
    events once (each with its own copy of the shared headers) and from then on the batch *is* that list, so a
    change made through an event is never lost. A component that does not declare ``accepts_batch = True`` is
    handed the plain list (:func:`as_events`), never a Batch.

    A source whose events have headers of their own (the Kafka source: offset, timestamp) may pass ``headers``, a
    function that makes the per-event header dicts: ``bodies`` and ``len`` are then free, and the headers are made
    only if something needs the events. Such a batch is not ``raw``: every header-aware fast path treats it as
    events.
    """

    __slots__ = ("_bodies", "_shared", "_events", "_headers")

    def __init__(self, bodies: list[bytes], shared: dict[str, str] | None = None,
                 headers: Callable[[], list[dict[str, str]]] | None = None):
        self._bodies: list[bytes] | None = bodies
        #: the headers of every event; never changed in place (several batches may share one dict)
        self._shared = shared or None
        self._events: list[Event] | None = None
        self._headers = headers

    @property
    def raw(self) -> bool:
        """True while the batch is still columns with one shared set of headers (no Event made)."""
        return self._events is None and self._headers is None

    @property
    def bodies(self) -> list[bytes]:
        """Every event's body, in order (do not modify the list)."""
        if self._events is None:
            return self._bodies  # type: ignore[return-value]
        return [e.body for e in self._events]

    @property
    def shared(self) -> dict[str, str] | None:
        """While raw: the headers all events have (None for none; read only). Once materialised: None."""
        return self._shared

    def with_header(self, key: str, value: str, preserve: bool = False) -> None:
        """Set header ``key`` on every event of a raw batch (``preserve``: keep an existing value)."""
        shared = self._shared
        if shared is None:
            self._shared = {key: value}
        elif not (preserve and key in shared):
            self._shared = {**shared, key: value}  # copy on write: a slice may share the old dict

    def without_header(self, key: str) -> None:
        """Remove header ``key`` from every event of a raw batch."""
        if self._shared and key in self._shared:
            self._shared = {k: v for k, v in self._shared.items() if k != key} or None

    def events(self) -> list[Event]:
        """The events as a list, made once; the batch keeps (and from now on is) that list."""
        events = self._events
        if events is None:
            shared = self._shared
            if self._headers is not None:
                events = list(map(Event, self._bodies, self._headers()))  # type: ignore[arg-type]
                self._headers = None
            elif shared:
                events = [Event(b, shared.copy()) for b in self._bodies]  # type: ignore[union-attr]
            else:
                events = list(map(Event, self._bodies))  # type: ignore[arg-type]
            self._events = events
            self._bodies = None
            self._shared = None
        return events

    def __len__(self) -> int:
        return len(self._bodies) if self._events is None else len(self._events)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events())

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        if self._events is None and self._headers is None and isinstance(i, slice):
            return Batch(self._bodies[i], self._shared)  # type: ignore[index]
        return self.events()[i]

    def __bool__(self) -> bool:
        return len(self) > 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Batch, list)):
            return self.events() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._events is None:
            return f"Batch({len(self)} bodies, shared={self._shared!r}{', headers per event' if self._headers else ''})"
        return f"Batch({self._events!r})"


def as_events(events: Sequence[Event]) -> list[Event]:
    """``events`` as a plain list of Event objects (a Batch materialised; a list as it is)."""
    if type(events) is list:
        return events
    if isinstance(events, Batch):
        return events.events()
    return list(events)


def bodies_of(events: Sequence[Event]) -> list[bytes]:
    """The bodies of ``events``: a Batch's own list (no Event made; do not modify it), else each event's body."""
    return events.bodies if type(events) is Batch else [e.body for e in events]


def concat(chunks: Sequence[Sequence[Event]]) -> Sequence[Event]:
    """The events of ``chunks`` in order, as one Batch while every chunk is a raw Batch with the same shared
    headers, else as one list of events."""
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    if isinstance(first, Batch) and first.raw:
        shared = first.shared
        if all(isinstance(c, Batch) and c.raw and (c.shared is shared or c.shared == shared) for c in chunks):
            bodies: list[bytes] = []
            for c in chunks:
                bodies += c.bodies  # type: ignore[union-attr]
            return Batch(bodies, shared)
    out: list[Event] = []
    for c in chunks:
        out += as_events(c)
    return out


class Status(enum.Enum):
    """What a sink's or pollable source's ``process()`` reports to its runner."""

    READY = "READY"  # did work; call again at once
    BACKOFF = "BACKOFF"  # nothing to do (or the peer is unavailable); the runner sleeps before calling again


class ChannelException(Exception):
    """A channel could not complete a put, take or commit. The transaction must be rolled back."""


class ChannelFullException(ChannelException):
    """The channel has no room for the batch (capacity or byte capacity), even after waiting keep-alive."""


class EventDeliveryException(Exception):
    """A sink could not deliver its batch. The runner rolls back, logs once and backs off."""


class Component:
    """Base of every configurable component.

    Contract: ``__init__(name, conf)`` only reads configuration and checks it (it may call ``conf.error`` for
    problems a spec cannot express, or raise ConfigError). It must not open files, sockets or threads, so that
    ``agent --check`` can build the whole topology without side effects. ``start()`` acquires resources and
    ``stop()`` releases them; both are called from the supervisor thread, ``stop()`` at most once after a
    successful ``start()``.
    """

    spec: ClassVar[Spec] = Spec()
    kind: ClassVar[str] = "component"
    #: The component's type alias (``netcat``) and Flume class name, for docs and the registry.
    alias: ClassVar[str | None] = None
    flume_class: ClassVar[str | None] = None

    def __init__(self, name: str, conf: Conf):
        self.name = name
        self.conf = conf
        #: the typed, frozen configuration (``self.config.batch_size``); see agent.spec
        self.config = conf.typed if conf.spec is not None else None
        self.log = logging.getLogger(f"pyflume.{self.kind}.{name}")

    def start(self) -> None:
        """Acquire resources (files, sockets, threads)."""

    def stop(self) -> None:
        """Release resources. Must be safe to call after a failed or partial start."""

    def metrics(self) -> dict[str, str] | None:
        """Flume's MBean attributes for ``/metrics``, or None when Flume shows no MBean for this component."""
        counter = getattr(self, "counter", None)
        return counter.attributes() if counter is not None else None

    def describe(self) -> str:
        return f"{self.kind} {self.name} ({self.alias or type(self).__name__})"


# --------------------------------------------------------------------------------------------------------------
# Channels


class Transaction:
    """One channel transaction: begin → put/take … → commit or rollback → close.

    The base class owns the state machine and the counters; a channel fills in ``_put``, ``_take``, ``_commit``
    and ``_rollback``. Rolling back returns taken events to the head of the channel in their original order; puts
    are discarded.

    A transaction belongs to the thread that made it (``channel.transaction()``), as in Flume: every call from
    another thread raises ChannelException and changes nothing. Flume's BasicTransactionSemantics checks the same
    on each call; its BasicChannelSemantics also keeps the open transaction in a ThreadLocal because Flume's
    ``Channel.put/take`` must find it, which pyflume does not need (put and take are methods of the transaction).

    Use it as a context manager: leaving the block without ``commit()`` rolls back.
    """

    __slots__ = ("channel", "_state", "_nputs", "_ntakes", "_thread")

    NEW, OPEN, COMMITTED, ROLLED_BACK, CLOSED = range(5)

    def __init__(self, channel: "Channel"):
        self.channel = channel
        self._state = Transaction.NEW
        self._nputs = 0
        self._ntakes = 0
        self._thread = _thread_id()

    def _other_thread(self, what: str) -> ChannelException:
        names = {t.ident: t.name for t in threading.enumerate()}
        return ChannelException(
            f"channel {self.channel.name}: {what}() called from thread {names.get(_thread_id(), _thread_id())}, but "
            f"the transaction belongs to thread {names.get(self._thread, self._thread)} (a transaction is used only "
            f"by the thread that made it)"
        )

    def begin(self) -> "Transaction":
        if _thread_id() != self._thread:
            raise self._other_thread("begin")
        if self._state != Transaction.NEW:
            raise ChannelException(f"channel {self.channel.name}: begin() on a transaction that already began")
        self._state = Transaction.OPEN
        return self

    def __enter__(self) -> "Transaction":
        if self._state == Transaction.NEW:
            self.begin()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._state == Transaction.OPEN:
            self.rollback()
        self.close()

    def _check_open(self, what: str) -> None:
        if _thread_id() != self._thread:
            raise self._other_thread(what)
        if self._state != Transaction.OPEN:
            raise ChannelException(f"channel {self.channel.name}: {what}() outside an open transaction")

    def put(self, event: Event) -> None:
        self.put_batch([event])

    def put_batch(self, events: Sequence[Event]) -> None:
        self._check_open("put")
        if type(events) is not list and not self.channel.accepts_batch:
            events = as_events(events)
        n = len(events)
        cap = self.channel.transaction_capacity
        self.channel.counter.put_attempted(n)
        if cap and self._nputs + n > cap:
            raise ChannelException(
                f"Put queue for channel {self.channel.name} is full: a transaction may hold at most "
                f"{cap} events (transactionCapacity); the batch would make it {self._nputs + n}"
            )
        self._put(events)
        self._nputs += n
        if self.channel.tap is not None:  # agent tap (agent/tap.py); None while nobody taps
            self.channel.tap(events)

    def take(self) -> Event | None:
        batch = self.take_batch(1)
        return batch[0] if batch else None

    def take_batch(self, max_events: int, raw: bool = False) -> list[Event]:
        """Take up to ``max_events``; may wait a little when the channel is empty (channel-specific).

        ``raw``: the caller accepts a :class:`Batch` (a sink with ``accepts_batch``); otherwise a list."""
        self._check_open("take")
        cap = self.channel.transaction_capacity
        if cap and self._ntakes + max_events > cap:
            raise ChannelException(
                f"Take list for channel {self.channel.name} is full: a transaction may take at most "
                f"{cap} events (transactionCapacity)"
            )
        events = self._take(max_events)
        if not raw and type(events) is not list:
            events = as_events(events)
        n = len(events)
        self._ntakes += n
        self.channel.counter.take_attempted(n + (1 if n < max_events else 0))
        return events

    def commit(self) -> None:
        self._check_open("commit")
        self._commit()
        self._state = Transaction.COMMITTED
        self.channel.counter.committed(self._nputs, self._ntakes)

    def rollback(self) -> None:
        if _thread_id() != self._thread:
            raise self._other_thread("rollback")
        if self._state != Transaction.OPEN:
            raise ChannelException(f"channel {self.channel.name}: rollback() outside an open transaction")
        self._rollback()
        self._state = Transaction.ROLLED_BACK

    def close(self) -> None:
        if _thread_id() != self._thread:
            raise self._other_thread("close")
        if self._state == Transaction.OPEN:
            raise ChannelException(
                f"channel {self.channel.name}: close() without commit() or rollback() first"
            )
        self._state = Transaction.CLOSED

    # Hooks --------------------------------------------------------------------------------------------------
    def _put(self, events: Sequence[Event]) -> None:
        raise NotImplementedError

    def _take(self, max_events: int) -> list[Event]:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError


class Channel(Component):
    """A buffer between sources and sinks with transactional put and take.

    Contract: ``transaction()`` returns a new :class:`Transaction` owned by the calling thread (only that thread
    may use it); any number of threads may hold transactions at once. ``size()`` is the number of committed events
    not yet taken-and-committed. ``transaction_capacity`` (0 = unbounded) is what Flume checks source and sink batch
    sizes against.
    """

    kind = "channel"
    transaction_capacity: int = 0
    capacity: int = 0
    durable: bool = False  # whether committed events outlive stop() (then a reload need not move them)
    #: whether ``put_batch`` may be handed a :class:`Batch` as it is (else it gets the list of events)
    accepts_batch: bool = False
    #: whether one thread may hold a second take transaction while its first is still open, and take without
    #: waiting through ``ready_transaction()`` (a sink that waits on a peer takes its next batch meanwhile)
    take_ahead: bool = False
    #: set by agent/tap.py while ``agent tap`` watches this channel: called with each batch put (before commit)
    tap: Callable[[Sequence[Event]], None] | None = None

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.counter = ChannelCounter()

    def transaction(self) -> Transaction:
        raise NotImplementedError

    def ready_transaction(self) -> Transaction:
        """A transaction whose take returns at once with what is queued, never waiting (only if ``take_ahead``)."""
        raise NotImplementedError

    def size(self) -> int:
        raise NotImplementedError

    def metrics(self) -> dict[str, str] | None:
        self.counter.set(size=self.size(), capacity=self.capacity)
        return self.counter.attributes()


# --------------------------------------------------------------------------------------------------------------
# Interceptors and selectors


class Interceptor(Component):
    """Transforms or drops events between a source and its channels.

    Contract: ``intercept(events)`` is called by the source's thread with a list it may modify in place; it
    returns the list of events to keep (possibly the same list). It must not block.

    An interceptor may also define ``intercept_batch(batch)``, called instead with a raw :class:`Batch` (bodies and
    shared headers, no Event objects); it returns the batch to keep, or NotImplemented when it needs the events
    after all (then ``intercept`` gets the list).
    """

    kind = "interceptor"
    intercept_batch: Callable[["Batch"], Any] | None = None

    def intercept(self, events: list[Event]) -> list[Event]:
        raise NotImplementedError


class ChannelSelector(Component):
    """Decides which channels get each event.

    Contract: ``route(events)`` returns ``(required, optional)``, each a list of ``(channel, events)`` pairs with
    events in their original order. ``channels`` is the source's channel list, set before ``configure_channels``.
    A selector with ``accepts_batch = True`` may be handed a :class:`Batch`; otherwise it gets a list of events.
    """

    kind = "selector"
    accepts_batch: bool = False

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.channels: list[Channel] = []

    def configure_channels(self, channels: list[Channel]) -> None:
        self.channels = channels

    def route(self, events: list[Event]) -> tuple[list[tuple[Channel, list[Event]]], list[tuple[Channel, list[Event]]]]:
        raise NotImplementedError


class ChannelProcessor:
    """Runs a source's interceptors and puts each batch into the selected channels.

    Each required channel gets its own transaction (one after the other); a failure rolls back that channel and
    raises :class:`ChannelException` to the source, which retries the batch (channels that already committed keep
    their copy: at-least-once, as in Flume). Optional channels are tried afterwards; their failures are logged.
    """

    __slots__ = ("selector", "interceptors", "max_batch", "tap")

    def __init__(self, selector: ChannelSelector, interceptors: Iterable[Interceptor] = ()):
        self.selector = selector
        self.interceptors = list(interceptors)
        caps = [c.transaction_capacity for c in selector.channels if c.transaction_capacity]
        #: The largest batch every channel accepts in one transaction (0 = no limit). Sources that build batches
        #: of their own size (netcat, HTTP, Avro) slice by it so a retry repeats only the batch that failed.
        self.max_batch = min(caps) if caps else 0
        #: set by agent/tap.py while ``agent tap`` watches this source: called with each batch after interceptors
        self.tap: Callable[[list[Event]], None] | None = None

    def process_batch(self, events: list[Event]) -> None:
        limit = self.max_batch
        if limit and len(events) > limit:
            for i in range(0, len(events), limit):
                self._process(events[i:i + limit])
            return
        self._process(events)

    def _process(self, events: Sequence[Event]) -> None:
        for interceptor in self.interceptors:
            if type(events) is Batch and events.raw and interceptor.intercept_batch is not None:
                kept = interceptor.intercept_batch(events)
                if kept is not NotImplemented:
                    events = kept
                    if not events:
                        return
                    continue
            events = interceptor.intercept(as_events(events))
            if not events:
                return
        if self.tap is not None:
            self.tap(events)
        selector = self.selector
        required, optional = selector.route(events if selector.accepts_batch else as_events(events))
        for channel, batch in required:
            tx = channel.transaction()
            tx.begin()
            try:
                tx.put_batch(batch)
                tx.commit()
            except ChannelException:
                tx.rollback()
                raise
            except Exception as exc:
                tx.rollback()
                raise ChannelException(f"Unable to put batch on required channel {channel.name}: {exc}") from exc
            finally:
                tx.close()
        for channel, batch in optional:
            tx = channel.transaction()
            tx.begin()
            try:
                tx.put_batch(batch)
                tx.commit()
            except Exception as exc:
                tx.rollback()
                _rate_limited(log, f"Unable to put batch on optional channel {channel.name}: {exc}")
            finally:
                tx.close()

    def start(self) -> None:
        for i in self.interceptors:
            i.start()

    def stop(self) -> None:
        for i in self.interceptors:
            i.stop()


_last_log: dict[str, float] = {}


def _rate_limited(logger: logging.Logger, message: str, every: float = 10.0) -> None:
    """Log a repeated failure at most once per ``every`` seconds per message head (never once per event)."""
    head = message[:60]
    now = time.monotonic()
    if now - _last_log.get(head, -every) >= every:
        _last_log[head] = now
        logger.warning(message)


# --------------------------------------------------------------------------------------------------------------
# Sources


class Source(Component):
    """Turns input into events and hands them to its channels through :meth:`deliver`.

    Contract: acknowledge input (reply OK, advance a file position, commit an offset) only after ``deliver``
    returned True; a batch the channels refused is retried, or the refusal reaches whoever sent it (503, FAILED,
    a pollable source's BACKOFF), never dropped silently. ``stopping`` is the one stop signal of a source: its
    ``start()`` clears it, its ``stop()`` sets it first, and every loop and retry of the source waits on it.
    """

    kind = "source"
    #: The property whose value Flume checks against the channels' transactionCapacity: Flume's sources all call
    #: it batchSize. A source whose spec has no such property has no batch size.
    batch_size_prop: ClassVar[str | None] = "batchSize"

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.channel_processor: ChannelProcessor | None = None
        self.counter = SourceCounter()
        #: Set by stop(), cleared by start(): ends the source's loops, waits and retries.
        self.stopping = threading.Event()

    def start(self) -> None:
        self.stopping.clear()

    def stop(self) -> None:
        self.stopping.set()

    def batch_size(self) -> int | None:
        """The source's batch size, or None when it has none."""
        if not self.batch_size_prop:
            return None
        return getattr(self.config, attr_name(self.batch_size_prop), None)

    def slices(self, events: list[Event]) -> Iterator[list[Event]]:
        """``events`` in pieces of at most the source's batch size and the channels' transactionCapacity."""
        assert self.channel_processor is not None
        limits = [n for n in (self.batch_size(), self.channel_processor.max_batch) if n]
        limit = min(limits) if limits else 0
        if not limit or len(events) <= limit:
            yield events
            return
        for i in range(0, len(events), limit):
            yield events[i:i + limit]

    def deliver(self, events: list[Event], *, hold: bool = False, sliced: bool = False,
                first_delay: float = 0.01, max_delay: float = 1.0, count: str | None = "append_batch",
                committed: Callable[[int], None] | None = None) -> bool:
        """Hand ``events`` to the channel processor; True once the channels committed them.

        ``hold``: the source can hold its input meanwhile (a connection it stops reading, a file position, a
        child's pipe), so a batch the channels refuse (full) is retried, waiting on ``stopping`` between attempts
        with doubling delays from ``first_delay`` up to ``max_delay`` seconds; False when the source stops before
        the batch got through. Without ``hold`` the ChannelException reaches the caller, who reports the refusal
        (http answers 503, avro FAILED, a pollable source returns BACKOFF and is called again).

        ``sliced``: hand the events over in :meth:`slices`, so that a retry repeats only the slice that was
        refused; ``committed(n)`` is called after each committed slice (netcat acknowledges those lines).

        Counts each slice as received when handed over, as accepted once committed, and each refusal as
        ChannelWriteFail. ``count`` names the counter pair that counts the slice besides its events:
        ``append_batch`` (AppendBatchReceived/Accepted), ``append`` (one Avro append), or None (only the events,
        as Flume's syslog sources count).
        """
        for piece in (self.slices(events) if sliced else (events,)):
            if not self._deliver_one(piece, hold, first_delay, max_delay, count):
                return False
            if committed is not None:
                committed(len(piece))
        return True

    def _deliver_one(self, events: list[Event], hold: bool, first_delay: float, max_delay: float,
                     count: str | None) -> bool:
        proc = self.channel_processor
        assert proc is not None
        n = len(events)
        unreceived = n  # counted as received once, on the first attempt
        delay = first_delay
        while True:
            try:
                proc.process_batch(events)
            except ChannelException as exc:
                if unreceived:
                    self.counter.delivered(unreceived, 0, count)
                self.counter.add(channel_write_fail=1)
                unreceived = 0
                if not hold:
                    raise
                _rate_limited(self.log, f"Source {self.name}: the channel refused a batch of {n} events ({exc}); "
                                        f"holding the input and retrying")
                if self.stopping.wait(delay):
                    return False
                delay = min(delay * 2, max_delay)
                continue
            except Exception:
                if unreceived:
                    self.counter.delivered(unreceived, 0, count)
                raise
            if unreceived:
                self.counter.delivered(n, n, count)
            else:  # received was counted with the first, refused attempt
                self.counter.add(event_accepted=n, **({f"{count}_accepted": 1} if count else {}))
            return True


class EventDrivenSource(Source):
    """A source that runs its own I/O threads between ``start()`` and ``stop()``.

    ``failed()`` returns a reason when its threads died unexpectedly; the supervisor then restarts it.
    """

    def failed(self) -> str | None:
        return None


POLL_BACKOFF = Spec(
    Prop("backoffSleepIncrement", "int", 1000, "Added to the sleep after each poll that found nothing (ms).", min=0),
    Prop("maxBackoffSleep", "int", 5000, "The longest sleep between polls that find nothing (ms).", min=0),
)


class PollableSource(Source):
    """A source whose ``process()`` the runner calls in a loop, sleeping with Flume's backoff on BACKOFF."""

    def process(self) -> Status:
        raise NotImplementedError

    def backoff_increment_ms(self) -> int:
        value = getattr(self.config, "backoff_sleep_increment", None)
        return 1000 if value is None else value

    def max_backoff_ms(self) -> int:
        value = getattr(self.config, "max_backoff_sleep", None)
        return 5000 if value is None else value


# --------------------------------------------------------------------------------------------------------------
# Sinks


class Sink(Component):
    """Takes events from ``self.channel`` and delivers them.

    Contract: ``process()`` is called by one runner thread in a loop. It takes a batch inside one transaction,
    delivers it, and commits only once the destination has the data; on failure it rolls back (events return to
    the channel) and raises EventDeliveryException, or returns BACKOFF when it had nothing to do.
    """

    kind = "sink"
    batch_size_prop: ClassVar[str | None] = None
    #: whether ``deliver`` (BatchSink) may be handed a :class:`Batch` as it is (else it gets the list of events)
    accepts_batch: ClassVar[bool] = False
    #: set by agent/tap.py while ``agent tap`` watches this sink: called with each batch taken, before delivery
    tap: Callable[[list[Event]], None] | None = None

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.channel: Channel | None = None
        self.counter = SinkCounter()

    def process(self) -> Status:
        raise NotImplementedError

    def batch_size(self) -> int | None:
        return self.conf.get(self.batch_size_prop) if self.batch_size_prop else None


class BatchSink(Sink):
    """A sink that delivers one batch per transaction through ``deliver(events)``.

    The base takes up to ``batch_size()`` events, calls ``deliver``, commits, and keeps Flume's counters
    (BatchEmpty/Underflow/Complete, EventDrainAttempt/Success, EventWriteFail, ChannelReadFail).
    ``deliver`` must return only when the destination has the batch; any exception rolls the batch back. It may
    return a number to add to EventDrainSuccessCount instead of the batch's event count, for a sink whose Flume
    counterpart counts something else (the HBase sinks count puts).
    """

    def deliver(self, events: list[Event]) -> int | None:
        raise NotImplementedError

    def idle(self) -> None:
        """Called when a take found nothing (roll timers, flushes)."""

    def process(self) -> Status:
        channel = self.channel
        assert channel is not None
        counter = self.counter
        size = self.batch_size() or 100
        tx = channel.transaction()
        tx.begin()
        try:
            events = self._take(tx, size)
            n = len(events)
            if n == 0:
                counter.add(batch_empty=1)
                tx.commit()
                self.idle()
                return Status.BACKOFF
            try:
                drained = self.deliver(events)
            except Exception:
                counter.add(write_fail=1)
                raise
            tx.commit()
            counter.drained(n if drained is None else drained)
            return Status.READY
        except BaseException as exc:
            tx.rollback()
            if isinstance(exc, (EventDeliveryException, ChannelException)) or not isinstance(exc, Exception):
                raise
            raise EventDeliveryException(f"Failed to deliver batch from sink {self.name}: {exc}") from exc
        finally:
            tx.close()


    def _take(self, tx: "Transaction", size: int) -> list[Event]:
        """Take up to ``size`` events with the open ``tx``, counting a channel failure, and a batch that is not
        empty as taken (and showing it to ``agent tap``)."""
        try:
            events = tx.take_batch(size, self.accepts_batch)
        except ChannelException:
            self.counter.add(channel_read_fail=1)
            raise
        if events:
            self.counter.taken(len(events), size)
            if self.tap is not None:
                self.tap(events)
        return events


class SinkProcessor(Component):
    """Drives one or more sinks for one runner thread (default, failover, load_balance).

    Contract: ``process()`` is called in a loop by the group's runner; it returns READY or BACKOFF, or raises
    EventDeliveryException when no sink could take the batch.
    """

    kind = "processor"

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.sinks: list[Sink] = []

    def set_sinks(self, sinks: list[Sink]) -> None:
        self.sinks = list(sinks)

    def process(self) -> Status:
        raise NotImplementedError

    def start(self) -> None:
        for s in self.sinks:
            s.start()

    def stop(self) -> None:
        for s in self.sinks:
            try:
                s.stop()
            except Exception:  # one sink's failure to stop must not keep the others open
                log.exception("sink %s failed to stop", s.name)

