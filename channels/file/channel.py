"""The file channel itself: configuration, lifecycle, checkpoints, and the queue its transactions work on.

Committed events are durable in the log (``channels.file.segments``) before ``commit()`` returns; the queue of
their sequence numbers lives in memory and is checkpointed every ``checkpointInterval``. See the package docstring
for the whole design.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.core import Channel, ChannelException, ChannelFullException, Event, Transaction
from agent.keystores import StoreError
from agent.metrics import ChannelCounter
from agent.spec import Conf, Prop, Spec
from channels.file import records
from channels.file.checkpoint import checkpoint_state, write_checkpoint
from channels.file.directories import free_bytes, lock_dir, refuse_flume_dir
from channels.file.encryption import ENCRYPTION_PROPS, KeyProblem, cipher_from_config, load_cipher, record_key
from channels.file.index import RecordIndex, RecordRef
from channels.file.intervals import IntervalSet
from channels.file.records import Damage
from channels.file.replay import load_checkpoint, replay
from channels.file.segments import SegmentLog
from channels.file.transaction import FileTransaction

__all__ = ["FileChannel", "FileChannelCounter"]

_HOME = Path("~/.flume/file-channel").expanduser()
_MAX_FILE = 2146435071


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
        *ENCRYPTION_PROPS,
    )

    def __init__(self, name: str, conf: Conf, *, free_space: Callable[[Path], int] | None = None):
        super().__init__(name, conf)
        cfg = self.config
        self.counter = FileChannelCounter()
        self.capacity = cfg.capacity
        self.transaction_capacity = cfg.transaction_capacity
        if self.transaction_capacity > self.capacity:
            conf.error(f"transactionCapacity ({self.transaction_capacity}) must not exceed capacity "
                       f"({self.capacity})", "transactionCapacity")
        self.checkpoint_dir = Path(cfg.checkpoint_dir).expanduser()
        self.data_dirs = [Path(d).expanduser() for d in cfg.data_dirs]
        self.backup_dir: Path | None = None
        self._check_directories(conf)
        self._cipher, self._key_store_later = cipher_from_config(conf)
        self.min_space = max(cfg.minimum_required_space, 1 << 20)  # Flume's floor: 1 MiB
        self.keep_alive = float(cfg.keep_alive)
        self._free_space = free_space or free_bytes
        self._reset_state()

    def _check_directories(self, conf: Conf) -> None:
        cfg = self.config
        if not self.data_dirs:
            conf.error("at least one data directory is needed", "dataDirs")
        if cfg.use_dual_checkpoints:
            if not cfg.backup_checkpoint_dir:
                conf.error("useDualCheckpoints is true but backupCheckpointDir is not set", "backupCheckpointDir")
            else:
                self.backup_dir = Path(cfg.backup_checkpoint_dir).expanduser()
                if self.backup_dir.resolve() == self.checkpoint_dir.resolve():
                    conf.error("backupCheckpointDir must differ from checkpointDir", "backupCheckpointDir")
        for d in self.data_dirs:
            if d.resolve() == self.checkpoint_dir.resolve():
                conf.error(f"data directory {d} is also the checkpoint directory; give each its own", "dataDirs")

    def _reset_state(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._wal = SegmentLog(self.data_dirs, self.config.max_file_size)
        self._queue = IntervalSet()  # committed, durable, not taken
        self._pending = IntervalSet()  # appended, waiting for their fsync
        self._taken: dict[int, list[tuple[int, int]]] = {}  # open transactions' takes
        self._inflight_takes = 0
        self._claimed_puts = 0
        self._next_seq = 1
        self._index = RecordIndex()
        self._checkpointed = 0  # the log's append count when the last checkpoint was taken
        self._space_checked = 0.0
        self._space_ok = True
        self._space_message = ""
        self._locks: list[int] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tx_ids = 0
        self._open = False

    # ------------------------------------------------------------------------------------------------------
    # Lifecycle

    def start(self) -> None:
        self._reset_state()
        dirs = [self.checkpoint_dir, *self.data_dirs] + ([self.backup_dir] if self.backup_dir else [])
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
            refuse_flume_dir(d)
        try:
            for d in dict.fromkeys(dirs):
                self._locks.append(lock_dir(d, self.name))
            t0 = time.monotonic()
            self._load_keys()
            replayed = self._replay()
            self._wal.open_for_append()
        except BaseException:
            self._release_locks()
            raise
        self._open = True
        self.counter.set(closed=False)
        self.counter.started()
        self._threads = [threading.Thread(target=self._checkpointer, name=f"{self.name}-checkpoint", daemon=True)]
        if not self.config.fsync_per_transaction:
            self._threads.append(threading.Thread(target=self._syncer, name=f"{self.name}-fsync", daemon=True))
        for t in self._threads:
            t.start()
        self.log.info("Channel %s started: %d events queued (%d log records replayed in %.2f s), %d segments in %s",
                      self.name, len(self._queue), replayed, time.monotonic() - t0, len(self._wal.segments),
                      ", ".join(map(str, self.data_dirs)))

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
        if self._open:
            try:
                if self.config.checkpoint_on_close:
                    self.checkpoint()
                else:
                    self._wal.sync()
            except OSError as exc:
                self.log.error("Channel %s: final checkpoint failed: %s", self.name, exc)
            with self._lock:
                self._open = False
                self._lock.notify_all()
            self._wal.close()
        self._release_locks()
        self.counter.set(closed=True)
        self.counter.stopped()
        self.log.info("Channel %s stopped with %d events queued", self.name, len(self._queue))

    def _release_locks(self) -> None:
        for fd in self._locks:
            os.close(fd)
        self._locks = []

    def transaction(self) -> Transaction:
        return FileTransaction(self)

    def size(self) -> int:
        return self._queue.count

    def _replay(self) -> int:
        segments = self._wal.load()
        checkpoints = [self.checkpoint_dir] + ([self.backup_dir] if self.backup_dir else [])
        state, replayed = replay(segments, load_checkpoint(checkpoints, self.name, self.log), self.name, self.log,
                                 self._on_damage)
        self._queue = state.live
        self._next_seq = state.next_seq
        self._index = RecordIndex(state.recs)
        self._check_record_keys()
        return replayed

    def _load_keys(self) -> None:
        """The encryption keys, when the key store could not be read at configuration time."""
        if self._key_store_later is None:
            return
        cfg = self.config
        files = {k.rpartition(".")[0]: v for k, v in cfg.encryption_key_provider_keys_options.items()
                 if k.endswith(".passwordFile")}
        try:
            self._cipher = load_cipher(self._key_store_later, cfg.encryption_key_provider_key_store_password_file,
                                       cfg.encryption_active_key, cfg.encryption_key_provider_keys, files)
        except StoreError as exc:
            raise ChannelException(f"channel {self.name}: {getattr(exc, 'prop', 'encryption')}: {exc}") from None

    def _check_record_keys(self) -> None:
        """Refuse to start when a queued event's record cannot be decrypted: its key is not listed any more, or the
        key store holds another key under its alias. Nothing is skipped: the queue stays on disk until the key is
        given back."""
        problems: dict[tuple[str, int], int] = {}
        for rec in self._index.recs.values():
            head = self._wal.read(rec.segment, rec.offset, min(rec.length, 320))
            if len(head) <= records.HEADER.size or head[4] != records.EPUT:
                continue
            payload = memoryview(head)[records.HEADER.size:]
            try:
                if self._cipher is None:
                    raise KeyProblem(f"it is encrypted with key '{record_key(payload)}' and the channel has no "
                                     "encryption settings")
                self._cipher.check(payload)
            except KeyProblem as exc:
                problems[(str(exc), rec.segment)] = problems.get((str(exc), rec.segment), 0) + rec.live
        if problems:
            lines = [f"{n} queued events in {self._wal.segments[seg]}: {why}" for (why, seg), n in problems.items()]
            raise ChannelException(f"channel {self.name} cannot replay its log: " + "; ".join(lines)
                                   + ". Nothing was skipped: give the key back (encryption.keyProvider.keys and its "
                                   "passwordFile) and start again.")

    def _on_damage(self, damage: Damage) -> None:
        self.counter.set(unhealthy=True)
        if damage.torn:
            self.log.warning("Channel %s: %s; truncating the segment there (a commit interrupted by a crash never "
                             "returned, so nothing acknowledged is lost)", self.name, damage)
            with open(damage.path, "r+b") as f:
                f.truncate(damage.offset)
                os.fsync(f.fileno())
        else:
            self.log.error("Channel %s: %s; skipped, the records after it are replayed", self.name, damage)

    # ------------------------------------------------------------------------------------------------------
    # Checkpoint, background fsync, disk space

    def checkpoint(self) -> None:
        """Write the queue's state to the checkpoint directory, then delete the segments nobody needs."""
        wal = self._wal
        with wal.lock:
            wal.sync_locked(force=True)
            with self._lock:
                live = IntervalSet(self._queue.ranges())
                for ranges in [self._pending.ranges(), *self._taken.values()]:
                    for s, e in ranges:
                        live.add(s, e)
                state = checkpoint_state(self.name, self._next_seq, (wal.current, wal.size), live.ranges(),
                                         self._index.snapshot(), sorted(wal.segments))
                needed = self._index.segments_needed()
                current = wal.current
                self._checkpointed = wal.appended
        self._write_checkpoint(state)
        drained = [n for n in wal.segments if n < current and n not in needed]
        for path in wal.delete(drained):
            self.log.info("Channel %s: deleted drained log segment %s", self.name, path)

    def _write_checkpoint(self, state: dict) -> None:
        try:
            write_checkpoint(self.checkpoint_dir, state)
        except OSError:
            self.counter.add(checkpoint_write_error=1)
            raise
        if self.backup_dir is not None:
            try:
                write_checkpoint(self.backup_dir, state)
            except OSError as exc:
                self.counter.add(checkpoint_backup_write_error=1)
                self.log.error("Channel %s: backup checkpoint failed: %s", self.name, exc)

    def _checkpointer(self) -> None:
        while not self._stop.wait(self.config.checkpoint_interval / 1000.0):
            if self._wal.appended == self._checkpointed:
                continue
            try:
                self.checkpoint()
            except OSError as exc:
                self.counter.set(unhealthy=True)
                self.log.error("Channel %s: checkpoint failed: %s (will retry)", self.name, exc)

    def _syncer(self) -> None:
        while not self._stop.wait(float(self.config.fsync_interval)):
            try:
                self._wal.sync()
            except OSError as exc:
                self.counter.set(unhealthy=True)
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
        cipher = self._cipher
        body, crc = records.encode_put_body(events, cipher.seal if cipher is not None else None)
        now_ms = int(time.time() * 1000)
        wal = self._wal
        with wal.lock:
            first = self._next_seq
            record = records.put_record(first, now_ms, body, crc, records.EPUT if cipher is not None else records.PUT)
            seg, off = wal.append(record)
            self._next_seq = first + n
            ticket = wal.appended
            with self._lock:
                self._index.add(RecordRef(first, n, seg, off, len(record), n, now_ms))
                self._pending.add(first, first + n)
                self._claimed_puts -= n
        try:
            if self.config.fsync_per_transaction:
                wal.sync(ticket)
        finally:
            with self._lock:
                self._pending.remove(first, first + n)
                self._queue.add(first, first + n)
                self._index.cache_committed(first, events)
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
        index = self._index
        for s, e in ranges:
            while s < e:
                with self._lock:
                    rec, cached = index.locate(s)
                if cached is None:
                    cached = self._read_record(rec)
                    with self._lock:
                        index.cache_read(rec, cached)
                end = min(e, rec.first + rec.count)
                out.extend(cached[s - rec.first:end - rec.first])
                s = end
        return out

    def _read_record(self, rec: RecordRef) -> list[Event]:
        data = self._wal.read(rec.segment, rec.offset, rec.length)
        if len(data) != rec.length:
            raise ChannelException(f"channel {self.name}: log segment {self._wal.segments[rec.segment]} ends before "
                                   f"the record at offset {rec.offset}")
        try:
            events = records.read_put(data, self._cipher)
        except (KeyProblem, ValueError) as exc:
            self.counter.set(unhealthy=True)
            raise ChannelException(f"channel {self.name}: record at {self._wal.segments[rec.segment]} offset "
                                   f"{rec.offset} cannot be decrypted: {exc}") from None
        if events is None:
            self.counter.set(unhealthy=True)
            raise ChannelException(f"channel {self.name}: corrupt record at {self._wal.segments[rec.segment]} offset "
                                   f"{rec.offset}")
        return events

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
        record = records.take_record(ranges)
        wal = self._wal
        with wal.lock:
            wal.append(record)
            ticket = wal.appended
            with self._lock:
                self._taken.pop(tx_id, None)
                for s, e in ranges:
                    self._inflight_takes -= e - s
                    self._index.forget(s, e)
                self._lock.notify_all()
        if self.config.fsync_per_transaction:
            wal.sync(ticket)

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
