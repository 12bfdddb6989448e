"""Event serializers: how a file-writing sink turns a batch of events into bytes (``serializer`` / ``sink.serializer``).

A serializer writes to a binary file object. The text serializers build one buffer per batch; ``avro_event`` writes
an Avro container file (header once per file, then blocks).
"""

from __future__ import annotations

import logging
from typing import BinaryIO, ClassVar

from agent.core import Event
from agent.spec import Conf, Prop, Spec

__all__ = ["EventSerializer", "BodyTextEventSerializer", "HeaderAndBodyTextEventSerializer",
           "FlumeEventAvroEventSerializer"]

log = logging.getLogger("pyflume.serializer")


class EventSerializer:
    """Writes batches of events to one open file.

    Contract: ``open(f)`` when a file is opened (writes any file header), ``write(events)`` per batch, ``flush()``
    before the sink commits, ``close()`` before the file is closed (writes any trailer). Not thread-safe: one
    serializer per open file, used by the sink's runner thread.
    """

    spec: ClassVar[Spec] = Spec()
    kind: ClassVar[str] = "serializer"
    alias: ClassVar[str | None] = None
    flume_class: ClassVar[str | None] = None

    def __init__(self, name: str, conf: Conf):
        self.name = name
        self.conf = conf
        self.out: BinaryIO | None = None

    def open(self, out: BinaryIO) -> None:
        self.out = out

    def write(self, events: list[Event]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()

    def close(self) -> None:
        self.flush()
        self.out = None


class BodyTextEventSerializer(EventSerializer):
    """The body of each event, followed by a newline."""

    alias = "text"
    flume_class = "org.apache.flume.serialization.BodyTextEventSerializer$Builder"
    spec = Spec(Prop("appendNewline", "bool", True, "Write a newline after each event."))

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.newline = conf["appendNewline"]

    def write(self, events: list[Event]) -> None:
        assert self.out is not None
        bodies = [e.body for e in events]
        if self.newline:
            bodies.append(b"")
            self.out.write(b"\n".join(bodies))
        else:
            self.out.write(b"".join(bodies))


class HeaderAndBodyTextEventSerializer(EventSerializer):
    """``{k1=v1, k2=v2} body`` per event (Java's Map.toString, in header insertion order), then a newline."""

    alias = "header_and_text"
    flume_class = "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder"
    spec = Spec(Prop("appendNewline", "bool", True, "Write a newline after each event."))

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.newline = b"\n" if conf["appendNewline"] else b""

    def write(self, events: list[Event]) -> None:
        assert self.out is not None
        nl = self.newline
        parts = [
            ("{" + ", ".join(f"{k}={v}" for k, v in e.headers.items()) + "} ").encode() + e.body + nl
            for e in events
        ]
        self.out.write(b"".join(parts))


_EVENT_SCHEMA = {
    "type": "record",
    "name": "Event",
    "fields": [
        {"name": "headers", "type": {"type": "map", "values": "string"}},
        {"name": "body", "type": "bytes"},
    ],
}


class FlumeEventAvroEventSerializer(EventSerializer):
    """An Avro container file of records ``Event {headers: map<string>, body: bytes}`` (Flume's avro_event)."""

    alias = "avro_event"
    flume_class = "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder"
    spec = Spec(
        Prop("syncIntervalBytes", "int", 2048000, "Approximate bytes per Avro block.", min=32),
        Prop("compressionCodec", "str", "null", "Avro codec of the blocks: null, deflate, snappy, zstandard, ..."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        import fastavro

        self._schema = fastavro.parse_schema(_EVENT_SCHEMA)
        codec = conf["compressionCodec"]
        if codec not in fastavro.write.BLOCK_WRITERS:
            log.warning("serializer %s: unknown Avro codec %r; writing uncompressed (as Flume does)", name, codec)
            codec = "null"
        self.codec = codec
        self.sync_interval = conf["syncIntervalBytes"]
        self._writer = None

    def open(self, out: BinaryIO) -> None:
        from fastavro.write import Writer

        super().open(out)
        self._writer = Writer(out, self._schema, codec=self.codec, sync_interval=self.sync_interval)

    def write(self, events: list[Event]) -> None:
        assert self._writer is not None
        w = self._writer.write
        for e in events:
            w({"headers": e.headers, "body": e.body})

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
        super().flush()

    def close(self) -> None:
        self.flush()
        self._writer = None
        self.out = None
