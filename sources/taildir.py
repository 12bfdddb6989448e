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

from agent.core import POLL_BACKOFF, ChannelException, Event, PollableSource, Status
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
    has_cr: bool = False
    last_partial: bool = False


class TaildirSource(PollableSource):
    """Tails every file matching the groups' patterns; one event per line."""

    alias = "TAILDIR"
    flume_class = "org.apache.flume.source.taildir.TaildirSource"
    batch_size_prop = "batchSize"
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
        self.groups: dict[str, tuple[Path, re.Pattern[str]]] = {}
        raw = conf.sub_text("filegroups.")
        for g in conf["filegroups"] or []:
            path = raw.get(g)
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
        for key, value in conf.sub_text("headers.").items():
            g, _, h = key.partition(".")
            self.headers.setdefault(g, {})[h] = value
        self.position_file = Path(conf["positionFile"]).expanduser()
        self.offset_header = conf["byteOffsetHeader"]
        self.skip_to_end = conf["skipToEnd"]
        self.idle = conf["idleTimeout"] / 1000.0
        self.write_interval = conf["writePosInterval"] / 1000.0
        self.batch = conf["batchSize"]
        self.max_batches = conf["maxBatchCount"] or _LONG_MAX
        self.file_header = conf["fileHeaderKey"] if conf["fileHeader"] else None
        self._tails: dict[int, _Tail] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._last_scan = 0.0
        self.wakeup = threading.Event()  # set by filesystem notifications: the runner stops backing off
        self._observer = None

    # Lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.position_file.parent.mkdir(parents=True, exist_ok=True)
        saved = self._load_positions()
        self._scan(saved, first=True)
        self._stop.clear()
        self._writer = threading.Thread(target=self._write_loop, name=f"{self.name}-positions", daemon=True)
        self._writer.start()
        self._watch()
        self.counter.started()
        self.log.info("TAILDIR source %s started: %d files, positions in %s", self.name, len(self._tails),
                      self.position_file)

    def stop(self) -> None:
        self._stop.set()
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
        self.counter.stopped()
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
        while not self._stop.wait(self.write_interval):
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
            self._tails[inode] = _Tail(path, inode, pos, g)
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
                if self._stop.is_set():
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
        """Read and deliver one batch of complete lines; the count, 0 at the end, None if the channel refused.

        Lines are read a chunk at a time and kept in ``t.pending`` (they start at ``t.pos``), so a chunk is read
        and split once however many batches it holds."""
        if t.fd < 0:
            try:
                t.fd = os.open(t.path, os.O_RDONLY)
            except FileNotFoundError:
                t.matched = False
                return 0
            if os.fstat(t.fd).st_ino != t.inode:  # the path now names another file: keep tracking ours by inode
                os.close(t.fd)
                t.fd = -1
                t.matched = False
                return 0
        if not t.pending:
            size = os.fstat(t.fd).st_size
            if size < t.pos:
                self.log.warning("TAILDIR source %s: %s shrank from %d to %d bytes (truncated); reading it again "
                                 "from the start", self.name, t.path, t.pos, size)
                t.pos = 0
            if size == t.pos:
                return 0
            data = os.pread(t.fd, min(_CHUNK, size - t.pos), t.pos)
            end = data.rfind(b"\n")
            if end < 0 and len(data) == _CHUNK:  # a line longer than the chunk: take it whole once complete
                data = os.pread(t.fd, size - t.pos, t.pos)
                end = data.rfind(b"\n")
            t.last_partial = False
            if end < 0:
                if t.matched:
                    return 0  # a partial last line waits for its newline
                end = len(data)  # a rotated file will not grow: its last partial line is complete
                t.last_partial = True
            t.pending = data[:end].split(b"\n")
            t.has_cr = b"\r" in data
        lines = t.pending[:self.batch]
        consumed = sum(map(len, lines)) + len(lines)
        if t.last_partial and len(lines) == len(t.pending):
            consumed -= 1  # no newline after the rotated file's last line
        bodies = [x[:-1] if x.endswith(b"\r") else x for x in lines] if t.has_cr else lines
        extra = self.headers.get(t.group)
        if extra or self.file_header or self.offset_header:
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
        else:
            events = [Event(b) for b in bodies]
        n = len(events)
        assert self.channel_processor is not None
        try:
            self.channel_processor.process_batch(events)
        except ChannelException:
            with self.counter.lock:
                self.counter.channel_write_fail += 1
                self.counter.event_received += n
                self.counter.append_batch_received += 1
            return None
        self.counter.batch(n, n)
        del t.pending[:n]
        t.pos += consumed
        t.last_seen = time.monotonic()
        return n
