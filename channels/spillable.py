"""The spillable memory channel: a memory queue that overflows into a file channel when it is full.

Flume's ``SpillableMemoryChannel`` (``type = SPILLABLEMEMORY``). Puts go to memory while it has room; a put commit
that finds memory full waits up to ``overflowTimeout`` seconds for room and then goes to the overflow, a
:class:`channels.file.FileChannel` configured from the same properties (its capacity is ``overflowCapacity`` and
its keep-alive 0, as in Flume). Once a put has spilled, the overflow is *active*: later puts that find memory full
spill at once, until a take leaves ``overflowDeactivationThreshold`` percent of ``memoryCapacity`` free.

Order is kept across the boundary the way Flume keeps it: the channel holds a *drain order*, a queue of runs, each
either a committed memory batch (a list of events) or a count of events that went to the overflow. Takes read
the head run; a transaction takes from one side only (memory or overflow), so a take batch ends where the side
changes, and a rollback puts its events (or its count) back at the head. Events one producer commits one after
the other are taken in that order wherever each batch went.

What survives: the overflow is a file channel, so whatever went there survives SIGKILL and a machine crash; what is
in memory is lost on a crash (as in Flume). On a clean stop pyflume moves the memory queue into the overflow
before closing it (Flume loses it); those events then come after the ones that were already on disk.

An overflow put and an overflow take are committed outside the channel's lock (the file channel's group commit
then serves several sources at once); the runs count an overflow batch only after its commit returned, so a take
never asks the file channel for an event that is not there yet.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from agent.core import Channel, ChannelException, ChannelFullException, Event, Transaction
from agent.spec import Conf, Prop, Spec
from channels.file import FileChannel

__all__ = ["SpillableMemoryChannel"]

_OVERRIDDEN = {"capacity": "overflowCapacity", "keep-alive": "0"}
_OVERFLOW_PROPS = [p for p in FileChannel.spec if p.name not in _OVERRIDDEN]


class SpillableMemoryChannel(Channel):
    """Events are held in memory and spill to a file channel when memory is full; the spilled part survives a
    crash, the memory part does not."""

    alias = "SPILLABLEMEMORY"
    flume_class = "org.apache.flume.channel.SpillableMemoryChannel"
    spec = Spec(
        Prop("memoryCapacity", "int", 10000, "The most events held in memory; 0: every put goes to the overflow.",
             min=0),
        Prop("overflowCapacity", "int", 100000000,
             "The most events held in the overflow file channel; 0: no overflow (a full memory pushes back).",
             min=0),
        Prop("overflowTimeout", "int", 3,
             "Seconds a put waits for room in memory before it spills; also how long a take waits for an event.",
             min=0),
        Prop("overflowDeactivationThreshold", "int", 5,
             "Percent of memoryCapacity that must be free again before puts wait for memory instead of spilling "
             "at once (Flume leaves it out of its user guide).", min=0, max=100),
        Prop("byteCapacity", "int", None,
             "Limit on the bytes of event bodies held in memory. Flume's default is 80% of the JVM heap; pyflume "
             "has no heap limit, so unset means no byte limit.", min=0),
        Prop("byteCapacityBufferPercentage", "int", 20,
             "Share of byteCapacity kept free for the event headers.", min=0, max=100),
        Prop("avgEventSize", "int", 500,
             "Bytes per slot when counting bodies against byteCapacity (a body takes ceil(size / avgEventSize) "
             "slots, at least one).", min=1),
        *_OVERFLOW_PROPS,
        Prop("capacity", "int", None, "Ignored, as in Flume: the overflow's capacity is overflowCapacity.",
             hidden=True),
        Prop("keep-alive", "int", None, "Ignored, as in Flume: the overflow's keep-alive is 0.", hidden=True),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        cfg = self.config
        for key, what in _OVERRIDDEN.items():
            if conf.is_set(key):
                conf.warn(f"ignored: the spillable memory channel sets its overflow's {key} to {what}, as Flume "
                          f"does", key)
        self.memory_capacity = cfg.memory_capacity
        overflow_capacity = cfg.overflow_capacity
        if self.memory_capacity == 0 and overflow_capacity == 0:
            conf.warn("memoryCapacity and overflowCapacity are both 0; overflowCapacity is set to 100000000, "
                      "as Flume does", "overflowCapacity")
            overflow_capacity = 100000000
        self.overflow_capacity = overflow_capacity
        self.transaction_capacity = cfg.transaction_capacity
        if overflow_capacity and self.transaction_capacity > overflow_capacity:
            conf.error(f"transactionCapacity ({self.transaction_capacity}) must not exceed overflowCapacity "
                       f"({overflow_capacity})", "transactionCapacity")
        self.capacity = self.memory_capacity + overflow_capacity
        self.timeout = float(cfg.overflow_timeout)
        self.deactivate_at = cfg.overflow_deactivation_threshold / 100.0
        self.avg_event_size = cfg.avg_event_size
        limit = 0
        if cfg.byte_capacity:
            limit = int(cfg.byte_capacity * (1 - cfg.byte_capacity_buffer_percentage / 100.0) / cfg.avg_event_size)
        self._slot_limit = limit  # 0: no byte limit (also Flume's answer when the division gives less than 1)
        self._overflow: FileChannel | None = None
        if overflow_capacity:  # (given an invalid transactionCapacity, the file channel need not report it again)
            self._overflow = _overflow_channel(f"{name}.overflow", conf,
                                               max(overflow_capacity, self.transaction_capacity))
        # A stopped channel with an overflow has its memory queue on disk, so a reload replays it (agent.runners).
        self.durable = self._overflow is not None
        self._cond = threading.Condition(threading.Lock())
        self._noted: dict[str, float] = {}
        self._reset()

    def _reset(self) -> None:
        # The drain order: a list is a committed memory batch, an int a run of that many overflow events.
        self._runs: deque[list[Event] | int] = deque()
        self._in_memory = 0  # events in the memory runs
        self._in_overflow = 0  # events counted by the overflow runs
        self._claimed = 0  # memory slots used: queued events plus events taken by open transactions
        self._slots_used = 0
        self._held: dict[int, list[Event]] = {}  # memory events taken by open transactions, in take order
        self._activated = False
        self._stopped = False
        self._waiting_takers = 0

    def transaction(self) -> Transaction:
        return _SpillableTransaction(self)

    def size(self) -> int:
        return self._in_memory + self._in_overflow

    def start(self) -> None:
        self._reset()
        if self._overflow is not None:
            self._overflow.start()
            replayed = self._overflow.size()
            if replayed:
                self._runs.append(replayed)
                self._in_overflow = replayed
        self.counter.started()
        self.log.info("Channel %s started (memoryCapacity %d, overflowCapacity %d, %d events in the overflow)",
                      self.name, self.memory_capacity, self.overflow_capacity, self._in_overflow)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._overflow is not None:
            self._spill_memory()
            self._overflow.stop()
        self.counter.stopped()
        self.log.info("Channel %s stopped with %d events queued", self.name, self.size())

    def _spill_memory(self) -> None:
        """Move what is left in memory into the overflow so that a clean stop loses nothing."""
        with self._cond:  # a sink stuck in delivery still holds its batch: keep a copy (it may come twice, not never)
            events = [e for held in self._held.values() for e in held]
            events += [e for run in self._runs if isinstance(run, list) for e in run]
        if not events:
            return
        step = self.transaction_capacity
        moved = 0
        try:
            for i in range(0, len(events), step):
                self._overflow_put(events[i:i + step])
                moved += len(events[i:i + step])
        except ChannelException as exc:
            self.log.error("Channel %s: %d events in memory could not be moved to the overflow and are lost: %s",
                           self.name, len(events) - moved, exc)
        with self._cond:
            self._runs = deque(r for r in self._runs if not isinstance(r, list))
            self._in_memory = 0
        self.log.info("Channel %s: moved %d events from memory to the overflow", self.name, moved)

    # Called by transactions ---------------------------------------------------------------------------------
    def _put_to_memory(self, puts: list[Event]) -> bool:
        """Queue a committed put batch in memory if it fits (waiting as Flume does); False: it goes to the
        overflow. Raises ChannelFullException when it does not fit and there is no overflow."""
        n = len(puts)
        limit = self._slot_limit
        slots = _slots(puts, self.avg_event_size) if limit else 0
        cap = self.memory_capacity
        cond = self._cond
        with cond:
            if n <= cap and (not limit or slots <= limit):
                deadline = time.monotonic() + (0.0 if self._activated else self.timeout)
                while self._claimed + n > cap or (limit and self._slots_used + slots > limit):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._stopped:
                        break
                    cond.wait(remaining)
            fits = self._claimed + n <= cap and (not limit or self._slots_used + slots <= limit)
            if fits:
                self._claimed += n
                self._slots_used += slots
                self._runs.append(puts)
                self._in_memory += n
                if self._waiting_takers:
                    cond.notify(self._waiting_takers)
                return True
            if self._overflow is None:
                raise ChannelFullException(
                    f"Spillable Memory Channel's memory capacity has been reached and overflow is disabled. "
                    f"Consider increasing memoryCapacity (channel {self.name}: memoryCapacity {cap}, {self._claimed} "
                    f"in use, {n} more requested" + (f"; {self._slots_used} of {limit} byte slots used)" if limit
                                                    else ")"))
            if not self._activated and cap:
                self._activated = True
                self._note("memory is full, puts spill to the overflow")
            return False

    def _overflow_put(self, puts: list[Event]) -> None:
        overflow = self._overflow
        assert overflow is not None
        tx = overflow.transaction()
        tx.begin()
        try:
            tx.put_batch(puts)
            tx.commit()
        except ChannelFullException as exc:
            tx.rollback()
            raise ChannelFullException(f"channel {self.name}: memory and overflow are full (memoryCapacity "
                                       f"{self.memory_capacity}, overflowCapacity {self.overflow_capacity}): {exc}"
                                       ) from exc
        except BaseException:
            tx.rollback()
            raise
        finally:
            tx.close()
        n = len(puts)
        with self._cond:  # counted only now: a take never asks the overflow for events it does not have yet
            runs = self._runs
            if runs and isinstance(runs[-1], int):
                runs[-1] += n
            else:
                runs.append(n)
            self._in_overflow += n
            if self._waiting_takers:
                self._cond.notify(self._waiting_takers)

    def _take_runs(self, max_events: int, side: str | None, held: list[Event]) -> tuple[str | None, int]:
        """Take from the head run: (``"memory"``, n) with the events appended to ``held`` (the transaction's
        memory takes), or (``"overflow"``, how many to take from the overflow). A transaction stays on the side it
        started on; at a change of side it gets nothing more."""
        cond = self._cond
        with cond:
            runs = self._runs
            if not runs:
                if self.timeout <= 0 or self._stopped:
                    return side, 0
                self._waiting_takers += 1
                try:
                    cond.wait(self.timeout)
                finally:
                    self._waiting_takers -= 1
                if not runs:
                    return side, 0
            head = runs[0]
            if isinstance(head, int):
                if side == "memory":
                    return side, 0
                k = min(head, max_events)
                if k == head:
                    runs.popleft()
                else:
                    runs[0] = head - k
                self._in_overflow -= k
                return "overflow", k
            if side == "overflow":
                return side, 0
            events = held
            before = len(held)
            want = max_events
            while runs and want > 0 and isinstance(runs[0], list):
                chunk = runs[0]
                if len(chunk) <= want:
                    runs.popleft()
                    events += chunk
                    want -= len(chunk)
                else:
                    events += chunk[:want]
                    runs[0] = chunk[want:]
                    want = 0
            n = len(held) - before
            self._in_memory -= n
            self._held[id(held)] = held
            return "memory", n

    def _return_overflow(self, n: int) -> None:
        with self._cond:
            runs = self._runs
            if runs and isinstance(runs[0], int):
                runs[0] += n
            else:
                runs.appendleft(n)
            self._in_overflow += n
            if self._waiting_takers:
                self._cond.notify(self._waiting_takers)

    def _return_memory(self, events: list[Event]) -> None:
        with self._cond:
            self._held.pop(id(events), None)
            self._runs.appendleft(events)
            self._in_memory += len(events)
            if self._waiting_takers:
                self._cond.notify(self._waiting_takers)

    def _release_memory(self, events: list[Event]) -> None:
        slots = _slots(events, self.avg_event_size) if self._slot_limit else 0
        cond = self._cond
        with cond:
            self._held.pop(id(events), None)
            self._claimed -= len(events)
            self._slots_used -= slots
            cap = self.memory_capacity
            if self._activated and (cap - self._claimed) / cap >= self.deactivate_at:
                self._activated = False
                self._note("memory has room again, puts wait for it before spilling")
            cond.notify_all()

    def _note(self, change: str) -> None:
        """Log a switch of the overflow on or off, at most once per 10 s per kind (a channel at its memory
        capacity can switch several times a second)."""
        now = time.monotonic()
        if now - self._noted.get(change, -10.0) >= 10.0:
            self._noted[change] = now
            self.log.info("Channel %s: %s", self.name, change)


def _overflow_channel(name: str, conf: Conf, capacity: int) -> FileChannel:
    """The file channel behind the overflow, from the spillable channel's own properties (problems reported
    against the lines of the spillable channel's file)."""
    spec = FileChannel.spec
    values = {p.name: conf.values.get(p.name) for p in spec if not p.prefix}
    values["capacity"] = capacity
    values["keep-alive"] = 0
    lines = {k: r for k, r in conf.lines.items() if k in spec and k not in _OVERRIDDEN}
    sub = Conf(values, lines, dict(conf.prefixed), problems=conf.problems, component=conf.component,
               decl=conf.decl, key_prefix=conf.key_prefix, spec=spec)
    return FileChannel(name, sub)


def _slots(events: Sequence[Event], avg: int) -> int:
    return sum(-(-len(e.body) // avg) or 1 for e in events)


class _SpillableTransaction(Transaction):
    """Puts are decided at commit (memory, or the overflow in a file channel transaction of their own); takes stay
    on one side: memory events are kept for a rollback, overflow takes run in a file channel transaction."""

    __slots__ = ("_puts", "_side", "_mem_takes", "_ovf_tx", "_ovf_taken")

    def __init__(self, channel: SpillableMemoryChannel):
        super().__init__(channel)
        self._puts: list[Event] = []
        self._side: str | None = None
        self._mem_takes: list[Event] = []
        self._ovf_tx: Transaction | None = None
        self._ovf_taken = 0

    def _put(self, events: Sequence[Event]) -> None:
        self._puts.extend(events)

    def _take(self, max_events: int) -> list[Event]:
        ch: SpillableMemoryChannel = self.channel  # type: ignore[assignment]
        before = len(self._mem_takes)
        side, got = ch._take_runs(max_events, self._side, self._mem_takes)
        self._side = side
        if side != "overflow" or not got:
            return self._mem_takes[before:]
        tx = self._ovf_tx
        if tx is None:
            assert ch._overflow is not None
            tx = self._ovf_tx = ch._overflow.transaction().begin()
        try:
            events = tx.take_batch(got)
        except BaseException:
            ch._return_overflow(got)
            raise
        if len(events) < got:  # cannot happen while the runs count only committed overflow batches
            ch._return_overflow(got - len(events))
            ch.log.error("Channel %s: the overflow gave %d of %d events", ch.name, len(events), got)
        self._ovf_taken += len(events)
        return events

    def _commit(self) -> None:
        ch: SpillableMemoryChannel = self.channel  # type: ignore[assignment]
        if self._puts:
            if not ch._put_to_memory(self._puts):
                ch._overflow_put(self._puts)
            self._puts = []
        if self._ovf_tx is not None:
            self._ovf_tx.commit()  # on failure the caller rolls back, which returns the takes
            self._ovf_tx.close()
            self._ovf_tx = None
            self._ovf_taken = 0
        if self._mem_takes:
            ch._release_memory(self._mem_takes)
            self._mem_takes = []

    def _rollback(self) -> None:
        ch: SpillableMemoryChannel = self.channel  # type: ignore[assignment]
        self._puts = []
        tx = self._ovf_tx
        if tx is not None:
            n, self._ovf_taken = self._ovf_taken, 0
            tx.rollback()  # the file channel puts them back at its head; then the runs count them again
            tx.close()
            self._ovf_tx = None
            if n:
                ch._return_overflow(n)
        if self._mem_takes:
            ch._return_memory(self._mem_takes)
            self._mem_takes = []
