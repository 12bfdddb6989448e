"""The file channel's log segments on disk: appends with group-committed fsyncs, rolls, reads, deletion.

Appends go to the newest segment; at ``maxFileSize`` it is fsynced and closed and the next one is started in the
next data directory (segment N lives in ``dataDirs[(N - 1) % len(dataDirs)]``). Records are read back by their
segment, offset and length; a segment is deleted once the channel's checkpoint no longer needs it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from agent.core import ChannelException
from channels.file.checkpoint import fsync_dir
from channels.file.records import segment_name, segment_number

__all__ = ["SegmentLog", "find_segments"]


def find_segments(data_dirs: Sequence[Path]) -> dict[int, Path]:
    """The log segments in ``data_dirs`` by number, in order; ChannelException if a number exists twice."""
    found: dict[int, Path] = {}
    for d in data_dirs:
        for p in d.iterdir():
            n = segment_number(p.name)
            if n is not None:
                if n in found:
                    raise ChannelException(f"log segment {n} exists twice: {found[n]} and {p}")
                found[n] = p
    return dict(sorted(found.items()))


class SegmentLog:
    """One file channel's segments: the one being appended to, and read descriptors for the others.

    ``lock`` serializes appends, rolls and fsyncs; the channel also holds it while it snapshots its queue for a
    checkpoint, so that the snapshot and the log position agree. ``appended`` counts appends; ``sync(ticket)``
    makes every append up to that count durable, and concurrent callers share one fsync (group commit).
    """

    def __init__(self, data_dirs: Sequence[Path], max_file_size: int):
        self.data_dirs = list(data_dirs)
        self.max_file_size = max_file_size
        self.lock = threading.Lock()
        self.segments: dict[int, Path] = {}
        self.current = 0  # the segment appended to
        self.size = 0  # its size in bytes
        self.appended = 0
        self._synced = 0
        self._fd = -1
        self._read_fds: dict[int, int] = {}

    def load(self) -> dict[int, Path]:
        """Find the segments already on disk (before replay)."""
        self.segments = find_segments(self.data_dirs)
        return self.segments

    def open_for_append(self) -> None:
        """Continue the newest segment, or start a new one when it is full or there is none."""
        if self.segments:
            last = max(self.segments)
            path = self.segments[last]
            size = path.stat().st_size
            if size < self.max_file_size:
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                self.current, self.size = last, size
                return
            self._new_segment(last + 1)
        else:
            self._new_segment(1)

    def _new_segment(self, number: int) -> None:
        directory = self.data_dirs[(number - 1) % len(self.data_dirs)]
        path = directory / segment_name(number)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fsync_dir(directory)
        self.segments[number] = path
        self.current, self.size = number, 0

    def append(self, data: bytes) -> tuple[int, int]:
        """Append one record (caller holds ``lock``); returns (segment, offset)."""
        if self.size and self.size + len(data) > self.max_file_size:
            os.fsync(self._fd)
            os.close(self._fd)
            self._synced = self.appended
            self._new_segment(self.current + 1)
        offset = self.size
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)
        self.appended += 1
        return self.current, offset

    def sync(self, ticket: int | None = None) -> None:
        """Make every append up to ``ticket`` (all when None) durable; concurrent callers share one fsync."""
        if ticket is not None and self._synced >= ticket:
            return
        with self.lock:
            if ticket is not None and self._synced >= ticket:
                return  # someone else's fsync covered us while we waited
            self.sync_locked()

    def sync_locked(self, force: bool = False) -> None:
        """Make every append durable (caller holds ``lock``); ``force`` fsyncs even when nothing is pending."""
        target = self.appended
        if self._fd >= 0 and (force or self._synced < target):
            os.fdatasync(self._fd)
        self._synced = target

    def read(self, segment: int, offset: int, length: int) -> bytes:
        fd = self._read_fds.get(segment)
        if fd is None:
            fd = os.open(self.segments[segment], os.O_RDONLY)
            self._read_fds[segment] = fd
        return os.pread(fd, length, offset)

    def delete(self, numbers: Sequence[int]) -> list[Path]:
        """Delete these segments (drained, and not needed by the checkpoint); returns the paths deleted."""
        deleted = []
        for number in numbers:
            path = self.segments.pop(number)
            fd = self._read_fds.pop(number, -1)
            if fd >= 0:
                os.close(fd)
            try:
                path.unlink()
                deleted.append(path)
            except FileNotFoundError:
                pass
        return deleted

    def close(self) -> None:
        for fd in [self._fd, *self._read_fds.values()]:
            if fd >= 0:
                os.close(fd)
        self._fd = -1
        self._read_fds.clear()
