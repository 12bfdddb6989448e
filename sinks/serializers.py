"""Event serializers: how a file-writing sink turns batches of events into bytes.

A sink names its serializer with ``serializer`` (hdfs) or ``sink.serializer`` (file_roll): an alias (``text``,
``header_and_text``, ``avro_event``, matched case-insensitively as Flume does), a Flume builder class name, or a
dotted Python path to an :class:`EventSerializer` subclass. Options under ``<prefix>serializer.*`` are validated
against the serializer's own ``spec``.

Everything here works on whole batches: the text serializers build one buffer per batch with one ``b"".join`` and
hand it to the file in one ``write``; ``avro_event`` encodes into memory and writes its header, and each block,
with one ``write`` each; the hdfs sink's AvroEventSerializer joins the bodies (already Avro datums) into blocks.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from typing import Any, BinaryIO, ClassVar

from agent.core import Batch, Component, Event, bodies_of
from agent.spec import Conf, ConfigError, Prop, Spec

__all__ = [
    "EventSerializer",
    "BodyTextEventSerializer",
    "HeaderAndBodyTextEventSerializer",
    "FlumeEventAvroEventSerializer",
    "AvroEventSerializer",
    "java_map_string",
]


class EventSerializer(Component):
    """Turns batches of events into the bytes of one file at a time.

    Contract: ``Cls(name, conf)`` only reads and checks the serializer's options (``conf`` is bound to ``spec``,
    ``name`` is the sink's name); it opens nothing. The owning sink calls, from its runner thread only:

    - ``open(out)`` once a new file is opened: ``out`` is a binary file object with ``write`` and ``flush``; the
      serializer writes any file header (the Avro container header).
    - ``reopen(out)`` instead of ``open`` when appending to an existing file; only when ``supports_reopen``.
    - ``write(events)`` once per batch, in order. Text serializers write the whole batch with one ``out.write``.
    - ``flush()`` before the sink commits the batch: every byte of the batches written so far must have been
      handed to ``out`` when it returns (Avro writes its pending block). Flushing ``out`` itself is the sink's job.
    - ``close()`` before the sink closes the file: writes any trailer; ``out`` is not closed.

    One instance serves one open file at a time; after ``close()`` the same instance may ``open`` the next file.
    Not thread-safe. An exception from any method means the file may hold a partial batch; the sink rolls the
    batch back (at-least-once) and should start a new file.
    """

    kind = "serializer"
    #: True when the serializer can continue an existing file (nothing to write at its start).
    supports_reopen: ClassVar[bool] = True
    #: True when ``write``/``encode`` may be handed an :class:`agent.core.Batch` as it is (else a list of events)
    accepts_batch: ClassVar[bool] = False

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.out: BinaryIO | None = None

    def open(self, out: BinaryIO) -> None:
        """A new, empty file: write any header."""
        self.out = out

    def reopen(self, out: BinaryIO) -> None:
        """Continue an existing file (no header)."""
        if not self.supports_reopen:
            raise NotImplementedError(f"the {self.alias or type(self).__name__} serializer cannot append to an "
                                      f"existing file")
        self.out = out

    def encode(self, events: Sequence[Event]) -> bytes:
        """The bytes of one batch (stateless serializers only)."""
        raise NotImplementedError

    def write(self, events: Sequence[Event]) -> None:
        """Write one batch; the default writes ``encode(events)`` with one call."""
        out = self.out
        if out is None:
            raise ValueError(f"serializer of {self.name}: write() before open()")
        data = self.encode(events)
        if data:
            out.write(data)

    def flush(self) -> None:
        """Hand every byte the serializer still holds to ``out`` (the sink then flushes ``out``)."""

    def close(self) -> None:
        """The file is about to be closed: write what is pending and any trailer."""
        self.flush()
        self.out = None


# --------------------------------------------------------------------------------------------------------------
# Text


class _TextSerializer(EventSerializer):
    """What the two text serializers share: their one option."""

    spec = Spec(Prop("appendNewline", "bool", True, "Write a newline after each event's body."))

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.append_newline: bool = self.config.append_newline


class BodyTextEventSerializer(_TextSerializer):
    """Each event's body as is, followed by a newline (``appendNewline``); headers are dropped."""

    alias = "text"
    flume_class = "org.apache.flume.serialization.BodyTextEventSerializer$Builder"

    accepts_batch = True

    def encode(self, events: Sequence[Event]) -> bytes:
        # The hot path of file_roll: the bodies list (a Batch's own, no Event touched) and one join per batch,
        # written with one call.
        bodies = bodies_of(events)
        if self.append_newline:
            # the last body gets its newline too, without copying the joined buffer again
            return b"\n".join([*bodies, b""])
        return b"".join(bodies)


def java_map_string(headers: dict[str, str]) -> str:
    """Java's ``Map.toString()``: ``{k1=v1, k2=v2}``, or ``{}``.

    Flume's headers are a ``java.util.HashMap``, whose order follows the keys' hash codes; pyflume prints them in
    insertion order, so a line with two or more headers may list them in a different order than Flume does.
    """
    if not headers:
        return "{}"
    return "{" + ", ".join([f"{k}={v}" for k, v in headers.items()]) + "}"


class HeaderAndBodyTextEventSerializer(_TextSerializer):
    """``{k1=v1, k2=v2} body`` per event (Java's Map.toString of the headers, a space, the body), then a newline.

    Headers are listed in insertion order; Flume lists them in Java HashMap order (see :func:`java_map_string`).
    """

    alias = "header_and_text"
    flume_class = "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder"

    accepts_batch = True

    def encode(self, events: Sequence[Event]) -> bytes:
        newline = self.append_newline
        if type(events) is Batch and events.raw:  # one header line prefix for the whole batch
            if not events:
                return b""
            h = events.shared
            prefix = b"{} " if not h else (java_map_string(h) + " ").encode("utf-8", "replace")
            tail = b"\n" if newline else b""
            return prefix + (tail + prefix).join(events.bodies) + tail
        parts: list[bytes] = []
        add = parts.append
        for e in events:
            h = e.headers
            # Java's String.getBytes() would turn an unencodable char into '?'; "replace" does the same.
            add(b"{} " if not h else (java_map_string(h) + " ").encode("utf-8", "replace"))
            add(e.body)
            if newline:
                add(b"\n")
        return b"".join(parts)


# --------------------------------------------------------------------------------------------------------------
# Avro container


#: Flume's FlumeEventAvroEventSerializer schema: record ``Event`` with no namespace (unlike the RPC's AvroFlumeEvent).
EVENT_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Event",
    "fields": [
        {"name": "headers", "type": {"type": "map", "values": "string"}},
        {"name": "body", "type": "bytes"},
    ],
}

#: Avro Java's CodecFactory names (matched exactly, as ``CodecFactory.fromString`` does), with the Python package
#: fastavro needs for each (None: built in).
_AVRO_CODECS: dict[str, str | None] = {
    "null": None,
    "deflate": None,
    "snappy": "cramjam",
    "bzip2": None,
    "xz": None,
    "zstandard": "backports.zstd",
}


#: The options of both Avro container serializers (Flume's AvroEventSerializerConfigurationConstants).
AVRO_FILE_OPTIONS = Spec(
    Prop("syncIntervalBytes", "int", 2048000,
         "Uncompressed size at which a block is written (more are written at each flush).",
         min=32, max=1 << 30),
    Prop("compressionCodec", "str", "null",
         "Block compression, by Avro's codec name: null (none), deflate, snappy (needs the cramjam package), "
         "bzip2, xz, zstandard (needs backports.zstd). Any other name is warned about and means null, as in "
         "Flume."),
)


def _avro_codec(conf: Conf, codec: str) -> str:
    """The codec to write with: an unknown name is warned about and means null, as in Flume; a known one whose
    Python package is missing is a ConfigError."""
    if codec not in _AVRO_CODECS:
        message = (f"Unable to instantiate avro codec with name ({codec}): not one of "
                   f"{', '.join(_AVRO_CODECS)}. Compression disabled (as in Flume)")
        if not any(p.message == message for p in conf.problems):  # one warning per sink, not per file
            conf.warn(message, "compressionCodec")
        return "null"
    if _AVRO_CODECS[codec] and not _codec_works(codec):
        raise ConfigError(
            f"the Avro codec '{codec}' needs the Python package {_AVRO_CODECS[codec]}; install it "
            f"(pip install {_AVRO_CODECS[codec]}) or choose null, deflate, bzip2 or xz",
            "compressionCodec",
        )
    return codec


class FlumeEventAvroEventSerializer(EventSerializer):
    """An Avro container file of ``Event {headers: map<string>, body: bytes}`` records (Flume's ``avro_event``).

    The container header (schema, codec, sync marker) is written when the file is opened. Records collect in a
    block that is written when it reaches ``syncIntervalBytes`` and at every ``flush()``, so each committed batch
    ends a block and the file is readable up to the last commit, as with Flume (whose sinks flush per batch).
    A file cannot be appended to (``supports_reopen`` is false), as in Flume.
    """

    alias = "avro_event"
    flume_class = "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder"
    supports_reopen = False
    spec = AVRO_FILE_OPTIONS

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        from fastavro import parse_schema

        self.sync_interval: int = self.config.sync_interval_bytes
        self.codec = _avro_codec(conf, self.config.compression_codec)
        self._schema = parse_schema(EVENT_SCHEMA)
        self._buffer: io.BytesIO | None = None
        self._writer: Any = None

    def open(self, out: BinaryIO) -> None:
        from fastavro.write import Writer

        super().open(out)
        self._buffer = io.BytesIO()
        # fastavro encodes into memory; we move its output to the file in whole pieces (header, blocks).
        self._writer = Writer(self._buffer, self._schema, codec=self.codec, sync_interval=self.sync_interval)
        self._drain()

    def write(self, events: Sequence[Event]) -> None:
        writer = self._writer
        if writer is None:
            raise ValueError(f"serializer of {self.name}: write() before open()")
        append = writer.write
        for e in events:
            append({"headers": e.headers, "body": e.body})
        self._drain()  # blocks completed by the sync interval go to the file now, keeping memory bounded

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()  # ends the pending block, if any
            self._drain()

    def close(self) -> None:
        self.flush()
        self._writer = None
        self._buffer = None
        self.out = None

    def _drain(self) -> None:
        buf = self._buffer
        if buf is None or not buf.tell():
            return
        assert self.out is not None
        self.out.write(buf.getvalue())
        buf.seek(0)
        buf.truncate()


def _codec_works(codec: str) -> bool:
    """Whether fastavro can compress with ``codec`` here (its optional library is installed)."""
    from fastavro.write import Writer

    try:
        w = Writer(io.BytesIO(), EVENT_SCHEMA, codec=codec)
        w.write({"headers": {}, "body": b"x"})
        w.flush()
    except (ValueError, ImportError):
        return False
    return True


# --------------------------------------------------------------------------------------------------------------
# Avro container of the event bodies (the hdfs sink's AvroEventSerializer)

AVRO_SCHEMA_LITERAL_HEADER = "flume.avro.schema.literal"
AVRO_SCHEMA_URL_HEADER = "flume.avro.schema.url"
_AVRO_MAGIC = b"Obj\x01"


class AvroEventSerializer(EventSerializer):
    """An Avro container file whose records are the event bodies, each already one Avro-encoded datum (Flume's
    ``org.apache.flume.sink.hdfs.AvroEventSerializer``; Kite's and Confluent's producers write such bodies).

    The schema of a file is that of its first event: the ``flume.avro.schema.url`` header (a schema file at an
    hdfs://, http(s):// or file: URL, each URL read once per file), else the ``flume.avro.schema.literal`` header
    (the schema's JSON), else the ``schemaURL`` option. An event without any of them fails its batch, which is
    rolled back, as in Flume. Bodies are copied into blocks as they are (never decoded): a body that is not a
    datum of the schema makes an unreadable file. Blocks are written at ``syncIntervalBytes`` and at each flush,
    so the file is readable up to the last commit. A file cannot be appended to, as in Flume.
    """

    alias = None  # Flume has no alias for it: serializer = org.apache.flume.sink.hdfs.AvroEventSerializer$Builder
    flume_class = "org.apache.flume.sink.hdfs.AvroEventSerializer$Builder"
    supports_reopen = False
    spec = Spec(
        Prop("schemaURL", "str", None, "The schema's URL (hdfs://, http(s)://, file:) for events with neither "
             "schema header."),
        extends=AVRO_FILE_OPTIONS,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.sync_interval: int = self.config.sync_interval_bytes
        self.codec = _avro_codec(conf, self.config.compression_codec)
        self.static_url: str | None = self.config.schema_url
        self._schemas: dict[str, str] = {}  # URL -> schema JSON, for the file being written (Flume's cache)
        self._sync = b""
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def open(self, out: BinaryIO) -> None:
        super().open(out)
        self._sync = b""  # the header waits for the first event: it holds that event's schema
        self._pending, self._pending_bytes = [], 0

    def write(self, events: Sequence[Event]) -> None:
        if self.out is None:
            raise ValueError(f"serializer of {self.name}: write() before open()")
        if not events:
            return
        if not self._sync:
            self._write_header(self._schema_of(events[0]))
        pending = self._pending
        interval = self.sync_interval
        size = self._pending_bytes
        for e in events:
            pending.append(e.body)
            size += len(e.body)
            if size >= interval:
                self._pending_bytes = size
                self._write_block()
                pending = self._pending
                size = 0
        self._pending_bytes = size

    def flush(self) -> None:
        if self._pending:
            self._write_block()

    def close(self) -> None:
        self.flush()
        self.out = None

    def _schema_of(self, event: Event) -> str:
        """The schema JSON for a file whose first event is ``event``, checked by parsing it."""
        from fastavro import parse_schema

        url = event.headers.get(AVRO_SCHEMA_URL_HEADER)
        literal = event.headers.get(AVRO_SCHEMA_LITERAL_HEADER)
        if url is not None:
            text = self._schemas.get(url) or self._load(url)
        elif literal is not None:
            text = literal
        elif self.static_url is not None:
            text = self._schemas.get(self.static_url) or self._load(self.static_url)
        else:
            raise ValueError(f"Could not find schema for event {event!r}: no {AVRO_SCHEMA_URL_HEADER} or "
                             f"{AVRO_SCHEMA_LITERAL_HEADER} header and no serializer.schemaURL")
        try:
            schema = json.loads(text)
            parse_schema(schema)
        except ValueError as exc:  # JSONDecodeError and fastavro's SchemaParseException are ValueErrors
            raise ValueError(f"the Avro schema of event {event!r} is not valid: {exc}") from None
        return json.dumps(schema, separators=(",", ":"))

    def _load(self, url: str) -> str:
        if url.lower().startswith("hdfs://"):
            from sinks.hdfs.fs import file_system_for

            fs, path = file_system_for(url, webhdfs=[], user=None, timeout=30.0)
            data = fs.read(path)
        else:
            import urllib.request

            target = url if "://" in url or url.startswith("file:") else "file://" + url
            with urllib.request.urlopen(target, timeout=30) as f:
                data = f.read()
        text = data.decode("utf-8")
        self._schemas[url] = text
        return text

    def _write_header(self, schema_json: str) -> None:
        self._sync = os.urandom(16)
        meta = {"avro.schema": schema_json.encode(), "avro.codec": self.codec.encode()}
        parts = [_AVRO_MAGIC, _zigzag(len(meta))]
        for key, value in meta.items():
            parts += [_zigzag(len(key)), key.encode(), _zigzag(len(value)), value]
        parts += [b"\x00", self._sync]
        assert self.out is not None
        self.out.write(b"".join(parts))

    def _write_block(self) -> None:
        from fastavro._write_py import BLOCK_WRITERS
        from fastavro.io.binary_encoder import BinaryEncoder

        data = b"".join(self._pending)
        buf = io.BytesIO()
        buf.write(_zigzag(len(self._pending)))
        BLOCK_WRITERS[self.codec](BinaryEncoder(buf), data, None)  # the (compressed) size, then the data
        buf.write(self._sync)
        assert self.out is not None
        self.out.write(buf.getvalue())
        self._pending, self._pending_bytes = [], 0


def _zigzag(n: int) -> bytes:
    """An Avro long: zig-zag, then base-128 varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
