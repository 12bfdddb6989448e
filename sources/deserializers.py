"""Spooling-directory deserializers: how a file becomes events (``deserializer`` of the spooldir source).

A deserializer reads one file from a byte position and returns events in batches, each batch with the position
just after it, so the source can record where the last committed batch ended and resume there after a restart.
``LINE`` (one event per line), ``AVRO`` (one event per record of an Avro container file) and Flume's
``BlobDeserializer`` (the whole file as one event) are built in; a dotted Python path names your own subclass.
"""

from __future__ import annotations

import codecs
import io
from typing import BinaryIO, ClassVar

from agent.core import Batch, Component, Event
from agent.spec import Conf, Prop, Spec

__all__ = ["EventDeserializer", "LineDeserializer", "AvroDeserializer", "BlobDeserializer"]

_READ = 1 << 20


class EventDeserializer(Component):
    """Reads events from one open file (Flume's EventDeserializer), a registry family of its own.

    Contract: ``__init__(name, conf, charset=, errors=)`` only reads its configuration: ``name`` is the source's,
    ``conf`` holds the ``deserializer.*`` options checked against the class's ``spec`` (typed in
    ``self.config``), ``charset`` and ``errors`` are the source's inputCharset and decodeErrorPolicy (as
    ``bytes.decode`` errors). One instance reads one file, on the source's thread: ``open(f, position)`` once,
    then ``read(n)``, which returns up to ``n`` events and the position after them (an opaque integer the
    deserializer understands in ``open``); an empty list means the end of the file. A decode error raises
    UnicodeDecodeError or ValueError: the file is left in place and skipped.
    """

    kind = "deserializer"
    spec: ClassVar[Spec] = Spec()

    def __init__(self, name: str, conf: Conf, *, charset: str = "UTF-8", errors: str = "strict"):
        super().__init__(name, conf)
        self.charset = charset
        self.errors = errors
        self.f: BinaryIO | None = None

    def open(self, f: BinaryIO, position: int) -> None:
        self.f = f

    def read(self, n: int) -> tuple[list[Event], int]:
        raise NotImplementedError


class LineDeserializer(EventDeserializer):
    """One event per line; the newline is dropped, a carriage return is kept (as in Flume)."""

    alias = "LINE"
    flume_class = "org.apache.flume.serialization.LineDeserializer$Builder"
    spec = Spec(
        Prop("maxLineLength", "int", 2048, "Longest line in characters; a longer one is cut and the rest becomes "
             "the next event (as in Flume).", min=1),
        Prop("outputCharset", "str", "UTF-8", "Character set of the event bodies."),
    )

    def __init__(self, name: str, conf: Conf, **kw: str):
        super().__init__(name, conf, **kw)
        self.max_len: int = self.config.max_line_length
        self.out_charset: str = self.config.output_charset
        self._codec_in = codecs.lookup(self.charset).name
        self._codec_out = codecs.lookup(self.out_charset).name
        self._same = self._codec_in == self._codec_out and self._codec_in in ("utf-8", "ascii", "latin-1")
        self._buf = b""
        self._pos = 0  # file offset of _buf[0]
        self._eof = False
        self._empty_file = False

    def open(self, f: BinaryIO, position: int) -> None:
        super().open(f, position)
        f.seek(position)
        self._buf = b""
        self._lines: list[bytes] = []
        self._idx = 0
        self._last_unterminated = False
        self._pos = position
        self._eof = False
        self._empty_file = position == 0 and _size(f) == 0

    def _convert(self, lines: list[bytes]) -> list[bytes]:
        if self._same and self.errors == "strict":
            # Validate once per batch (a decode error fails the file, as decodeErrorPolicy FAIL says).
            b"\n".join(lines).decode(self._codec_in)
            return lines
        return [line.decode(self._codec_in, self.errors).encode(self._codec_out) for line in lines]

    def read(self, n: int) -> tuple[list[Event], int]:
        assert self.f is not None
        if self._empty_file:
            self._empty_file = False
            return [Event(b"")], 0  # Flume turns a zero-byte file into one empty event
        # Complete lines are split once per chunk and kept in _lines (from _idx on); _buf holds a partial line.
        while len(self._lines) - self._idx < n and not self._eof:
            chunk = self.f.read(_READ)
            if not chunk:
                self._eof = True
                if self._buf:  # a last line without a newline
                    self._lines = self._lines[self._idx:] + [self._buf]
                    self._idx = 0
                    self._last_unterminated = True
                    self._buf = b""
                break
            parts = (self._buf + chunk).split(b"\n")
            self._buf = parts.pop()
            self._lines = self._lines[self._idx:] + parts if self._idx < len(self._lines) else parts
            self._idx = 0
        lines = self._lines[self._idx:self._idx + n]
        if not lines:
            return [], self._pos
        self._idx += len(lines)
        consumed = sum(map(len, lines)) + len(lines)
        if self._last_unterminated and self._idx == len(self._lines):
            consumed -= 1
        self._pos += consumed
        out = self._convert(lines)
        max_len = self.max_len
        if any(len(b) > max_len for b in out):
            out = self._cut(out)
        return Batch(out), self._pos

    def _cut(self, bodies: list[bytes]) -> list[bytes]:
        out = []
        for b in bodies:
            if len(b) <= self.max_len:
                out.append(b)
                continue
            text = b.decode(self._codec_out, "replace")
            for i in range(0, len(text), self.max_len):
                out.append(text[i:i + self.max_len].encode(self._codec_out))
        return out


class BlobDeserializer(EventDeserializer):
    """The whole file as one event (Flume's morphline BlobDeserializer)."""

    alias = None
    flume_class = "org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder"
    spec = Spec(Prop("maxBlobLength", "int", 100000000, "Largest event in bytes; a longer file is cut into events "
                                                         "of this size.", min=1))

    def __init__(self, name: str, conf: Conf, **kw: str):
        super().__init__(name, conf, **kw)
        self.max_blob: int = self.config.max_blob_length
        self._pos = 0
        self._done = False

    def open(self, f: BinaryIO, position: int) -> None:
        super().open(f, position)
        f.seek(position)
        self._pos = position
        self._done = position > 0 and position >= _size(f)

    def read(self, n: int) -> tuple[list[Event], int]:
        assert self.f is not None
        if self._done:
            return [], self._pos
        data = self.f.read(self.max_blob)
        if not data and self._pos > 0:
            self._done = True
            return [], self._pos
        self._pos += len(data)
        if len(data) < self.max_blob:
            self._done = True
        return [Event(data)], self._pos


class AvroDeserializer(EventDeserializer):
    """One event per record of an Avro container file: the body is the record's binary encoding and a header
    carries its schema (``schemaType`` HASH: ``flume.avro.schema.hash``, LITERAL: ``flume.avro.schema.literal``).
    The position is the number of records already delivered."""

    alias = "AVRO"
    flume_class = "org.apache.flume.serialization.AvroEventDeserializer$Builder"
    spec = Spec(Prop("schemaType", "enum", "HASH", "How the schema travels with each event.",
                     choices={"HASH": "CRC-64-AVRO fingerprint in flume.avro.schema.hash",
                              "LITERAL": "the schema JSON in flume.avro.schema.literal"}))

    def __init__(self, name: str, conf: Conf, **kw: str):
        super().__init__(name, conf, **kw)
        self.literal = self.config.schema_type == "LITERAL"

    def open(self, f: BinaryIO, position: int) -> None:
        import json

        from fastavro import reader
        from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

        super().open(f, position)
        f.seek(0)
        self._reader = reader(f)
        schema = self._reader.writer_schema
        self._parsed = parse_schema(schema)
        if self.literal:
            self._headers = {"flume.avro.schema.literal": json.dumps(schema)}
        else:
            canonical = to_parsing_canonical_form(schema)
            self._headers = {"flume.avro.schema.hash": fingerprint(canonical, "CRC-64-AVRO")}
        self._pos = 0
        for _ in range(position):
            next(self._reader)
            self._pos += 1

    def read(self, n: int) -> tuple[list[Event], int]:
        from fastavro import schemaless_writer

        events = []
        for record in self._reader:
            buf = io.BytesIO()
            schemaless_writer(buf, self._parsed, record)
            events.append(Event(buf.getvalue(), dict(self._headers)))
            self._pos += 1
            if len(events) >= n:
                break
        return events, self._pos


def _size(f: BinaryIO) -> int:
    import os

    return os.fstat(f.fileno()).st_size
