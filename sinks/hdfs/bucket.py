"""One open file of one bucket of the hdfs sink: its names, counters, and the bytes waiting for the next flush."""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING

from agent.core import Event, as_events, bodies_of
from sinks.hdfs.fs import FileSystem
from sinks.hdfs.parquet import staging_records
from sinks.hdfs.sequencefile import SequenceFileFormat
from sinks.serializers import EventSerializer

if TYPE_CHECKING:
    from sinks.hdfs.sink import HDFSEventSink

__all__ = ["BucketWriter"]


class BucketWriter:
    """One open file of one bucket: its name, counters and the bytes waiting for the next flush."""

    def __init__(self, sink: HDFSEventSink, directory: str, prefix: str):
        self.sink = sink
        self.fs: FileSystem = sink.fs
        self.directory = directory
        self.prefix = prefix
        self.counter = int(time.time() * 1000)
        self.events = 0
        self.durable_events = 0  # events whose append returned (durable in the file)
        self.body_bytes = 0
        self.opened = time.monotonic()
        self.last_write = self.opened
        self.path = self.in_use_path = ""
        self._pending: list[bytes] = []
        self._buf = io.BytesIO()
        self._serializer: EventSerializer | None = None
        self._seq: SequenceFileFormat | None = None

    def open(self) -> None:
        sink = self.sink
        ext = sink.suffix or (sink.codec.extension if sink.codec else "")  # Flume: the suffix, else the codec's
        self.counter += 1
        name = f"{self.prefix}.{self.counter}{ext}"
        self.path = f"{self.directory}/{name}"
        self.in_use_path = f"{self.directory}/{sink.in_use_prefix}{name}{sink.in_use_suffix}"
        header = b""
        if sink.file_type == "Parquet":
            pass  # the in-use file is the staging log: records appended batch by batch
        elif sink.file_type == "SequenceFile":
            self._seq = SequenceFileFormat(sink.write_format, sink.codec, sink.seq_compression)
            header = self._seq.header()
        else:
            self._serializer = sink.new_serializer()
            assert self._serializer is not None
            self._buf = io.BytesIO()
            self._serializer.open(self._buf)
            header = self._take_buf()
            if sink.file_type == "CompressedStream" and header:
                self._pending.append(header)  # compressed together with the first batch
                header = b""
        self.fs.mkdirs(self.directory)
        self.fs.create(self.in_use_path, header)
        self.opened = self.last_write = time.monotonic()
        sink.log.info("HDFS sink %s: creating %s", sink.name, self.in_use_path)

    def _take_buf(self) -> bytes:
        data = self._buf.getvalue()
        self._buf.seek(0)
        self._buf.truncate()
        return data

    def append(self, events: list[Event]) -> None:
        if self.sink.file_type == "Parquet":
            self._pending.append(staging_records(as_events(events)))
        elif self._seq is not None:
            self._pending.append(self._seq.encode(as_events(events)))
        else:
            assert self._serializer is not None
            self._serializer.write(events if self._serializer.accepts_batch else as_events(events))
            self._serializer.flush()
            self._pending.append(self._take_buf())
        self.events += len(events)
        self.body_bytes += sum(map(len, bodies_of(events)))
        self.last_write = time.monotonic()

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        if self.sink.file_type == "CompressedStream" and self.sink.codec is not None:
            data = self.sink.codec.compress(data)
        self.fs.append(self.in_use_path, data)
        self._pending = []
        self.durable_events = self.events

    def seal(self) -> None:
        """Write what is left (the serializer's footer, pending bytes) durably; no more appends after this."""
        if self._serializer is not None:
            self._serializer.close()
            self._serializer = None
            tail = self._take_buf()
            if tail:
                self._pending.append(tail)
        self.flush()

    def finish(self) -> None:
        """Close the sealed file and give it its final name (the closer threads do this)."""
        self.fs.close(self.in_use_path)
        if self.sink.file_type == "Parquet":
            self.sink.closer.finish_parquet(self.in_use_path, self.path)
        elif self.in_use_path != self.path:
            self.fs.rename(self.in_use_path, self.path)
        self.sink.log.info("HDFS sink %s: closed %s (%d events)", self.sink.name, self.path, self.events)
