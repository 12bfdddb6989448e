"""The memory channel: a bounded in-process queue with real transactions.

Fast, and honest about what it costs: events in a memory channel are lost if the process dies (SIGKILL, a crash,
the machine going down). Use the file channel when that is not acceptable.

Semantics kept from Flume: capacity is claimed at commit, where a put commit waits up to ``keep-alive`` seconds
for room and then fails with ChannelFullException; a take waits up to ``keep-alive`` seconds for the first event
when the channel is empty; rollback returns taken events to the head in their original order. Events taken but not
yet committed still hold their place in the capacity (so a rollback always fits).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from agent.core import Batch, Channel, ChannelException, ChannelFullException, Event, Transaction, bodies_of, concat
from agent.spec import Conf, Prop, Spec

__all__ = ["MemoryChannel"]


class MemoryChannel(Channel):
    """Events are held in memory; fast, lost on a crash."""

    alias = "memory"
    flume_class = "org.apache.flume.channel.MemoryChannel"
    accepts_batch = True  # batches are queued as they come (a Batch stays columns) and usually taken back whole
    take_ahead = True  # transactions are independent of each other, and a take can skip the wait
    spec = Spec(
        Prop("capacity", "int", 100, "The most events the channel holds.", min=1),
        Prop("transactionCapacity", "int", 100,
             "The most events one transaction may put or take (a source's or sink's batch size must fit).", min=1),
        Prop("keep-alive", "int", 3, "Seconds a put commit waits for room, and a take waits for an event.", min=0),
        Prop("byteCapacity", "int", None,
             "Limit on the sum of event body sizes, in bytes, counted in 100-byte slots as Flume does. Flume's "
             "default is 80% of the JVM heap; pyflume has no heap limit, so unset means no byte limit. "
             "0 also means no limit.", min=0),
        Prop("byteCapacityBufferPercentage", "int", 20,
             "Share of byteCapacity kept free for the event headers (the body limit is byteCapacity less this).",
             min=0, max=100),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        cfg = self.config
        self.capacity = cfg.capacity
        self.transaction_capacity = cfg.transaction_capacity
        if self.transaction_capacity > self.capacity:
            conf.error(
                f"transactionCapacity ({self.transaction_capacity}) must not exceed capacity ({self.capacity})",
                "transactionCapacity",
            )
        self.keep_alive = float(cfg.keep_alive)
        byte_capacity = cfg.byte_capacity or 0
        pct = cfg.byte_capacity_buffer_percentage
        # Flume counts bodies in 100-byte slots; the limit is the byte capacity less the header buffer.
        self._slot_limit = int(byte_capacity * (1 - pct / 100.0) / 100) if byte_capacity else 0
        self._slots_used = 0
        # The queue holds committed batches (lists of events or Batches), not single events: a put commit appends
        # its batches and a take that wants a whole batch gets it back without touching each event. ``_size``
        # counts the events.
        self._queue: deque[Sequence[Event]] = deque()
        self._size = 0
        self._claimed = 0  # events in the queue plus events taken by open transactions
        self._cond = threading.Condition(threading.Lock())
        self._waiting_takers = 0
        self._stopped = False

    def transaction(self) -> Transaction:
        return _MemoryTransaction(self)

    def ready_transaction(self) -> Transaction:
        tx = _MemoryTransaction(self)
        tx._wait = False
        return tx

    def size(self) -> int:
        return self._size

    def start(self) -> None:
        self._stopped = False
        self.counter.started()
        self.log.info("Channel %s started (capacity %d)", self.name, self.capacity)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self.counter.stopped()
        self.log.info("Channel %s stopped with %d events queued", self.name, self._size)

    # Called by transactions ---------------------------------------------------------------------------------
    def _take(self, max_events: int, wait: bool = True) -> Sequence[Event]:
        cond = self._cond
        with cond:
            q = self._queue
            if not q:
                if not wait or self.keep_alive <= 0 or self._stopped:
                    return []
                self._waiting_takers += 1
                try:
                    cond.wait(self.keep_alive)
                finally:
                    self._waiting_takers -= 1
                if not q:
                    return []
            first = q[0]
            if len(first) == max_events:  # the common case: the sink takes what one source batch put
                q.popleft()
                self._size -= max_events
                return first
            pieces: list[Sequence[Event]] = []
            want = max_events
            while q and want > 0:
                chunk = q[0]
                if len(chunk) <= want:
                    q.popleft()
                    pieces.append(chunk)
                    want -= len(chunk)
                else:
                    pieces.append(chunk[:want])
                    q[0] = chunk[want:]
                    want = 0
            events = concat(pieces)
            self._size -= len(events)
            return events

    def _commit(self, puts: list[Sequence[Event]], takes: list[Sequence[Event]], nputs: int, ntakes: int) -> None:
        net = nputs - ntakes
        slots = sum(map(_slots, puts)) - sum(map(_slots, takes)) if self._slot_limit else 0
        cond = self._cond
        with cond:
            if net > 0 and self._claimed + net > self.capacity:
                deadline = time.monotonic() + self.keep_alive
                while self._claimed + net > self.capacity:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._stopped:
                        raise ChannelFullException(
                            f"Space for commit to queue couldn't be acquired. Sinks are likely not keeping up "
                            f"with sources, or the buffer size is too tight (channel {self.name}, capacity "
                            f"{self.capacity}, {self._claimed} in use, {net} more requested)"
                        )
                    cond.wait(remaining)
            if self._slot_limit and slots > 0 and self._slots_used + slots > self._slot_limit:
                raise ChannelException(
                    f"Cannot commit transaction. Byte capacity allocated to store event body "
                    f"{self._slot_limit * 100} reached. Please increase heap space/byte capacity allocated "
                    f"or add more sinks (channel {self.name})"
                )
            self._claimed += net
            self._slots_used += slots
            if puts:
                self._queue.extend(puts)
                self._size += nputs
                if self._waiting_takers:
                    cond.notify(self._waiting_takers)
            if net < 0:
                cond.notify_all()

    def _return(self, takes: list[Sequence[Event]]) -> None:
        with self._cond:
            self._queue.extendleft(reversed(takes))
            self._size += sum(map(len, takes))
            if self._waiting_takers:
                self._cond.notify(self._waiting_takers)


def _slots(events: Sequence[Event]) -> int:
    return sum((len(b) + 99) // 100 or 1 for b in bodies_of(events))


class _MemoryTransaction(Transaction):
    """Keeps the batches put and taken as they are (one list entry per put_batch or take_batch call)."""

    __slots__ = ("_puts", "_takes", "_put_n", "_take_n", "_wait")

    def __init__(self, channel: MemoryChannel):
        super().__init__(channel)
        self._puts: list[Sequence[Event]] = []
        self._takes: list[Sequence[Event]] = []
        self._put_n = 0
        self._take_n = 0
        self._wait = True  # False for ready_transaction(): a take on an empty channel returns at once

    def _put(self, events: Sequence[Event]) -> None:
        if events:
            # a list may be changed by its source after the put (a source reusing its buffer): keep a copy
            self._puts.append(events if type(events) is Batch else list(events))
            self._put_n += len(events)

    def _take(self, max_events: int) -> Sequence[Event]:
        events = self.channel._take(max_events, self._wait)  # type: ignore[attr-defined]
        if events:
            self._takes.append(events)
            self._take_n += len(events)
        return events

    def _commit(self) -> None:
        self.channel._commit(self._puts, self._takes, self._put_n, self._take_n)  # type: ignore[attr-defined]
        self._puts = []
        self._takes = []
        self._put_n = self._take_n = 0

    def _rollback(self) -> None:
        if self._takes:
            self.channel._return(self._takes)  # type: ignore[attr-defined]
        self._puts = []
        self._takes = []
        self._put_n = self._take_n = 0
