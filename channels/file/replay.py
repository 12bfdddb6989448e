"""Rebuilding a file channel's queue on start: the checkpoint, then every log record after its position.

A PUT record adds its sequence numbers to the queue, a TAKE record removes the ranges it names. A damaged stretch
of a segment is handed to the caller (which truncates a torn tail) and skipped; replay never stops on it. Queued
events whose records are missing or damaged are counted as lost and left out of the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from channels.file.checkpoint import read_checkpoint
from channels.file.index import RecordRef
from channels.file.intervals import IntervalSet
from channels.file.records import PUTS, Damage, Record, decode_take, put_header, scan_segment

__all__ = ["ReplayState", "load_checkpoint", "replay"]


class ReplayState:
    """What a checkpoint and the log records after it say: the sequence numbers still queued (``live``), the PUT
    records that hold them (``recs``), the next sequence number, and the log position the checkpoint covers."""

    __slots__ = ("live", "recs", "next_seq", "position")

    def __init__(self, checkpoint: dict | None, first_segment: int):
        self.live = IntervalSet()
        self.recs: dict[int, RecordRef] = {}
        self.next_seq = 1
        self.position: tuple[int, int] = (first_segment, 0)
        if checkpoint is not None:
            for s, e in checkpoint["ranges"]:
                self.live.add(s, e)
            self.next_seq = checkpoint["next_seq"]
            for first, count, seg, off, length, time_ms in checkpoint["records"]:
                self.recs[first] = RecordRef(first, count, seg, off, length, 0, time_ms)
            self.position = tuple(checkpoint["position"])  # type: ignore[assignment]

    def after_checkpoint(self, rec: Record) -> bool:
        return (rec.segment, rec.offset) >= self.position

    def apply(self, rec: Record) -> None:
        """Apply one log record written after the checkpoint."""
        if rec.rtype in PUTS:
            first, time_ms, count = put_header(rec.payload)
            if first in self.recs:
                return  # already known from the checkpoint
            self.recs[first] = RecordRef(first, count, rec.segment, rec.offset, rec.length, 0, time_ms)
            self.live.add(first, first + count)
            self.next_seq = max(self.next_seq, first + count)
        else:
            for s, e in decode_take(rec.payload):
                self.live.remove(s, e)

    def settle(self) -> int:
        """Count each record's queued events, drop records with none, and keep in the queue only events whose
        record is known; returns how many queued events had no record (lost)."""
        live = self.live
        for rec in list(self.recs.values()):
            rec.live = live.count_in(rec.first, rec.first + rec.count)
            if rec.live == 0:
                del self.recs[rec.first]
        lost = live.count - sum(r.live for r in self.recs.values())
        if lost:
            readable = IntervalSet()
            ranges = live.ranges()
            for rec in self.recs.values():
                lo, hi = rec.first, rec.first + rec.count
                for s, e in ranges:
                    if s < hi and e > lo:
                        readable.add(max(s, lo), min(e, hi))
            self.live = readable
        return lost


def load_checkpoint(directories: Sequence[Path], name: str, log: logging.Logger) -> dict | None:
    """The first readable checkpoint of ``directories`` (the primary, then the backup); None if there is none."""
    for d in directories:
        try:
            state = read_checkpoint(d)
        except ValueError as exc:
            log.error("Channel %s: %s; trying the next checkpoint, else replaying the whole log", name, exc)
            continue
        if state is not None:
            return state
    return None


def replay(segments: dict[int, Path], checkpoint: dict | None, name: str, log: logging.Logger,
           on_damage: Callable[[Damage], None]) -> tuple[ReplayState, int]:
    """The queue rebuilt from ``checkpoint`` and the ``segments`` after it, and how many records were replayed.

    ``on_damage(damage)`` is called for each unreadable stretch, before the scan goes on.
    """
    state = ReplayState(checkpoint, min(segments) if segments else 1)
    if checkpoint is not None and checkpoint.get("segments") and not set(checkpoint["segments"]) <= set(segments):
        missing = sorted(set(checkpoint["segments"]) - set(segments))
        log.error("Channel %s: log segments %s named by the checkpoint are missing; events in them are lost",
                  name, missing)
    replayed = 0
    pos_seg, pos_off = state.position
    for number, path in segments.items():
        if number < pos_seg:
            continue
        for item in scan_segment(path, number, pos_off if number == pos_seg else 0):
            if isinstance(item, Damage):
                on_damage(item)
                continue
            replayed += 1
            state.apply(item)
    lost = state.settle()
    if lost:
        log.error("Channel %s: %d queued events point into missing or damaged log records and are lost", name, lost)
    return state, replayed
