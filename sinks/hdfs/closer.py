"""Finishing the hdfs sink's files off the sink thread.

A rolled file, sealed by the sink thread (its last bytes durable), is closed and renamed by one of
``hdfs.threadsPoolSize`` closer threads, so completing a file on the namenode never stalls the batches. A close or
rename that fails is retried (every ``hdfs.retryInterval`` s, at most ``hdfs.closeTries`` times); a file a failed
pipeline or a dead writer left open has its lease recovered; in-use files a crash left behind are renamed (or, for
Parquet, converted) the first time the sink writes in their directory again.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING

from sinks.hdfs.parquet import parquet_from_staging

if TYPE_CHECKING:
    from sinks.hdfs.bucket import BucketWriter
    from sinks.hdfs.sink import HDFSEventSink

__all__ = ["FileCloser"]

#: A file a failed write left open is renamed, with its lease recovered, only once the cluster has settled (see
#: FileCloser.abandon): at least _SETTLE_S after the failure, and _REPORT_S after the sink's first successful write
#: since then (the datanodes are back; their block reports follow within seconds), or _SETTLE_MAX_S after the
#: failure when no write shows the cluster back (an idle sink).
_SETTLE_S = 10
_REPORT_S = 5
_SETTLE_MAX_S = 60


class FileCloser:
    """Closes, renames and recovers the files of one hdfs sink.

    The sink thread hands each sealed writer to ``submit``; ``start`` runs the closer threads that finish them.
    ``retry_renames`` and ``retry_lease_recovery`` are called by the sink after each batch and by its roll timer.
    Every method may be called from any of those threads.
    """

    def __init__(self, sink: HDFSEventSink):
        self.sink = sink
        self._lock = threading.Lock()  # guards _pending_renames, _closing and _lease_recovery
        self._pending_renames: list[tuple[str, str | None, int, float]] = []  # src, dst (None: delete), tries, due
        self._closing: set[str] = set()  # in-use paths handed to the closers, not renamed yet
        # files a failed pipeline or a dead writer left open, whose lease recovery has not finished: path -> next try
        self._lease_recovery: dict[str, float] = {}
        # files a failed write left open, waiting for the cluster to settle: (in-use path, final path, failed at)
        self._abandoned: list[tuple[str, str, float]] = []
        self._write_ok_at: float | None = None  # the first successful write since the last failure
        self._queue: queue.Queue[BucketWriter | None] | None = None
        self._threads: list[threading.Thread] = []

    # Closer threads -------------------------------------------------------------------------------------------
    def start(self, threads: int) -> None:
        # bounded: when files roll faster than they close, the sink waits instead of piling up open files
        self._queue = queue.Queue(maxsize=4 * threads)
        self._threads = [threading.Thread(target=self._run, name=f"{self.sink.name}-closer-{i}", daemon=True)
                         for i in range(threads)]
        for t in self._threads:
            t.start()

    def stop(self, wait: float) -> None:
        """Let the closers finish what they were given (at most ``wait`` seconds), then try pending renames once."""
        sink = self.sink
        q, self._queue = self._queue, None
        if q is not None:
            for _ in self._threads:
                q.put(None)
            deadline = time.monotonic() + wait
            for t in self._threads:
                t.join(max(deadline - time.monotonic(), 0))
            with self._lock:
                left = sorted(self._closing)
            if left:
                sink.log.warning("HDFS sink %s: stopped while %d files were still closing (%s); their data is "
                                 "durable and the next start renames them", sink.name, len(left), ", ".join(left))
            self._threads = []
        self.retry_renames(force=True)

    def submit(self, w: BucketWriter) -> None:
        """Close and rename a sealed file: on a closer thread, or here when the closers are not running."""
        q = self._queue
        with self._lock:
            self._closing.add(w.in_use_path)
        if q is None:  # not started (or stopping): close here
            self._finish(w)
        else:
            q.put(w)

    def _run(self) -> None:
        q = self._queue
        assert q is not None
        while True:
            w = q.get()
            if w is None:
                return
            self._finish(w)

    def _finish(self, w: BucketWriter) -> None:
        sink = self.sink
        try:
            w.finish()
        except Exception as exc:  # noqa: BLE001 - the data is durable; only the rename is missing: retry it later
            sink.log.warning("HDFS sink %s: closing %s failed (%s); will retry every %d s", sink.name, w.path, exc,
                             sink.retry_interval)
            with self._lock:
                self._pending_renames.append((w.in_use_path, w.path, 1, time.monotonic() + sink.retry_interval))
        with self._lock:
            self._closing.discard(w.in_use_path)
        sink.counter.add(connection_closed=1)

    # Failed files and renames ---------------------------------------------------------------------------------
    def abandon(self, w: BucketWriter) -> None:
        """A write to ``w`` failed (the sink no longer uses it): close it as far as possible and finish it later."""
        sink = self.sink
        try:
            sink.fs.close(w.in_use_path)
        except Exception:  # noqa: BLE001 - best effort; the rename below decides
            pass
        sink.counter.add(connection_failed=1)
        # A file none of whose batches was ever acknowledged holds no event: it is deleted rather than kept (after
        # a datanode restart its never-synced block may not even be recoverable, which makes it unreadable). Any
        # other file is renamed, with its lease recovered, once the cluster has settled (_settled): a recovery asked
        # before the restarted datanodes reported the replica finds no replica ("No blocks found, lease removed"),
        # and the namenode then refuses further attempts until that one times out (about 90 s), leaving the file
        # unreadable as long. A fixed 10 s was not enough on a loaded machine (1 restart test in 20 failed so).
        if w.durable_events:
            with self._lock:
                self._abandoned.append((w.in_use_path, w.path, time.monotonic()))
                self._write_ok_at = None
            return
        with self._lock:
            self._pending_renames.append((w.in_use_path, None, 0, time.monotonic()))
        self.retry_renames()

    def note_write_ok(self) -> None:
        """A batch was written and synced: the cluster answers again (called by the sink after each batch)."""
        if self._write_ok_at is None:
            self._write_ok_at = time.monotonic()

    def _settled(self, now: float, force: bool) -> None:
        """Move the abandoned files whose cluster has settled to the pending renames (due now)."""
        ok_at = self._write_ok_at
        with self._lock:
            keep = []
            for src, dst, failed_at in self._abandoned:
                if force or now >= failed_at + _SETTLE_MAX_S or (
                        now >= failed_at + _SETTLE_S and ok_at is not None and now >= ok_at + _REPORT_S):
                    self._pending_renames.append((src, dst, 0, now))
                else:
                    keep.append((src, dst, failed_at))
            self._abandoned = keep

    @property
    def renames_pending(self) -> bool:
        return bool(self._pending_renames or self._abandoned)

    def retry_renames(self, force: bool = False) -> None:
        """Rename (or, when ``dst`` is None, delete) files that could not be finished when they were closed or
        abandoned; a failed attempt is retried after 1, 2, 4 ... s, at most hdfs.retryInterval apart."""
        sink = self.sink
        now = time.monotonic()
        if self._abandoned:
            self._settled(now, force)
        keep = []
        with self._lock:
            pending, self._pending_renames = self._pending_renames, []
        for src, dst, tries, due in pending:
            if due > now and not force:
                keep.append((src, dst, tries, due))
                continue
            try:
                if dst is None:
                    if sink.fs.exists(src):
                        sink.fs.delete(src)
                        sink.log.info("HDFS sink %s: deleted %s, which held no committed event", sink.name, src)
                elif sink.fs.exists(src):
                    self._rename_closing(src, dst)  # a broken pipeline may have left it open
                    sink.log.info("HDFS sink %s: renamed %s to %s", sink.name, src, dst)
            except Exception as exc:  # noqa: BLE001
                if sink.close_tries and tries + 1 >= sink.close_tries:
                    sink.log.error("HDFS sink %s: giving up renaming %s after %d tries: %s", sink.name, src,
                                   tries + 1, exc)
                else:
                    keep.append((src, dst, tries + 1, now + min(sink.retry_interval, 2 ** tries)))
        with self._lock:
            self._pending_renames.extend(keep)

    def _rename_closing(self, src: str, dst: str) -> None:
        """Rename a file another writer may still hold open, after asking the namenode to close it where it ends
        (lease recovery). Block recovery can only finish once the datanodes have reported the replica (after a
        restart, their first block report), so until the file is closed the timer asks again every few seconds."""
        fs = self.sink.fs
        closed = fs.recover_lease(src)
        fs.rename(src, dst)
        if not closed:
            with self._lock:
                self._lease_recovery[dst] = time.monotonic() + 2

    def retry_lease_recovery(self) -> None:
        if not self._lease_recovery:
            return
        sink = self.sink
        now = time.monotonic()
        with self._lock:
            due = [path for path, at in self._lease_recovery.items() if at <= now]
        for path in due:
            closed = sink.fs.recover_lease(path)
            with self._lock:
                if closed:
                    self._lease_recovery.pop(path, None)
                else:
                    self._lease_recovery[path] = now + 5
            if closed:
                sink.log.info("HDFS sink %s: %s is closed (its lease was recovered)", sink.name, path)

    # Files left by an earlier run -----------------------------------------------------------------------------
    def recover(self, directory: str, prefix: str, open_paths: set[str]) -> None:
        """Finish the in-use files of this sink's bucket (``prefix``) in ``directory`` that no writer holds (none of
        ``open_paths``, none being closed): a crash left them behind."""
        sink = self.sink
        head, tail = sink.in_use_prefix + prefix + ".", sink.in_use_suffix
        if not head and not tail:
            return
        with self._lock:
            open_paths = open_paths | self._closing
        try:
            names = sink.fs.list(directory)
        except Exception as exc:  # noqa: BLE001
            sink.log.warning("HDFS sink %s: cannot list %s to recover in-use files: %s", sink.name, directory, exc)
            return
        for name in names:
            if not (name.startswith(head) and name.endswith(tail)) or (tail == "" and not sink.in_use_prefix):
                continue
            src = f"{directory}/{name}"
            if src in open_paths:
                continue
            final = name[len(sink.in_use_prefix):len(name) - len(tail) if tail else None]
            dst = f"{directory}/{final}"
            try:
                if sink.file_type == "Parquet":
                    self.finish_parquet(src, dst)
                    sink.log.warning("HDFS sink %s: recovered %s left in use by an earlier run: converted to %s",
                                     sink.name, src, dst)
                    continue
                self._rename_closing(src, dst)  # a writer that died holds it open
                sink.log.warning("HDFS sink %s: recovered %s left in use by an earlier run: renamed to %s",
                                 sink.name, src, dst)
            except Exception as exc:  # noqa: BLE001
                sink.log.warning("HDFS sink %s: could not recover %s: %s", sink.name, src, exc)

    def finish_parquet(self, staging: str, final: str) -> None:
        """Write the Parquet file from a staging log, then delete the log (idempotent after a crash)."""
        sink = self.sink
        fs = sink.fs
        if not fs.exists(final):
            if not fs.recover_lease(staging, wait=sink.call_timeout):  # a dead writer's file reads short
                raise OSError(f"{staging} is still open by an earlier writer (lease recovery not finished)")
            data, torn = parquet_from_staging(fs.read(staging), sink.parquet_compression)
            if torn:
                # only a batch whose append never returned can be torn, and that batch was rolled back
                sink.log.warning("HDFS sink %s: %s ends with %d bytes of an unfinished batch; left out", sink.name,
                                 staging, torn)
            fs.create(final, data)
            fs.close(final)
        fs.delete(staging)
