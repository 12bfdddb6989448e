"""Where a file channel's queued events are: the PUT records that still hold some, and a cache of recent ones.

Sequence numbers are dense and records are appended in sequence order, so a record is found by bisecting the
sorted first sequence numbers. Recently committed batches stay decoded in memory (up to a budget) so a sink that
keeps up never reads the disk; a backlog beyond the budget is read back from the log, one record per batch.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass

from agent.core import Event

__all__ = ["RecordRef", "RecordIndex", "CACHE_EVENTS"]

CACHE_EVENTS = 200_000  # committed events kept decoded in memory for the sinks


@dataclass(slots=True)
class RecordRef:
    """Where the events with sequence numbers ``first .. first + count - 1`` are in the log, and how many of them
    are still queued (``live``)."""

    first: int
    count: int
    segment: int
    offset: int
    length: int
    live: int
    time_ms: int


class RecordIndex:
    """The records holding queued events, by first sequence number, and the decoded events of recent ones.

    Not thread-safe: the channel calls it under its lock (reading a record from disk happens outside).
    """

    __slots__ = ("recs", "_starts", "_starts_dirty", "_cache", "_cache_events")

    def __init__(self, recs: dict[int, RecordRef] | None = None):
        self.recs: dict[int, RecordRef] = recs if recs is not None else {}
        self._starts = sorted(self.recs)
        self._starts_dirty = False
        self._cache: OrderedDict[int, list[Event]] = OrderedDict()
        self._cache_events = 0

    def add(self, rec: RecordRef) -> None:
        """A new PUT record (appends happen in sequence order)."""
        self.recs[rec.first] = rec
        self._starts.append(rec.first)

    def cache_committed(self, first: int, events: list[Event]) -> None:
        """Keep a just-committed batch decoded, dropping the oldest cached batches beyond the budget."""
        self._cache[first] = events
        self._cache_events += len(events)
        while self._cache_events > CACHE_EVENTS and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_events -= len(old)

    def cache_read(self, rec: RecordRef, events: list[Event]) -> None:
        """Keep events read back from the log, unless every event of the record was taken meanwhile."""
        if rec.first in self.recs:
            self._cache[rec.first] = events
            self._cache_events += len(events)

    def locate(self, seq: int) -> tuple[RecordRef, list[Event] | None]:
        """The record holding sequence number ``seq``, and its events when they are cached."""
        if self._starts_dirty:
            self._starts = sorted(self.recs)
            self._starts_dirty = False
        i = bisect_right(self._starts, seq) - 1
        rec = self.recs[self._starts[i]]
        return rec, self._cache.get(rec.first)

    def forget(self, s: int, e: int) -> None:
        """Events [s, e) were taken for good: drop the records with nothing left queued."""
        if self._starts_dirty:
            self._starts = sorted(self.recs)
            self._starts_dirty = False
        starts = self._starts
        i = bisect_right(starts, s) - 1
        while s < e and 0 <= i < len(starts):
            rec = self.recs.get(starts[i])
            if rec is None:
                i += 1
                continue
            end = min(e, rec.first + rec.count)
            rec.live -= end - s
            if rec.live <= 0:
                del self.recs[rec.first]
                cached = self._cache.pop(rec.first, None)
                if cached is not None:
                    self._cache_events -= len(cached)
                self._starts_dirty = True
            s = end
            i += 1

    def snapshot(self) -> list[list[int]]:
        """The records as the checkpoint stores them: ``[first, count, segment, offset, length, time_ms]``."""
        return [[r.first, r.count, r.segment, r.offset, r.length, r.time_ms] for r in self.recs.values()]

    def segments_needed(self) -> set[int]:
        return {r.segment for r in self.recs.values()}
