"""HBase's Thrift 1 API as the HBase sinks use it: the server addresses, the generated types (through happybase),
a fast encoder of ``mutateRows`` calls, and the text of HBase's errors."""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

from agent.spec import ConfigError
from sinks.hbase.serializers import Put

__all__ = ["THRIFT_DEFAULT_PORT", "thrift_targets", "encode_mutate_rows", "hbase_thrift", "io_error_text",
           "first_line"]

THRIFT_DEFAULT_PORT = 9090


def thrift_targets(text: str, default_port: int) -> list[tuple[str, int]]:
    """The ``thrift`` property's servers: ``host[:port]`` items separated by commas or spaces (IPv6 in brackets)."""
    out = []
    for item in text.replace(" ", ",").split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, str(default_port)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            p = int(port)
        except ValueError:
            raise ConfigError(f"{item!r} is not host:port") from None
        if not 0 < p < 65536:
            raise ConfigError(f"{item!r}: port out of range")
        out.append((host, p))
    return out


_I32 = struct.Struct(">i").pack
_MUTATE_ROWS = b"\x80\x01\x00\x01" + _I32(10) + b"mutateRows"  # strict binary message header: CALL mutateRows


def encode_mutate_rows(table: bytes, puts: Sequence[Put], wal: bool, seqid: int, heads: dict[bytes, bytes]) -> bytes:
    """HBase Thrift 1 ``mutateRows(table, [BatchMutation(row, [Mutation(isDelete=false, column, value, writeToWAL)
    ...]) ...], {})`` in the strict binary protocol, as one bytes object. ``heads`` caches each column's encoded
    field prefix (a serializer writes a handful of columns)."""
    i32 = _I32
    tail = b"\x02\x00\x04\x01\x00" if wal else b"\x02\x00\x04\x00\x00"  # writeToWAL, end of Mutation
    parts = [_MUTATE_ROWS, i32(seqid), b"\x0b\x00\x01", i32(len(table)), table,  # 1: tableName
             b"\x0f\x00\x02\x0c", i32(len(puts))]  # 2: rowBatches, a list of structs
    extend = parts.extend
    for row, cells in puts:
        extend((b"\x0b\x00\x01", i32(len(row)), row, b"\x0f\x00\x02\x0c", i32(len(cells))))  # row, mutations
        for column, value in cells.items():
            head = heads.get(column)
            if head is None:  # isDelete = false, then the column
                head = b"\x02\x00\x01\x00\x0b\x00\x02" + i32(len(column)) + column + b"\x0b\x00\x03"
                if len(heads) < 4096:
                    heads[column] = head
            extend((head, i32(len(value)), value, tail))
        parts.append(b"\x00")  # end of BatchMutation
    parts.append(b"\x0d\x00\x03\x0b\x0b\x00\x00\x00\x00\x00")  # 3: attributes, an empty map; end of args
    return b"".join(parts)


@functools.cache
def hbase_thrift():  # noqa: ANN202 - the generated module
    """HBase's Thrift 1 types (Mutation, BatchMutation, TIncrement, IOError), as happybase loads them."""
    import happybase  # noqa: F401 - loading happybase registers the Hbase_thrift module
    import Hbase_thrift

    return Hbase_thrift


def io_error_text(exc: BaseException) -> str:
    """The message of an HBase IOError (bytes or text), else the exception's text."""
    msg = getattr(exc, "message", None)
    if isinstance(msg, bytes):
        msg = msg.decode(errors="replace")
    return msg or str(exc)


def first_line(text: str) -> str:
    """The first line of an HBase error (the server appends the Java stack trace), at most 500 characters."""
    return text.strip().splitlines()[0][:500] if text.strip() else "no detail"
