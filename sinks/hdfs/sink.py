"""The hdfs sink: events into files on HDFS (over its RPC, or WebHDFS) or a local file system, bucketed by path
escapes.

Each batch is grouped by its resolved path (``hdfs.path`` + ``hdfs.filePrefix`` after escapes); each group is
appended to that bucket's open file with one call, and the transaction commits only after every touched file
has the batch durably (hsynced down the HDFS block pipeline, a WebHDFS APPEND completed, or a local write
fdatasynced). Files are written under their
in-use name (``inUsePrefix + name + inUseSuffix``) and renamed when they roll: on ``rollInterval``, ``rollSize``
(body bytes), ``rollCount``, ``idleTimeout``, when more than ``maxOpenFiles`` are open, and at stop. A rolled file
is sealed (its last bytes durable) by the sink thread, then closed and renamed by one of ``hdfs.threadsPoolSize``
closer threads, so completing a file on the namenode never stalls the batches. In-use files that a crash left
behind are renamed the first time the sink writes in their directory again (``hdfs.recoverInUseFiles``), so no
``.tmp`` is stranded.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict

from agent import kerberos, registry
from agent.core import Batch, BatchSink, Event, EventDeliveryException, bodies_of
from agent.spec import Conf, ConfigError, Prop, Spec
from sinks.escapes import EscapeError, PathTemplate
from sinks.hdfs.bucket import BucketWriter
from sinks.hdfs.closer import FileCloser
from sinks.hdfs.codecs import Codec, codec_for
from sinks.hdfs.fs import file_system_for
from sinks.hdfs.parquet import PARQUET_CODECS
from sinks.serializers import EventSerializer

__all__ = ["HDFSEventSink"]

_FILE_TYPES = {
    "SequenceFile": "Hadoop SequenceFile of (LongWritable timestamp, BytesWritable or Text body) records.",
    "DataStream": "The serializer's output as is (text lines by default).",
    "CompressedStream": "The serializer's output compressed with hdfs.codeC, one compressed member per batch.",
    "Parquet": "pyflume: Apache Parquet (columns headers map<string,string> and body binary), compressed with "
               "hdfs.codeC (snappy by default; gzip, zstandard, lz4). The file is written when it rolls; until "
               "then every batch is durable in the in-use file, a staging log, which a restart converts.",
}


class HDFSEventSink(BatchSink):
    """Writes events to files in HDFS or a local file system, rolled by time, size, count or idleness."""

    accepts_batch = True  # a Batch stays columns down to a text serializer (bucket.BucketWriter.append)

    alias = "hdfs"
    flume_class = "org.apache.flume.sink.hdfs.HDFSEventSink"
    batch_size_prop = "hdfs.batchSize"
    spec = Spec(
        Prop("hdfs.path", "str", required=True,
             doc="Directory to write to, with escapes: hdfs://namenode/path, webhdfs://host:port/path, "
                 "file:///path or a local path."),
        Prop("hdfs.filePrefix", "str", "FlumeData", "Start of each file name (escapes allowed)."),
        Prop("hdfs.fileSuffix", "str", "", "End of each file name (no dot is added); replaces the codec's."),
        Prop("hdfs.inUsePrefix", "str", "", "Prefix of a file's name while it is written."),
        Prop("hdfs.inUseSuffix", "str", ".tmp", "Suffix of a file's name while it is written."),
        Prop("hdfs.emptyInUseSuffix", "bool", False, "Use no in-use suffix (hdfs.inUseSuffix is then ignored)."),
        Prop("hdfs.rollInterval", "int", 30, "Seconds before a file is rolled (0: never by time).", min=0),
        Prop("hdfs.rollSize", "int", 1024, "Body bytes that trigger a roll (0: never by size).", min=0),
        Prop("hdfs.rollCount", "int", 10, "Events that trigger a roll (0: never by count).", min=0),
        Prop("hdfs.idleTimeout", "int", 0, "Seconds without writes after which a file is closed (0: never).", min=0),
        Prop("hdfs.batchSize", "int", 100, "Events per transaction; every touched file is flushed at commit.", min=1),
        Prop("hdfs.codeC", "str", None,
             "Compression codec: gzip, bzip2, snappy, lz4, zstandard, default (or Hadoop class names).",
             attr="hdfs_codec"),
        Prop("hdfs.fileType", "enum", "SequenceFile", "File format.", choices=_FILE_TYPES),
        Prop("hdfs.maxOpenFiles", "int", 5000, "Most files open at once; the least recently used is closed.", min=1),
        Prop("hdfs.minBlockReplicas", "int", None, "Accepted; the sink does not watch the replication of the block "
             "being written (the HDFS client replaces failed datanodes itself), so it does not trigger a roll.",
             min=1),
        Prop("hdfs.writeFormat", "enum", "Writable", "SequenceFile value type.",
             choices={"Writable": "BytesWritable", "Text": "Text"}),
        Prop("hdfs.sequenceFileCompression", "enum", "BLOCK",
             "pyflume: how hdfs.codeC compresses a SequenceFile (Flume always uses BLOCK).",
             choices={"BLOCK": "one compressed block per batch", "RECORD": "each value compressed"}),
        Prop("hdfs.callTimeout", "int", 30000, "Milliseconds an HDFS call may take; a call that outlives it fails "
             "its batch (over RPC the client is then replaced).", min=1),
        Prop("hdfs.threadsPoolSize", "int", 10, "Threads that close and rename rolled files in the background "
             "(appends are made by the sink thread, one call per file and batch).", min=1),
        Prop("hdfs.rollTimerPoolSize", "int", 1, "Accepted for compatibility (one timer thread).", min=1),
        Prop("hdfs.kerberosPrincipal", "str", None, "Kerberos principal to log in as (name/_HOST@REALM: _HOST "
             "becomes this host's name); needs hdfs.kerberosKeytab. One principal per agent, as in Flume."),
        Prop("hdfs.kerberosKeytab", "str", None, "Keytab file holding the key of hdfs.kerberosPrincipal; checked "
             "at --check."),
        Prop("hdfs.proxyUser", "str", None, "User to write as (default: HADOOP_USER_NAME, else the OS user); with "
             "Kerberos, the user the principal impersonates (hadoop.proxyuser.* on the namenode). Over RPC one "
             "agent has one user, shared by its hdfs sinks."),
        Prop("hdfs.round", "bool", False, "Round the event timestamp down before the time escapes."),
        Prop("hdfs.roundValue", "int", 1, "Round down to a multiple of this many roundUnits.", min=1),
        Prop("hdfs.roundUnit", "enum", "second", "Unit of rounding.",
             choices={"second": "", "minute": "", "hour": ""}),
        Prop("hdfs.timeZone", "str", None, "Time zone of the escapes (IANA name; default: the machine's)."),
        Prop("hdfs.useLocalTimeStamp", "bool", False, "Use the agent's clock instead of the timestamp header."),
        Prop("hdfs.closeTries", "int", 0, "Rename attempts for a file that fails to close (0: until it works).",
             min=0),
        Prop("hdfs.retryInterval", "int", 180, "Seconds between close attempts.", min=0),
        Prop("hdfs.useRawLocalFileSystem", "bool", False, "Accepted for compatibility."),
        Prop("hdfs.transport", "enum", "rpc", "pyflume: how hdfs:// paths are reached.",
             choices={"rpc": "HDFS's own RPC and data transfer protocols (hdfs-native, no JVM): files stay open, "
                             "each batch is hsynced; HA and fs.defaultFS from HADOOP_CONF_DIR",
                      "webhdfs": "the namenode's WebHDFS REST API: one APPEND call per batch and file"}),
        Prop("hdfs.webhdfs.address", "list", [],
             "pyflume: namenode HTTP address(es) host:port for hdfs:// paths with hdfs.transport = webhdfs, several "
             "for HA (default: from HADOOP_CONF_DIR, else the path's host on port 9870).", sep=","),
        Prop("hdfs.recoverInUseFiles", "bool", True,
             "pyflume: rename in-use files with this sink's prefix left by a crash, when the sink next writes in "
             "their directory. Turn off if several agents share a directory and a file prefix."),
        Prop("serializer", "class", "TEXT", "Serializer for DataStream and CompressedStream: text, "
             "header_and_text, avro_event, or a class."),
        Prop("serializer.", prefix=True, doc="Options of the serializer."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self._file_names(conf)
        self.roll_interval: int = c.hdfs_roll_interval
        self.roll_size: int = c.hdfs_roll_size
        self.roll_count: int = c.hdfs_roll_count
        self.idle_timeout: int = c.hdfs_idle_timeout
        self.max_open: int = c.hdfs_max_open_files
        self.file_type: str = c.hdfs_file_type
        self.write_format: str = c.hdfs_write_format
        self.close_tries: int = c.hdfs_close_tries
        self.retry_interval: int = c.hdfs_retry_interval
        self.recover: bool = c.hdfs_recover_in_use_files
        self.close_threads: int = c.hdfs_threads_pool_size
        self.call_timeout: float = c.hdfs_call_timeout / 1000
        self._file_format(conf)
        self._file_system(conf)
        self._serializer(conf)
        self._writers: OrderedDict[tuple[str, str], BucketWriter] = OrderedDict()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._recovered_dirs: set[str] = set()
        self._counters: dict[tuple[str, str], int] = {}
        self.closer = FileCloser(self)

    def _file_names(self, conf: Conf) -> None:
        c = self.config
        self.path_text: str = c.hdfs_path or ""
        self.prefix_text: str = c.hdfs_file_prefix
        self.suffix: str = c.hdfs_file_suffix
        self.in_use_prefix: str = c.hdfs_in_use_prefix
        self.in_use_suffix: str = "" if c.hdfs_empty_in_use_suffix else c.hdfs_in_use_suffix
        if c.hdfs_empty_in_use_suffix and conf.is_set("hdfs.inUseSuffix"):
            conf.warn("hdfs.inUseSuffix is ignored because hdfs.emptyInUseSuffix is true", "hdfs.inUseSuffix")

    def _file_format(self, conf: Conf) -> None:
        """The codec and the compression of the file type, checked against each other."""
        c = self.config
        self.codec: Codec | None = None
        if c.hdfs_codec and self.file_type != "Parquet":
            try:
                self.codec = codec_for(c.hdfs_codec)
            except ValueError as exc:
                conf.error(str(exc), "hdfs.codeC")
        self.parquet_compression = "snappy"
        if self.file_type == "Parquet":
            text = (c.hdfs_codec or "snappy").rsplit(".", 1)[-1].lower()
            self.codec = None  # Parquet compresses its pages itself
            if text not in PARQUET_CODECS:
                conf.error(f"Parquet cannot use codec '{c.hdfs_codec}'; use snappy, gzip, zstandard, lz4 or "
                           f"none", "hdfs.codeC")
            self.parquet_compression = PARQUET_CODECS.get(text, "snappy")
            if not self.suffix:
                self.suffix = ".parquet"
            if not self.in_use_prefix and not self.in_use_suffix:
                conf.error("fileType Parquet stages each file under its in-use name; set hdfs.inUseSuffix or "
                           "hdfs.inUsePrefix (emptyInUseSuffix needs an inUsePrefix)", "hdfs.fileType")
        if self.file_type == "DataStream" and self.codec is not None:
            conf.error("hdfs.codeC cannot be used with fileType DataStream; use CompressedStream", "hdfs.codeC")
        if self.file_type == "CompressedStream" and self.codec is None and not c.hdfs_codec:
            conf.error("fileType CompressedStream needs hdfs.codeC (gzip, bzip2, snappy, lz4, zstandard, default)",
                       "hdfs.fileType")
        self.seq_compression = c.hdfs_sequence_file_compression if self.codec is not None else None

    def _file_system(self, conf: Conf) -> None:
        """The file system of hdfs.path, and the path and file prefix as templates (escapes, rounding, zone)."""
        c = self.config
        self.kerberos = kerberos.identity(conf, "hdfs.kerberosPrincipal", "hdfs.kerberosKeytab")
        self.kerberos_identities = [self.kerberos] if self.kerberos else []  # one principal per agent (config)
        if self.kerberos and not self.path_text.startswith(("hdfs:", "webhdfs:", "http:")):
            conf.warn("Kerberos is used only for HDFS paths; it is ignored for this local path",
                      "hdfs.kerberosPrincipal")
        round_unit = c.hdfs_round_unit if c.hdfs_round else None
        round_value = c.hdfs_round_value
        limit = 24 if c.hdfs_round_unit == "hour" else 60
        if c.hdfs_round and round_value > limit:
            conf.error(f"hdfs.roundValue must be at most {limit} for roundUnit {c.hdfs_round_unit}",
                       "hdfs.roundValue")
        try:
            kw = dict(tz=c.hdfs_time_zone, round_unit=round_unit, round_value=round_value,
                      use_local_timestamp=c.hdfs_use_local_time_stamp)
            transport = c.hdfs_transport
            if conf.is_set("hdfs.webhdfs.address") and transport != "webhdfs":
                conf.warn("hdfs.webhdfs.address is used only with hdfs.transport = webhdfs (hdfs:// paths go over "
                          "RPC by default)", "hdfs.webhdfs.address")
            self.fs, path_in_fs = file_system_for(self.path_text, webhdfs=c.hdfs_webhdfs_address,
                                                  user=c.hdfs_proxy_user, timeout=self.call_timeout,
                                                  transport=transport, kerberos=self.kerberos)
            self.path_template = PathTemplate(path_in_fs.rstrip("/") or "/", **kw)
            self.prefix_template = PathTemplate(self.prefix_text, **kw)
        except (ValueError, EscapeError) as exc:
            msg = str(exc)
            conf.error(msg, "hdfs.timeZone" if "timeZone" in msg else "hdfs.proxyUser" if "RPC as" in msg
                       else "hdfs.path")
            self.fs = None  # type: ignore[assignment]

    def _serializer(self, conf: Conf) -> None:
        """The serializer class of DataStream and CompressedStream files, its options checked now."""
        self.serializer_cls: type[EventSerializer] | None = None
        if self.file_type not in ("SequenceFile", "Parquet"):
            try:
                self.serializer_cls = registry.resolve("serializer", self.config.serializer)
                self.serializer_conf = conf.nested("serializer.", self.serializer_cls.spec)
                self.serializer_cls(self.name, self.serializer_conf)  # checks its options now
            except ConfigError as exc:
                conf.error(exc.message, "serializer")

    # Lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self.counter.started()
        self._timer = threading.Thread(target=self._timer_loop, name=f"{self.name}-roll-timer", daemon=True)
        self._timer.start()
        self.closer.start(self.close_threads)
        self.log.info("HDFS sink %s started: %s on %s, fileType %s", self.name, self.path_text, self.fs.describe(),
                      self.file_type)

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(5)
        with self._lock:
            for key in list(self._writers):
                self._close_writer(key)
        self.closer.stop(wait=max(2 * self.call_timeout, 10))
        self.fs.shutdown()
        self.counter.stopped()
        self.log.info("HDFS sink %s stopped", self.name)

    # Batches ------------------------------------------------------------------------------------------------
    def deliver(self, events: list[Event]) -> None:
        groups = self._buckets(events)
        with self._lock:
            touched: list[BucketWriter] = []
            try:
                for key, group in groups.items():
                    touched.extend(self._write(key, group))
                for w in touched:
                    w.flush()
            except Exception as exc:
                # The batch goes back to the channel; files touched by it are closed so the retry starts clean.
                for w in touched:
                    self._abandon(w)
                raise EventDeliveryException(f"HDFS sink {self.name}: writing {len(events)} events failed: "
                                             f"{exc}") from exc
            self.closer.note_write_ok()
            self.closer.retry_renames()

    def _buckets(self, events: list[Event]) -> dict[tuple[str, str], list[Event]]:
        """The batch's events grouped by their bucket (directory, file prefix), in order."""
        now_ms = int(time.time() * 1000)
        path_t, prefix_t = self.path_template, self.prefix_template
        try:
            if path_t.static and prefix_t.static:
                return {(path_t.resolve({}), prefix_t.resolve({})): events}
            if type(events) is Batch and events.raw:  # the events share their headers: one bucket for the batch
                h = events.shared or {}
                return {(path_t.resolve(h, now_ms), prefix_t.resolve(h, now_ms)): events}
            groups: defaultdict[tuple[str, str], list[Event]] = defaultdict(list)
            for e in events:
                groups[(path_t.resolve(e.headers, now_ms), prefix_t.resolve(e.headers, now_ms))].append(e)
        except EscapeError as exc:
            raise EventDeliveryException(f"HDFS sink {self.name}: {exc}") from None
        return groups

    def _write(self, key: tuple[str, str], events: list[Event]) -> list[BucketWriter]:
        """Append ``events`` to the bucket, rolling as the count and size limits say; returns touched writers."""
        touched = []
        start = 0
        n = len(events)
        bodies = bodies_of(events) if self.roll_size else []
        while start < n:
            w = self._writer(key)
            end = n
            if self.roll_count:
                end = min(end, start + max(self.roll_count - w.events, 0))
            if self.roll_size:
                size = w.body_bytes
                i = start
                while i < end and size < self.roll_size:
                    size += len(bodies[i])
                    i += 1
                end = i
            if end == start:  # the open file is full: roll it first
                w.flush()
                self._close_writer(key)
                continue
            w.append(events[start:end])
            touched.append(w)
            start = end
            if (self.roll_count and w.events >= self.roll_count) or (self.roll_size and w.body_bytes >= self.roll_size):
                w.flush()
                self._close_writer(key)
        return touched

    def _writer(self, key: tuple[str, str]) -> BucketWriter:
        w = self._writers.get(key)
        if w is not None:
            self._writers.move_to_end(key)
            return w
        while len(self._writers) >= self.max_open:
            oldest = next(iter(self._writers))
            self.log.info("HDFS sink %s: more than maxOpenFiles (%d) open: closing %s", self.name, self.max_open,
                          self._writers[oldest].path)
            self._close_writer(oldest)
        directory, prefix = key
        if self.recover and directory not in self._recovered_dirs:
            self.closer.recover(directory, prefix, {x.in_use_path for x in self._writers.values()})
            self._recovered_dirs.add(directory)
        w = BucketWriter(self, directory, prefix)
        # Flume numbers a bucket's files from the time its writer was made, +1 per file; keep them increasing.
        w.counter = max(w.counter, self._counters.get(key, 0))
        w.open()
        self._counters[key] = w.counter
        if len(self._counters) > 4 * self.max_open:
            self._counters = {k: v for k, v in self._counters.items() if k in self._writers}
        self.counter.add(connection_created=1)
        self._writers[key] = w
        return w

    def _close_writer(self, key: tuple[str, str]) -> None:
        """Seal the bucket's file now (its last bytes durable); a closer thread closes and renames it."""
        w = self._writers.pop(key, None)
        if w is None:
            return
        try:
            w.seal()
        except Exception as exc:  # noqa: BLE001 - the batches are durable; only a serializer footer is missing
            self.log.warning("HDFS sink %s: writing the end of %s failed (%s)", self.name, w.in_use_path, exc)
        self.closer.submit(w)

    def _abandon(self, w: BucketWriter) -> None:
        for key, cur in list(self._writers.items()):
            if cur is w:
                del self._writers[key]
        self.closer.abandon(w)

    def idle(self) -> None:
        self._check_timers()

    def _timer_loop(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self._check_timers()
            except Exception:  # noqa: BLE001
                self.log.exception("HDFS sink %s: roll timer failed", self.name)

    def _check_timers(self) -> None:
        self.closer.retry_lease_recovery()
        if not (self.roll_interval or self.idle_timeout or self.closer.renames_pending):
            return
        now = time.monotonic()
        with self._lock:
            for key, w in list(self._writers.items()):
                if (self.roll_interval and now - w.opened >= self.roll_interval) or (
                        self.idle_timeout and now - w.last_write >= self.idle_timeout):
                    self._close_writer(key)
            if self.closer.renames_pending:
                self.closer.retry_renames()

    def new_serializer(self) -> EventSerializer | None:
        if self.serializer_cls is None:
            return None
        return self.serializer_cls(self.name, self.serializer_conf)
