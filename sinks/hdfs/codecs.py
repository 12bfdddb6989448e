"""Compression codecs, in the stream formats Hadoop's codecs read (for CompressedStream and SequenceFile)."""

from __future__ import annotations

import bz2
import struct
import zlib

__all__ = ["Codec", "CODECS", "codec_for"]


class Codec:
    """One Hadoop codec: ``compress(data)`` returns a self-contained piece; pieces concatenate into a valid file."""

    name = ""
    hadoop_class = ""
    extension = ""

    def compress(self, data: bytes) -> bytes:
        raise NotImplementedError


class GzipCodec(Codec):
    name, hadoop_class, extension = "gzip", "org.apache.hadoop.io.compress.GzipCodec", ".gz"

    def compress(self, data: bytes) -> bytes:
        c = zlib.compressobj(6, zlib.DEFLATED, 31)  # one gzip member per batch, as Flume's finish() makes
        return c.compress(data) + c.flush()


class DefaultCodec(Codec):
    name, hadoop_class, extension = "default", "org.apache.hadoop.io.compress.DefaultCodec", ".deflate"

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, 6)


class BZip2Codec(Codec):
    name, hadoop_class, extension = "bzip2", "org.apache.hadoop.io.compress.BZip2Codec", ".bz2"

    def compress(self, data: bytes) -> bytes:
        return bz2.compress(data, 9)


class _BlockCodec(Codec):
    """Hadoop's BlockCompressorStream framing: per block, the uncompressed length, then length-prefixed chunks."""

    chunk = 64 * 1024

    def _raw(self, data: bytes) -> bytes:
        raise NotImplementedError

    def compress(self, data: bytes) -> bytes:
        out = []
        for i in range(0, len(data), self.chunk):
            piece = data[i:i + self.chunk]
            packed = self._raw(piece)
            out.append(struct.pack(">II", len(piece), len(packed)))
            out.append(packed)
        return b"".join(out)


class SnappyCodec(_BlockCodec):
    name, hadoop_class, extension = "snappy", "org.apache.hadoop.io.compress.SnappyCodec", ".snappy"

    def _raw(self, data: bytes) -> bytes:
        import cramjam

        return bytes(cramjam.snappy.compress_raw(data))


class Lz4Codec(_BlockCodec):
    name, hadoop_class, extension = "lz4", "org.apache.hadoop.io.compress.Lz4Codec", ".lz4"

    def _raw(self, data: bytes) -> bytes:
        import cramjam

        return bytes(cramjam.lz4.compress_block(data, store_size=False))


class ZStandardCodec(Codec):
    name, hadoop_class, extension = "zstandard", "org.apache.hadoop.io.compress.ZStandardCodec", ".zst"

    def compress(self, data: bytes) -> bytes:
        import cramjam

        return bytes(cramjam.zstd.compress(data, level=3))


CODECS: dict[str, type[Codec]] = {c.name: c for c in (GzipCodec, DefaultCodec, BZip2Codec, SnappyCodec, Lz4Codec,
                                                      ZStandardCodec)}
UNSUPPORTED = {"lzo", "lzop"}


def codec_for(text: str) -> Codec | None:
    """Flume's codec lookup: Hadoop class name, simple name, or name without "Codec", any case; None for none."""
    low = text.strip().lower()
    if low in ("", "none"):
        return None
    for cls in CODECS.values():
        simple = cls.hadoop_class.rsplit(".", 1)[1].lower()
        if low in (cls.name, cls.hadoop_class.lower(), simple, simple.removesuffix("codec")):
            return cls()
    if low.removesuffix("codec") in UNSUPPORTED or "lzo" in low:
        raise ValueError(f"codec '{text}' (LZO, GPL-licensed) is not supported; use gzip, bzip2, snappy, lz4, "
                         f"zstandard or default")
    raise ValueError(f"unknown codec '{text}'; expected one of {', '.join(CODECS)} (or a Hadoop codec class name)")
