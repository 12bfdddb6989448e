"""The TAILDIR source: follows files that match patterns, line by line, and remembers where it is.

Files are identified by inode, so a file renamed by log rotation is read to its end under its new name before it
is dropped, and the new file under the old name is picked up from its start. A file that shrinks below the read
position (``copytruncate``) is read again from the start. A last line without its newline is held back until it
is complete. Positions are kept in ``positionFile`` in Flume's own JSON format (``[{"inode":..,"pos":..,
"file":".."}]``, so a Flume agent's position file keeps working), written atomically every ``writePosInterval``
and at stop; the position advances only past lines the channel committed.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from agent.core import POLL_BACKOFF, Batch, ChannelException, Event, PollableSource, Status
from agent.java import java_regex
from agent.spec import Conf, ConfigError, Prop, Spec

__all__ = ["TaildirSource"]

_LONG_MAX = 2**63 - 1
_CHUNK = 1 << 20


@dataclass
class _Tail:
    path: str
    inode: int
    pos: int
    group: str
    fd: int = -1
    last_seen: float = field(default_factory=time.monotonic)
    matched: bool = True
    pending: list[bytes] = field(default_factory=list)  # complete lines read but not yet delivered, from pos
    pending_bytes: int = 0  # the bytes of those lines in the file, newlines included
    has_cr: bool = False
    last_partial: bool = False


class TaildirSource(PollableSource):
    """Tails every file matching the groups' patterns; one event per line."""

    alias = "TAILDIR"
    flume_class = "org.apache.flume.source.taildir.TaildirSource"
    spec = Spec(
        Prop("filegroups", "list", required=True, doc="Space-separated names of file groups."),
        Prop("filegroups.", prefix=True, doc="filegroups.<g> = absolute path; the file-name part is a Java regex."),
        Prop("positionFile", "str", "~/.flume/taildir_position.json", "JSON file of the read positions."),
        Prop("headers.", prefix=True, doc="headers.<g>.<key> = value: a header added to events of group g."),
        Prop("byteOffsetHeader", "bool", False, "Add the line's byte offset as the 'byteoffset' header."),
        Prop("skipToEnd", "bool", False, "Start files that are not in the position file at their end."),
        Prop("idleTimeout", "int", 120000, "Milliseconds after which an unchanged file is closed (reopened when it "
             "grows).", min=0),
        Prop("writePosInterval", "int", 3000, "Milliseconds between writes of the position file.", min=1),
        Prop("batchSize", "int", 100, "Lines per channel transaction.", min=1),
        Prop("maxBatchCount", "int", _LONG_MAX, "Batches read from one file before moving to the next.", min=0),
        Prop("cachePatternMatching", "bool", True, "Accepted for compatibility (directory listings are cheap)."),
        Prop("fileHeader", "bool", False, "Add the file's path as a header."),
        Prop("fileHeaderKey", "str", "file", "Header name for fileHeader."),
        extends=POLL_BACKOFF,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        config = self.config
        self.groups: dict[str, tuple[Path, re.Pattern[str]]] = {}
        for g in config.filegroups or []:
            path = config.filegroups_options.get(g)
            if not path:
                conf.error(f"file group '{g}' has no path (filegroups.{g})", "filegroups")
                continue
            p = Path(path)
            if not p.is_absolute():
                conf.error(f"filegroups.{g} must be an absolute path", "filegroups." + g)
            try:
                self.groups[g] = (p.parent, re.compile(java_regex(p.name)))
            except re.error as exc:
                conf.error(f"invalid file name pattern '{p.name}': {exc}", "filegroups." + g)
        self.headers: dict[str, dict[str, str]] = {}
        for key, value in config.headers.items():
            g, _, h = key.partition(".")
            self.headers.setdefault(g, {})[h] = value
        self.position_file = Path(config.position_file).expanduser()
        self.offset_header: bool = config.byte_offset_header
        self.skip_to_end: bool = config.skip_to_end
        self.idle = config.idle_timeout / 1000.0
        self.write_interval = config.write_pos_interval / 1000.0
        self.batch: int = config.batch_size
        self.max_batches: int = config.max_batch_count or _LONG_MAX
        self.file_header = config.file_header_key if config.file_header else None
        self._tails: dict[int, _Tail] = {}
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._last_scan = 0.0
        self.wakeup = threading.Event()  # set by filesystem notifications: the runner stops backing off
        self._observer = None

    # Lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.position_file.parent.mkdir(parents=True, exist_ok=True)
        saved = self._load_positions()
        self._scan(saved, first=True)
        self.stopping.clear()
        self._writer = threading.Thread(target=self._write_loop, name=f"{self.name}-positions", daemon=True)
        self._writer.start()
        self._watch()
        self.log.info("TAILDIR source %s started: %d files, positions in %s", self.name, len(self._tails),
                      self.position_file)

    def stop(self) -> None:
        self.stopping.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None
        if self._writer is not None:
            self._writer.join(5)
        with self._lock:
            self._write_positions()
            for t in self._tails.values():
                if t.fd >= 0:
                    os.close(t.fd)
                    t.fd = -1
        self.log.info("TAILDIR source %s stopped", self.name)

    def _watch(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return
        source = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: object) -> None:
                source._last_scan = 0.0  # a file may have appeared or been renamed: rescan on the next call
                source.wakeup.set()

        try:
            observer = Observer()
            for directory in {d for d, _ in self.groups.values()}:
                if directory.is_dir():
                    observer.schedule(_Handler(), str(directory), recursive=False)
            observer.daemon = True
            observer.start()
            self._observer = observer
        except OSError as exc:
            self.log.warning("TAILDIR source %s: no filesystem notifications (%s); polling with backoff", self.name,
                             exc)

    def _load_positions(self) -> dict[int, tuple[int, str]]:
        try:
            text = self.position_file.read_text()
        except FileNotFoundError:
            return {}
        if not text.strip():
            return {}
        try:
            return {int(e["inode"]): (int(e["pos"]), str(e["file"])) for e in json.loads(text)}
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"position file {self.position_file} is not valid ({exc}); fix or remove it",
                              "positionFile") from None

    def _write_positions(self) -> None:
        entries = [{"inode": t.inode, "pos": t.pos, "file": t.path} for t in self._tails.values()]
        tmp = self.position_file.with_name(self.position_file.name + ".tmp")
        tmp.write_text(json.dumps(entries, separators=(",", ":")) if entries else "")
        os.replace(tmp, self.position_file)

    def _write_loop(self) -> None:
        while not self.stopping.wait(self.write_interval):
            try:
                with self._lock:
                    self._write_positions()
            except OSError as exc:
                self.log.error("TAILDIR source %s: cannot write %s: %s", self.name, self.position_file, exc)

    # Files --------------------------------------------------------------------------------------------------
    def _matched(self) -> dict[int, tuple[str, str]]:
        out: dict[int, tuple[str, str]] = {}
        for g, (directory, pattern) in self.groups.items():
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:
                continue
            for e in entries:
                if pattern.fullmatch(e.name) and e.is_file():
                    out[e.inode()] = (e.path, g)
        return out

    def _scan(self, saved: dict[int, tuple[int, str]] | None = None, first: bool = False) -> None:
        matched = self._matched()
        for inode, (path, g) in matched.items():
            t = self._tails.get(inode)
            if t is not None:
                if t.path != path:
                    self.log.info("TAILDIR source %s: %s is now %s", self.name, t.path, path)
                t.path, t.matched, t.group = path, True, g
                continue
            pos = 0
            if saved and inode in saved and saved[inode][1] == path:
                pos = saved[inode][0]
            elif self.skip_to_end:
                try:
                    pos = os.stat(path).st_size
                except FileNotFoundError:
                    continue
            t = _Tail(path, inode, pos, g)
            if not self._open(t):
                continue  # renamed or deleted since the listing: the next scan sees it where it is now
            self._tails[inode] = t
            if not first:
                self.log.info("TAILDIR source %s: following new file %s", self.name, path)
        for inode, t in self._tails.items():
            if inode not in matched:
                t.matched = False  # renamed away or deleted: read what is left, then drop it

    # Reading ------------------------------------------------------------------------------------------------
    def process(self) -> Status:
        now = time.monotonic()
        if now - self._last_scan > 0.5:
            with self._lock:
                self._scan()
            self._last_scan = now
        any_events = False
        for t in list(self._tails.values()):
            for _ in range(min(self.max_batches, 1 << 30)):
                got = self._tail_batch(t)
                if got is None:
                    return Status.BACKOFF  # the channel refused: back off, nothing advanced
                if not got:
                    break
                any_events = True
                if self.stopping.is_set():
                    break
            if not t.matched:
                self._drop(t)
            elif self.idle and t.fd >= 0 and now - t.last_seen > self.idle:
                os.close(t.fd)
                t.fd = -1
        return Status.READY if any_events else Status.BACKOFF

    def _drop(self, t: _Tail) -> None:
        with self._lock:
            if t.fd >= 0:
                os.close(t.fd)
            self._tails.pop(t.inode, None)
        self.log.info("TAILDIR source %s: finished %s (rotated away)", self.name, t.path)

    def _tail_batch(self, t: _Tail) -> int | None:
        """Deliver one batch of complete lines; the count, 0 at the end, None if the channel refused.

        Lines are read a chunk at a time and kept in ``t.pending`` (they start at ``t.pos``), so a chunk is read
        and split once however many batches it holds."""
        if not t.pending and not self._read_lines(t):
            return 0
        pending = t.pending
        if len(pending) <= self.batch:  # the rest of the chunk: its size is known
            lines, consumed = pending, t.pending_bytes
        else:
            lines = pending[:self.batch]
            consumed = len(b"".join(lines)) + len(lines)  # twice as fast as sum(map(len, lines))
        try:
            self.deliver(self._events(t, lines))
        except ChannelException:
            return None  # nothing advanced: the runner backs off and offers the same lines again
        n = len(lines)
        if lines is pending:
            t.pending = []  # a new list: the delivered batch may still hold the old one
        else:
            del pending[:n]
        t.pending_bytes -= consumed
        t.pos += consumed
        t.last_seen = time.monotonic()
        return n

    def _open(self, t: _Tail) -> bool:
        """Open the file of ``t`` by its path; False when the path is gone or now names another file (by inode).

        A file is opened as soon as it is found, so that one renamed before its first read is still read (from
        its descriptor) to its end."""
        try:
            fd = os.open(t.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        if os.fstat(fd).st_ino != t.inode:
            os.close(fd)
            return False
        t.fd = fd
        return True

    def _read_lines(self, t: _Tail) -> bool:
        """Read the complete lines after ``t.pos`` into ``t.pending``; False when there are none yet."""
        if t.fd < 0 and not self._open(t):  # closed while idle, and renamed or deleted meanwhile
            t.matched = False
            return False
        size = os.fstat(t.fd).st_size
        if size < t.pos:
            self.log.warning("TAILDIR source %s: %s shrank from %d to %d bytes (truncated); reading it again "
                             "from the start", self.name, t.path, t.pos, size)
            t.pos = 0
        if size == t.pos:
            return False
        data = os.pread(t.fd, min(_CHUNK, size - t.pos), t.pos)
        end = data.rfind(b"\n")
        if end < 0 and len(data) == _CHUNK:  # a line longer than the chunk: take it whole once complete
            data = os.pread(t.fd, size - t.pos, t.pos)
            end = data.rfind(b"\n")
        t.last_partial = False
        if end < 0:
            if t.matched:
                return False  # a partial last line waits for its newline
            end = len(data)  # a rotated file will not grow: its last partial line is complete
            t.last_partial = True
        t.pending = data.split(b"\n")
        if not t.last_partial:
            t.pending.pop()  # what follows the last newline (no copy of the chunk up to it)
        t.pending_bytes = end if t.last_partial else end + 1  # no newline after a rotated file's last line
        t.has_cr = b"\r" in data
        return True

    def _events(self, t: _Tail, lines: list[bytes]) -> list[Event]:
        """The events of ``lines`` (a CR before the newline dropped), with the group's and the optional headers."""
        bodies = [x[:-1] if x.endswith(b"\r") else x for x in lines] if t.has_cr else lines
        extra = self.headers.get(t.group)
        if not self.offset_header:  # the same headers for every line: one dict shared by the batch
            if self.file_header:
                return Batch(bodies, {**extra, self.file_header: t.path} if extra else {self.file_header: t.path})
            return Batch(bodies, extra or None)
        events = []
        offset = t.pos
        for line, body in zip(lines, bodies, strict=True):
            h: dict[str, str] = dict(extra) if extra else {}
            if self.file_header:
                h[self.file_header] = t.path
            if self.offset_header:
                h["byteoffset"] = str(offset)
            offset += len(line) + 1
            events.append(Event(body, h))
        return events
