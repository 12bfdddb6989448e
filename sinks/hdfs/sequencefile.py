"""Hadoop SequenceFile version 6, as Flume's HDFS serializers write it."""

from __future__ import annotations

import os
import struct
import time

from sinks.hdfs.codecs import Codec

__all__ = ["SequenceFileFormat"]


def _vint(n: int) -> bytes:
    """Hadoop's WritableUtils.writeVLong."""
    if -112 <= n <= 127:
        return struct.pack(">b", n)
    length = -112
    if n < 0:
        n = ~n
        length = -120
    tmp = n
    while tmp:
        tmp >>= 8
        length -= 1
    out = [struct.pack(">b", length)]
    nbytes = -(length + 120) if length < -120 else -(length + 112)
    for idx in range(nbytes, 0, -1):
        out.append(bytes([(n >> ((idx - 1) * 8)) & 0xFF]))
    return b"".join(out)


def _text(s: str) -> bytes:
    b = s.encode()
    return _vint(len(b)) + b


class SequenceFileFormat:
    """Hadoop SequenceFile version 6: key LongWritable (the timestamp header, else now), value BytesWritable
    (``writeFormat = Writable``) or Text (``Text``), as Flume's HDFSWritableSerializer and HDFSTextSerializer write
    them. ``compression``: None, "RECORD" (each value compressed) or "BLOCK" (one compressed block per batch, as
    Hadoop's BlockCompressWriter writes at each hflush). Uncompressed and record files get a sync marker about every
    100 KB; block files before every block, as Hadoop's writers do."""

    SYNC_INTERVAL = 100 * 1024

    def __init__(self, write_format: str, codec: Codec | None = None, compression: str | None = None):
        self.text = write_format.lower() == "text"
        self.codec = codec if compression else None
        self.block = bool(self.codec) and compression == "BLOCK"
        self.sync = os.urandom(16)
        self.since_sync = 0

    def header(self) -> bytes:
        value_class = "org.apache.hadoop.io.Text" if self.text else "org.apache.hadoop.io.BytesWritable"
        out = b"SEQ\x06" + _text("org.apache.hadoop.io.LongWritable") + _text(value_class)
        if self.codec is not None:
            out += b"\x01" + (b"\x01" if self.block else b"\x00") + _text(self.codec.hadoop_class)
        else:
            out += b"\x00\x00"
        return out + struct.pack(">i", 0) + self.sync

    def _kv(self, events: list) -> tuple[list[bytes], list[bytes]]:
        now = int(time.time() * 1000)
        pack = struct.pack
        keys, values = [], []
        for e in events:
            ts = e.headers.get("timestamp") if e.headers else None
            try:
                keys.append(pack(">q", int(ts) if ts is not None else now))
            except ValueError:
                keys.append(pack(">q", now))
            body = e.body
            values.append((_vint(len(body)) + body) if self.text else pack(">i", len(body)) + body)
        return keys, values

    def encode(self, events: list) -> bytes:
        keys, values = self._kv(events)
        if self.block:
            assert self.codec is not None
            c = self.codec.compress
            parts = [b"\xff\xff\xff\xff", self.sync, _vint(len(keys))]
            for buf in (b"".join(_vint(len(k)) for k in keys), b"".join(keys),
                        b"".join(_vint(len(v)) for v in values), b"".join(values)):
                packed = c(buf)
                parts.append(_vint(len(packed)))
                parts.append(packed)
            return b"".join(parts)
        if self.codec is not None:
            values = [self.codec.compress(v) for v in values]
        out = []
        pack = struct.pack
        since = self.since_sync
        for key, value in zip(keys, values, strict=True):
            if since >= self.SYNC_INTERVAL:
                out.append(b"\xff\xff\xff\xff" + self.sync)
                since = 0
            record = pack(">ii", 8 + len(value), 8) + key + value
            out.append(record)
            since += len(record)
        self.since_sync = since
        return b"".join(out)
