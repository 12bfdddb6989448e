"""The file channel: durable, crash-safe transactions on a write-ahead log.

A committed put is appended to the log as one checksummed record and fsynced before ``commit()`` returns
(``fsyncPerTransaction``); transactions that commit at the same time share one fsync (group commit). A committed
take appends a small record naming the sequence numbers taken. The queue itself lives in memory as ranges of
sequence numbers; every ``checkpointInterval`` it is written to the checkpoint directory atomically, and on start
the channel loads the checkpoint and replays the log after it. A torn or corrupt stretch of the log is reported
with its file and offset and skipped (a torn tail is truncated); replay never stops on it.

Log segments roll at ``maxFileSize``, go to the ``dataDirs`` in turn, and are deleted once every event in them
has been taken and a checkpoint written after that, so the disk use follows the queue.

Recently committed batches are also kept in memory (up to a budget) so a sink that keeps up never reads the disk;
a backlog beyond the budget is read back from the log, one record per batch.

This is pyflume's own format, not Apache Flume's: a Flume file channel's directories are recognized and refused
with a message (drain them with Flume first).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.core import Channel, ChannelException, ChannelFullException, Event, Transaction
from agent.metrics import ChannelCounter
from agent.spec import Conf, Prop, Spec
from channels import filelog
from channels.filelog import HEADER, PUT, Damage, Record
from channels.intervals import IntervalSet

__all__ = ["FileChannel", "inspect", "FileChannelCounter"]

_HOME = Path("~/.flume/file-channel").expanduser()
_MAX_FILE = 2146435071
_CACHE_EVENTS = 200_000  # committed events kept decoded in memory for the sinks
_CACHE_BYTES = 64 << 20


class FileChannelCounter(ChannelCounter):
    FIELDS = ChannelCounter.FIELDS + (
        ("put_error", "EventPutErrorCount"),
        ("take_error", "EventTakeErrorCount"),
        ("checkpoint_write_error", "CheckpointWriteErrorCount"),
        ("checkpoint_backup_write_error", "CheckpointBackupWriteErrorCount"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.closed = True
        self.unhealthy = False

    def attributes(self) -> dict[str, str]:
        out = super().attributes()
        out["Closed"] = "1" if self.closed else "0"
        out["Unhealthy"] = "1" if self.unhealthy else "0"
        return out


class _Rec:
    """Where the events with sequence numbers ``first .. first + count - 1`` are in the log."""

    __slots__ = ("first", "count", "segment", "offset", "length", "live", "time_ms")

    def __init__(self, first: int, count: int, segment: int, offset: int, length: int, live: int, time_ms: int):
        self.first = first
        self.count = count
        self.segment = segment
        self.offset = offset
        self.length = length
        self.live = live
        self.time_ms = time_ms


class FileChannel(Channel):
    """Events are written to a write-ahead log on disk; nothing committed is lost when the process or machine dies."""

    alias = "file"
    flume_class = "org.apache.flume.channel.file.FileChannel"
    durable = True  # on reload its replacement replays the directories instead of being handed the events
    spec = Spec(
        Prop("checkpointDir", "str", str(_HOME / "checkpoint"), "Directory for the checkpoint and its lock file."),
        Prop("dataDirs", "list", [str(_HOME / "data")],
             "Comma-separated directories for the log segments, used in turn (separate disks add throughput).",
             sep=","),
        Prop("useDualCheckpoints", "bool", False, "Also keep a copy of each checkpoint in backupCheckpointDir."),
        Prop("backupCheckpointDir", "str", None, "Directory for the backup checkpoint (with useDualCheckpoints)."),
        Prop("compressBackupCheckpoint", "bool", False, "Accepted for compatibility; the checkpoint is small."),
        Prop("capacity", "int", 1000000, "The most events the channel holds.", min=1),
        Prop("transactionCapacity", "int", 10000, "The most events one transaction may put or take.", min=1),
        Prop("checkpointInterval", "int", 30000, "Milliseconds between checkpoints.", min=1),
        Prop("maxFileSize", "int", _MAX_FILE, "Bytes at which a log segment is closed and a new one started.",
             min=1024, max=_MAX_FILE),
        Prop("minimumRequiredSpace", "int", 524288000,
             "Free bytes each directory must keep (at least 1 MiB); below it, puts fail as if the channel were full.",
             min=0),
        Prop("keep-alive", "int", 3, "Seconds a put waits for room in a full channel.", min=0),
        Prop("checkpointOnClose", "bool", True, "Write a checkpoint when the channel stops (faster restart)."),
        Prop("fsyncPerTransaction", "bool", True,
             "fsync every commit before it returns (group commit). false: fsync every fsyncInterval seconds, and "
             "a crash of the machine (not only of the process) may lose the last seconds of commits."),
        Prop("fsyncInterval", "int", 5, "Seconds between fsyncs when fsyncPerTransaction is false.", min=1),
        Prop("use-log-replay-v1", "bool", False, "Accepted for compatibility; pyflume has one replay."),
        Prop("use-fast-replay", "bool", False, "Accepted for compatibility; pyflume's replay is always fast."),
        Prop("write-timeout", "int", None, "Deprecated in Flume and ignored.", hidden=True),
        Prop("checkpoint-timeout", "int", None, "Deprecated in Flume and ignored.", hidden=True),
        Prop("encryption", "str", None,
             "Flume's log encryption (encryption.activeKey, encryption.cipherProvider, encryption.keyProvider.*) "
             "is not supported yet; put the data directories on an encrypted file system instead.", prefix=True),
    )

    def __init__(self, name: str, conf: Conf, *, free_space: Callable[[Path], int] | None = None):
        super().__init__(name, conf)
        self.counter = FileChannelCounter()
        self.capacity = conf["capacity"]
        self.transaction_capacity = conf["transactionCapacity"]
        if self.transaction_capacity > self.capacity:
            conf.error(f"transactionCapacity ({self.transaction_capacity}) must not exceed capacity "
                       f"({self.capacity})", "transactionCapacity")
        self.checkpoint_dir = Path(conf["checkpointDir"]).expanduser()
        self.data_dirs = [Path(d).expanduser() for d in conf["dataDirs"]]
        if not self.data_dirs:
            conf.error("at least one data directory is needed", "dataDirs")
        self.backup_dir: Path | None = None
        if conf["useDualCheckpoints"]:
            if not conf.get("backupCheckpointDir"):
                conf.error("useDualCheckpoints is true but backupCheckpointDir is not set", "backupCheckpointDir")
            else:
                self.backup_dir = Path(conf["backupCheckpointDir"]).expanduser()
                if self.backup_dir.resolve() == self.checkpoint_dir.resolve():
                    conf.error("backupCheckpointDir must differ from checkpointDir", "backupCheckpointDir")
        for d in self.data_dirs:
            if d.resolve() == self.checkpoint_dir.resolve():
                conf.error(f"data directory {d} is also the checkpoint directory; give each its own", "dataDirs")
        encryption = sorted(conf.sub("encryption."))
        if encryption:
            conf.error("file channel encryption is not supported yet; put the data directories on an encrypted "
                       "file system instead", "encryption." + encryption[0])
        self.checkpoint_interval = conf["checkpointInterval"] / 1000.0
        self.max_file_size = conf["maxFileSize"]
        self.min_space = max(conf["minimumRequiredSpace"], 1 << 20)  # Flume's floor: 1 MiB
        self.keep_alive = float(conf["keep-alive"])
        self.checkpoint_on_close = conf["checkpointOnClose"]
        self.fsync_per_tx = conf["fsyncPerTransaction"]
        self.fsync_interval = float(conf["fsyncInterval"])
        self._free_space = free_space or _free_bytes
        self._reset_state()

    def _reset_state(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._wlock = threading.Lock()  # serializes log appends, segment rolls, fsyncs and checkpoint snapshots
        self._queue = IntervalSet()  # committed, durable, not taken
        self._pending = IntervalSet()  # appended, waiting for their fsync
        self._taken: dict[int, list[tuple[int, int]]] = {}  # open transactions' takes
        self._inflight_takes = 0
        self._claimed_puts = 0
        self._next_seq = 1
        self._recs: dict[int, _Rec] = {}
        self._starts: list[int] = []
        self._starts_dirty = False
        self._cache: OrderedDict[int, list[Event]] = OrderedDict()
        self._cache_events = 0
        self._segments: dict[int, Path] = {}
        self._read_fds: dict[int, int] = {}
        self._fd = -1
        self._seg = 0
        self._seg_size = 0
        self._appended = 0
        self._synced = 0
        self._space_checked = 0.0
        self._space_ok = True
        self._space_message = ""
        self._locks: list[int] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tx_ids = 0
        self._open = False
        self._dirty = False

    # ------------------------------------------------------------------------------------------------------
    # Lifecycle

    def start(self) -> None:
        self._reset_state()
        dirs = [self.checkpoint_dir, *self.data_dirs] + ([self.backup_dir] if self.backup_dir else [])
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
            _refuse_flume_dir(d)
        try:
            for d in dict.fromkeys(dirs):
                self._locks.append(_lock_dir(d, self.name))
            t0 = time.monotonic()
            replayed = self._replay()
            self._open_for_append()
        except BaseException:
            self._release_locks()
            raise
        self._open = True
        self.counter.closed = False
        self.counter.started()
        self._threads = [threading.Thread(target=self._checkpointer, name=f"{self.name}-checkpoint", daemon=True)]
        if not self.fsync_per_tx:
            self._threads.append(threading.Thread(target=self._syncer, name=f"{self.name}-fsync", daemon=True))
        for t in self._threads:
            t.start()
        self.log.info("Channel %s started: %d events queued (%d log records replayed in %.2f s), %d segments in %s",
                      self.name, len(self._queue), replayed, time.monotonic() - t0, len(self._segments),
                      ", ".join(map(str, self.data_dirs)))

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
        if self._open:
            try:
                if self.checkpoint_on_close:
                    self.checkpoint()
                else:
                    self._sync()
            except OSError as exc:
                self.log.error("Channel %s: final checkpoint failed: %s", self.name, exc)
            with self._lock:
                self._open = False
                self._lock.notify_all()
            for fd in [self._fd, *self._read_fds.values()]:
                if fd >= 0:
                    os.close(fd)
            self._fd = -1
            self._read_fds.clear()
        self._release_locks()
        self.counter.closed = True
        self.counter.stopped()
        self.log.info("Channel %s stopped with %d events queued", self.name, len(self._queue))

    def _release_locks(self) -> None:
        for fd in self._locks:
            os.close(fd)
        self._locks = []

    def transaction(self) -> Transaction:
        return _FileTransaction(self)

    def size(self) -> int:
        return self._queue.count

    # ------------------------------------------------------------------------------------------------------
    # Replay

    def _all_segments(self) -> dict[int, Path]:
        found: dict[int, Path] = {}
        for d in self.data_dirs:
            for p in d.iterdir():
                n = filelog.segment_number(p.name)
                if n is not None:
                    if n in found:
                        raise ChannelException(f"log segment {n} exists twice: {found[n]} and {p}")
                    found[n] = p
        return dict(sorted(found.items()))

    def _load_checkpoint(self) -> dict | None:
        for d in [self.checkpoint_dir] + ([self.backup_dir] if self.backup_dir else []):
            try:
                state = filelog.read_checkpoint(d)
            except ValueError as exc:
                self.log.error("Channel %s: %s; trying the next checkpoint, else replaying the whole log",
                               self.name, exc)
                continue
            if state is not None:
                return state
        return None

    def _replay(self) -> int:
        self._segments = self._all_segments()
        state = self._load_checkpoint()
        live = IntervalSet()
        pos_seg, pos_off = (min(self._segments) if self._segments else 1), 0
        if state is not None:
            if state.get("segments") and not set(state["segments"]) <= set(self._segments):
                missing = sorted(set(state["segments"]) - set(self._segments))
                self.log.error("Channel %s: log segments %s named by the checkpoint are missing; events in them "
                               "are lost", self.name, missing)
            for s, e in state["ranges"]:
                live.add(s, e)
            self._next_seq = state["next_seq"]
            for first, count, seg, off, length, time_ms in state["records"]:
                self._recs[first] = _Rec(first, count, seg, off, length, 0, time_ms)
            pos_seg, pos_off = state["position"]
        replayed = 0
        last = max(self._segments) if self._segments else 0
        for number, path in self._segments.items():
            if number < pos_seg:
                continue
            start = pos_off if number == pos_seg else 0
            for item in filelog.scan_segment(path, number, start):
                if isinstance(item, Damage):
                    self._on_damage(item, number == last)
                    continue
                replayed += 1
                self._apply(item, live)
        for rec in list(self._recs.values()):
            rec.live = live.count_in(rec.first, rec.first + rec.count)
            if rec.live == 0:
                del self._recs[rec.first]
        lost = live.count - sum(r.live for r in self._recs.values())
        if lost:
            self.log.error("Channel %s: %d queued events point into missing or damaged log records and are lost",
                           self.name, lost)
            readable = IntervalSet()
            ranges = live.ranges()
            for rec in self._recs.values():
                lo, hi = rec.first, rec.first + rec.count
                for s, e in ranges:
                    if s < hi and e > lo:
                        readable.add(max(s, lo), min(e, hi))
            live = readable
        self._queue = live
        self._starts = sorted(self._recs)
        return replayed

    def _apply(self, rec: Record, live: IntervalSet) -> None:
        if rec.rtype == PUT:
            first, time_ms = filelog.PUT_PREFIX.unpack_from(rec.payload, 0)
            (count,) = filelog._U32.unpack_from(rec.payload, 16)
            if first < self._next_seq and first in self._recs:
                return  # already known from the checkpoint
            self._recs[first] = _Rec(first, count, rec.segment, rec.offset, rec.length, 0, time_ms)
            live.add(first, first + count)
            self._next_seq = max(self._next_seq, first + count)
        else:
            for s, e in filelog.decode_take(rec.payload):
                live.remove(s, e)

    def _on_damage(self, damage: Damage, last_segment: bool) -> None:
        self.counter.unhealthy = True
        if damage.torn:
            self.log.warning("Channel %s: %s; truncating the segment there (a commit interrupted by a crash never "
                             "returned, so nothing acknowledged is lost)", self.name, damage)
            with open(damage.path, "r+b") as f:
                f.truncate(damage.offset)
                os.fsync(f.fileno())
        else:
            self.log.error("Channel %s: %s; skipped, the records after it are replayed", self.name, damage)

    def _open_for_append(self) -> None:
        if self._segments:
            last = max(self._segments)
            path = self._segments[last]
            size = path.stat().st_size
            if size < self.max_file_size:
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                self._seg, self._seg_size = last, size
                return
            self._new_segment(last + 1)
        else:
            self._new_segment(1)

    def _new_segment(self, number: int) -> None:
        directory = self.data_dirs[(number - 1) % len(self.data_dirs)]
        path = directory / filelog.segment_name(number)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        filelog.fsync_dir(directory)
        self._segments[number] = path
        self._seg, self._seg_size = number, 0

    # ------------------------------------------------------------------------------------------------------
    # The log: appends, group commit, checkpoint

    def _append(self, data: bytes) -> tuple[int, int]:
        """Append one record (caller holds _wlock); returns (segment, offset)."""
        if self._seg_size and self._seg_size + len(data) > self.max_file_size:
            os.fsync(self._fd)
            os.close(self._fd)
            self._synced = self._appended
            self._new_segment(self._seg + 1)
        offset = self._seg_size
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._seg_size += len(data)
        self._appended += 1
        self._dirty = True
        return self._seg, offset

    def _sync(self, ticket: int | None = None) -> None:
        """Make every append up to ``ticket`` durable; concurrent callers share one fsync."""
        if ticket is not None and self._synced >= ticket:
            return
        with self._wlock:
            if ticket is not None and self._synced >= ticket:
                return  # someone else's fsync covered us while we waited
            target = self._appended
            if self._fd >= 0 and self._synced < target:
                os.fdatasync(self._fd)
            self._synced = target

    def checkpoint(self) -> None:
        """Write the queue's state to the checkpoint directory, then delete the segments nobody needs."""
        with self._wlock:
            if self._fd >= 0:
                os.fdatasync(self._fd)
            self._synced = self._appended
            with self._lock:
                live = IntervalSet(self._queue.ranges())
                for s, e in self._pending.ranges():
                    live.add(s, e)
                for ranges in self._taken.values():
                    for s, e in ranges:
                        live.add(s, e)
                state = {
                    "version": 1,
                    "channel": self.name,
                    "time": int(time.time() * 1000),
                    "next_seq": self._next_seq,
                    "position": [self._seg, self._seg_size],
                    "ranges": live.ranges(),
                    "records": [[r.first, r.count, r.segment, r.offset, r.length, r.time_ms]
                                for r in self._recs.values()],
                    "segments": sorted(self._segments),
                }
                needed = {r.segment for r in self._recs.values()}
                current = self._seg
                self._dirty = False
        try:
            filelog.write_checkpoint(self.checkpoint_dir, state)
        except OSError:
            self.counter.checkpoint_write_error += 1
            raise
        if self.backup_dir is not None:
            try:
                filelog.write_checkpoint(self.backup_dir, state)
            except OSError as exc:
                self.counter.checkpoint_backup_write_error += 1
                self.log.error("Channel %s: backup checkpoint failed: %s", self.name, exc)
        for number in [n for n in self._segments if n < current and n not in needed]:
            path = self._segments.pop(number)
            fd = self._read_fds.pop(number, -1)
            if fd >= 0:
                os.close(fd)
            try:
                path.unlink()
                self.log.info("Channel %s: deleted drained log segment %s", self.name, path)
            except FileNotFoundError:
                pass

    def _checkpointer(self) -> None:
        while not self._stop.wait(self.checkpoint_interval):
            if not self._dirty:
                continue
            try:
                self.checkpoint()
            except OSError as exc:
                self.counter.unhealthy = True
                self.log.error("Channel %s: checkpoint failed: %s (will retry)", self.name, exc)

    def _syncer(self) -> None:
        while not self._stop.wait(self.fsync_interval):
            try:
                self._sync()
            except OSError as exc:
                self.counter.unhealthy = True
                self.log.error("Channel %s: fsync failed: %s", self.name, exc)

    def _space_available(self) -> bool:
        now = time.monotonic()
        if now - self._space_checked > 1.0:
            self._space_checked = now
            ok = True
            for d in [self.checkpoint_dir, *self.data_dirs]:
                free = self._free_space(d)
                if free < self.min_space:
                    ok = False
                    self._space_message = (f"only {free} bytes free in {d}, below minimumRequiredSpace "
                                           f"({self.min_space}); puts are refused until space is freed")
                    break
            if ok != self._space_ok:
                if ok:
                    self.log.info("Channel %s: disk space is back above minimumRequiredSpace", self.name)
                else:
                    self.log.error("Channel %s: %s", self.name, self._space_message)
            self._space_ok = ok
        return self._space_ok

    # ------------------------------------------------------------------------------------------------------
    # Called by transactions

    def _claim(self, n: int) -> None:
        if not self._open:
            raise ChannelException(f"channel {self.name} is not open")
        if not self._space_available():
            raise ChannelFullException(f"Channel {self.name}: {self._space_message}")
        with self._lock:
            def used() -> int:
                return self._queue.count + self._pending.count + self._inflight_takes + self._claimed_puts

            if used() + n > self.capacity:
                deadline = time.monotonic() + self.keep_alive
                while used() + n > self.capacity:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._open:
                        raise ChannelFullException(
                            f"The channel has reached its capacity. This might be the result of a sink on the "
                            f"channel having too low of batch size, a downstream system running slower than "
                            f"normal, or that the channel capacity is just too low. [channel={self.name}, "
                            f"capacity {self.capacity}]"
                        )
                    self._lock.wait(remaining)
            self._claimed_puts += n

    def _unclaim(self, n: int) -> None:
        with self._lock:
            self._claimed_puts -= n
            self._lock.notify_all()

    def _commit_puts(self, events: list[Event]) -> None:
        n = len(events)
        body, crc = filelog.encode_put_body(events)
        now_ms = int(time.time() * 1000)
        with self._wlock:
            first = self._next_seq
            record = filelog.put_record(first, now_ms, body, crc)
            seg, off = self._append(record)
            self._next_seq = first + n
            ticket = self._appended
            with self._lock:
                self._recs[first] = _Rec(first, n, seg, off, len(record), n, now_ms)
                self._starts.append(first)  # appends happen in sequence order
                self._pending.add(first, first + n)
                self._claimed_puts -= n
        try:
            if self.fsync_per_tx:
                self._sync(ticket)
        finally:
            with self._lock:
                self._pending.remove(first, first + n)
                self._queue.add(first, first + n)
                self._cache[first] = events
                self._cache_events += n
                while self._cache_events > _CACHE_EVENTS and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._cache_events -= len(old)
                self._lock.notify_all()

    def _take_ranges(self, tx_id: int, max_events: int) -> list[tuple[int, int]]:
        if not self._open:
            raise ChannelException(f"channel {self.name} is not open")
        with self._lock:
            ranges = self._queue.pop_head(max_events)
            if ranges:
                n = sum(e - s for s, e in ranges)
                self._inflight_takes += n
                self._taken.setdefault(tx_id, []).extend(ranges)
            return ranges

    def _events_for(self, ranges: list[tuple[int, int]]) -> list[Event]:
        out: list[Event] = []
        for s, e in ranges:
            while s < e:
                with self._lock:
                    if self._starts_dirty:
                        self._starts = sorted(self._recs)
                        self._starts_dirty = False
                    i = bisect_right(self._starts, s) - 1
                    rec = self._recs[self._starts[i]]
                    cached = self._cache.get(rec.first)
                if cached is None:
                    cached = self._read_record(rec)
                    with self._lock:
                        if rec.first in self._recs:
                            self._cache[rec.first] = cached
                            self._cache_events += len(cached)
                end = min(e, rec.first + rec.count)
                out.extend(cached[s - rec.first:end - rec.first])
                s = end
        return out

    def _read_record(self, rec: _Rec) -> list[Event]:
        fd = self._read_fds.get(rec.segment)
        if fd is None:
            fd = os.open(self._segments[rec.segment], os.O_RDONLY)
            self._read_fds[rec.segment] = fd
        data = os.pread(fd, rec.length, rec.offset)
        if len(data) != rec.length:
            raise ChannelException(f"channel {self.name}: log segment {self._segments[rec.segment]} ends before "
                                   f"the record at offset {rec.offset}")
        magic, rtype, plen, crc = HEADER.unpack_from(data, 0)
        payload = data[HEADER.size:]
        if magic != filelog.MAGIC or rtype != PUT or not filelog._check_crc(PUT, payload, crc):
            self.counter.unhealthy = True
            raise ChannelException(f"channel {self.name}: corrupt record at {self._segments[rec.segment]} offset "
                                   f"{rec.offset}")
        return filelog.decode_put(payload)[2]

    def _return_takes(self, tx_id: int) -> None:
        with self._lock:
            ranges = self._taken.pop(tx_id, [])
            for s, e in ranges:
                self._queue.add(s, e)
                self._inflight_takes -= e - s
            self._lock.notify_all()

    def _commit_takes(self, tx_id: int) -> None:
        ranges = self._taken.get(tx_id)
        if not ranges:
            return
        ranges = _merge(ranges)
        record = filelog.take_record(ranges)
        with self._wlock:
            self._append(record)
            ticket = self._appended
            with self._lock:
                self._taken.pop(tx_id, None)
                for s, e in ranges:
                    self._inflight_takes -= e - s
                    self._forget(s, e)
                self._lock.notify_all()
        if self.fsync_per_tx:
            self._sync(ticket)

    def _forget(self, s: int, e: int) -> None:
        """Events [s, e) were taken for good: drop records with nothing left alive (caller holds _lock)."""
        if self._starts_dirty:
            self._starts = sorted(self._recs)
            self._starts_dirty = False
        starts = self._starts
        i = bisect_right(starts, s) - 1
        while s < e and 0 <= i < len(starts):
            rec = self._recs.get(starts[i])
            if rec is None:
                i += 1
                continue
            end = min(e, rec.first + rec.count)
            rec.live -= end - s
            if rec.live <= 0:
                del self._recs[rec.first]
                cached = self._cache.pop(rec.first, None)
                if cached is not None:
                    self._cache_events -= len(cached)
                self._starts_dirty = True
            s = end
            i += 1

    def new_tx_id(self) -> int:
        with self._lock:
            self._tx_ids += 1
            return self._tx_ids


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(ranges):
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


class _FileTransaction(Transaction):
    __slots__ = ("_puts", "_claimed", "_id", "_took")

    def __init__(self, channel: FileChannel):
        super().__init__(channel)
        self._puts: list[Event] = []
        self._claimed = 0
        self._id = channel.new_tx_id()
        self._took = False

    def _put(self, events: Sequence[Event]) -> None:
        ch: FileChannel = self.channel  # type: ignore[assignment]
        ch._claim(len(events))
        self._claimed += len(events)
        self._puts.extend(events)

    def _take(self, max_events: int) -> list[Event]:
        ch: FileChannel = self.channel  # type: ignore[assignment]
        ranges = ch._take_ranges(self._id, max_events)
        if not ranges:
            return []
        self._took = True
        try:
            return ch._events_for(ranges)
        except BaseException:
            ch.counter.take_error += 1
            raise

    def _commit(self) -> None:
        ch: FileChannel = self.channel  # type: ignore[assignment]
        try:
            if self._puts:
                ch._commit_puts(self._puts)
                self._claimed = 0
            if self._took:
                ch._commit_takes(self._id)
        except OSError as exc:
            ch.counter.unhealthy = True
            if self._puts:
                ch.counter.put_error += 1
            raise ChannelException(f"channel {ch.name}: commit failed writing the log: {exc}") from exc
        finally:
            self._puts = []

    def _rollback(self) -> None:
        ch: FileChannel = self.channel  # type: ignore[assignment]
        if self._claimed:
            ch._unclaim(self._claimed)
            self._claimed = 0
        self._puts = []
        if self._took:
            ch._return_takes(self._id)


# ----------------------------------------------------------------------------------------------------------
# Helpers


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _lock_dir(directory: Path, channel: str) -> int:
    path = directory / "in_use.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
        os.close(fd)
        raise ChannelException(
            f"channel {channel}: directory {directory} is in use by another file channel ({holder or 'unknown'}; "
            f"lock file {path}). Two channels must not share directories: give each its own checkpointDir and "
            f"dataDirs"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, channel {channel}\n".encode(), 0)
    return fd


def _refuse_flume_dir(directory: Path) -> None:
    markers = ("checkpoint.meta", "inflightputs", "inflighttakes", "log-1.meta")
    for m in markers:
        if (directory / m).exists():
            raise ChannelException(
                f"{directory} holds an Apache Flume file channel ({m}); pyflume uses its own log format and "
                f"cannot read it. Drain that channel with Flume first, or give pyflume new directories"
            )


def inspect(checkpoint_dir: Path, data_dirs: Sequence[Path], out: Callable[[str], None] = print) -> int:
    """Print queue depth, segments, oldest event age and every record's checksum result; 0 if the log is sound."""
    checkpoint_dir = Path(checkpoint_dir)
    segments: dict[int, Path] = {}
    for d in map(Path, data_dirs):
        if not d.is_dir():
            out(f"data directory {d} does not exist")
            return 1
        for p in d.iterdir():
            n = filelog.segment_number(p.name)
            if n is not None:
                segments[n] = p
    try:
        state = filelog.read_checkpoint(checkpoint_dir)
    except ValueError as exc:
        out(f"checkpoint: {exc}")
        state = None
    live = IntervalSet()
    times: dict[int, tuple[int, int]] = {}
    if state:
        for s, e in state["ranges"]:
            live.add(s, e)
        for first, count, _seg, _off, _len, time_ms in state["records"]:
            times[first] = (count, time_ms)
        age = time.time() - state["time"] / 1000
        out(f"checkpoint: {checkpoint_dir / filelog.CHECKPOINT_NAME}, written {age:.0f} s ago, "
            f"log position segment {state['position'][0]} offset {state['position'][1]}")
        pos_seg, pos_off = state["position"]
    else:
        out("checkpoint: none (the whole log is replayed)")
        pos_seg, pos_off = 0, 0
    damaged = 0
    out(f"{'segment':<40} {'bytes':>12} {'records':>8} {'puts':>8} {'takes':>8}  checksums")
    for number, path in sorted(segments.items()):
        records = puts = takes = 0
        problems = []
        for item in filelog.scan_segment(path, number, 0):
            if isinstance(item, Damage):
                problems.append(str(item))
                continue
            records += 1
            after = (number, item.offset) >= (pos_seg, pos_off)
            if item.rtype == PUT:
                puts += 1
                if after:
                    first, time_ms = filelog.PUT_PREFIX.unpack_from(item.payload, 0)
                    (count,) = filelog._U32.unpack_from(item.payload, 16)
                    if first not in times:
                        times[first] = (count, time_ms)
                        live.add(first, first + count)
            else:
                takes += 1
                if after:
                    for s, e in filelog.decode_take(item.payload):
                        live.remove(s, e)
        damaged += len(problems)
        out(f"{str(path):<40} {path.stat().st_size:>12} {records:>8} {puts:>8} {takes:>8}  "
            f"{'ok' if not problems else 'DAMAGED'}")
        for p in problems:
            out(f"  {p}")
    oldest = None
    for first, (count, time_ms) in sorted(times.items()):
        if live.count_in(first, first + count):
            oldest = time_ms
            break
    out(f"queue depth: {live.count} events")
    if oldest is not None:
        out(f"oldest queued event committed {time.time() - oldest / 1000:.1f} s ago")
    out("checksums: every record verified" if not damaged else f"checksums: {damaged} damaged stretches (see above)")
    return 1 if damaged else 0

