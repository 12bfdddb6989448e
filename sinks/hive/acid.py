"""Hive's ACID file layout, as Hive 3 and 4 readers expect it, for rows inserted by one transaction.

A transaction with write id ``W`` puts its rows for one partition in the directory ``delta_W_W`` (seven digits
each, as Hive's streaming writer names them) under the partition's location: one ORC file ``bucket_00000`` and the
marker ``_orc_acid_version`` (``2``). Each ORC row wraps the table's columns in Hive's ACID event:
``struct<operation, originalTransaction, bucket, rowId, currentTransaction, row: struct<the columns>>`` with
operation 0 (insert), both transaction fields set to ``W``, ``bucket`` the encoded bucket property of bucket 0,
statement 0 (BucketCodec V1: ``1 << 29``) and ``rowId`` counting from 0; the file's user metadata holds the ACID
key index, stats and version as Hive's writer puts them (added to the footer pyarrow writes). Readers take a
delta only when its write id is committed in their snapshot, so a file of an aborted or still open transaction is
never seen, and the compactor can merge the deltas later.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

__all__ = ["ACID_VERSION", "BUCKET_FILE", "arrow_type", "delta_dir", "orc_bytes", "with_user_metadata"]

ACID_VERSION = b"2"
BUCKET_FILE = "bucket_00000"
_BUCKET_PROPERTY = 1 << 29  # BucketCodec V1, bucket 0, statement 0


def delta_dir(write_id: int) -> str:
    return f"delta_{write_id:07d}_{write_id:07d}"


_SIMPLE = {
    "tinyint": "int8", "smallint": "int16", "int": "int32", "integer": "int32", "bigint": "int64",
    "float": "float32", "double": "float64", "double precision": "float64", "boolean": "bool_",
    "string": "string", "binary": "binary", "date": "date32",
}


def arrow_type(hive_type: str) -> Any:
    """The Arrow type that pyarrow writes as the ORC type of a Hive column; ValueError for complex types."""
    import pyarrow as pa

    t = hive_type.strip().lower()
    base = t.split("(", 1)[0].strip()
    if base in ("varchar", "char"):
        return pa.string()
    if base == "decimal":
        args = t[t.index("(") + 1:t.rindex(")")].split(",") if "(" in t else ["10", "0"]
        return pa.decimal128(int(args[0]), int(args[1]) if len(args) > 1 else 0)
    if base == "timestamp":
        return pa.timestamp("ns")
    if base in _SIMPLE:
        return getattr(pa, _SIMPLE[base])()
    raise ValueError(f"column type '{hive_type}' is not supported by pyflume's Hive sink yet (supported: "
                     f"primitive types: tinyint, smallint, int, bigint, float, double, boolean, string, varchar, "
                     f"char, decimal, date, timestamp, binary)")


def orc_bytes(write_id: int, names: Sequence[str], types: Sequence[Any], columns: Sequence[list]) -> bytes:
    """One ACID ORC file (zlib, as Hive's default) holding ``columns`` (one list of values per table column)."""
    import pyarrow as pa
    import pyarrow.orc as orc

    n = len(columns[0]) if columns else 0
    row = pa.StructArray.from_arrays([pa.array(col, type=t) for col, t in zip(columns, types, strict=True)],
                                     fields=[pa.field(name, t) for name, t in zip(names, types, strict=True)])
    wid = pa.array([write_id] * n, pa.int64())
    table = pa.table({
        "operation": pa.array([0] * n, pa.int32()),
        "originalTransaction": wid,
        "bucket": pa.array([_BUCKET_PROPERTY] * n, pa.int32()),
        "rowId": pa.array(range(n), pa.int64()),
        "currentTransaction": wid,
        "row": row,
    })
    buf = io.BytesIO()
    orc.write_table(table, buf, compression="zlib")
    data = buf.getvalue()
    reader = orc.ORCFile(io.BytesIO(data))
    index, last = [], -1
    for i in range(reader.nstripes):
        last += reader.read_stripe(i).num_rows
        index.append(f"{write_id},{_BUCKET_PROPERTY},{last};")
    return with_user_metadata(data, {
        "hive.acid.key.index": "".join(index).encode(),  # the last row's key per stripe, for split pruning
        "hive.acid.stats": f"{n},0,0".encode(),  # inserts, updates, deletes
        "hive.acid.version": ACID_VERSION,
    })


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _chunks(raw: bytes, block: int) -> bytes:
    """``raw`` as ORC compression chunks stored uncompressed ("original": a 3-byte header, length << 1 | 1)."""
    out = bytearray()
    for start in range(0, len(raw), block):
        piece = raw[start:start + block]
        out += ((len(piece) << 1) | 1).to_bytes(3, "little") + piece
    return bytes(out)


def _unchunk(data: bytes) -> bytes:
    import zlib

    out, pos = bytearray(), 0
    while pos < len(data):
        header = int.from_bytes(data[pos:pos + 3], "little")
        length, original = header >> 1, header & 1
        piece = data[pos + 3:pos + 3 + length]
        out += piece if original else zlib.decompress(piece, -15)
        pos += 3 + length
    return bytes(out)


def with_user_metadata(data: bytes, items: dict[str, bytes]) -> bytes:
    """A zlib ORC file with ``items`` added to its footer's user metadata, which Hive's ACID writer fills and
    pyarrow cannot: the footer gets one ``UserMetadataItem`` (field 5) per item and is stored again as uncompressed
    chunks, and the postscript's footer length (field 1) is rewritten. Nothing before the footer moves."""
    ps_len = data[-1]
    ps = data[-1 - ps_len:-1]
    fields, pos = [], 0
    while pos < len(ps):  # the postscript: footerLength, compression, blockSize, version, ... magic
        key, pos = _read_varint(ps, pos)
        start = pos
        if key & 7 == 0:
            _, pos = _read_varint(ps, pos)
        elif key & 7 == 2:
            size, pos = _read_varint(ps, pos)
            pos += size
        else:
            raise ValueError(f"unexpected ORC postscript wire type {key & 7}")
        fields.append((key, ps[start:pos]))
    values = {key >> 3: raw for key, raw in fields}
    footer_len, _ = _read_varint(values[1], 0)
    block, _ = _read_varint(values[3], 0) if 3 in values else (262144, 0)
    if values.get(2) != b"\x01":
        raise ValueError("expected a zlib ORC file")
    end = len(data) - 1 - ps_len
    footer = _unchunk(data[end - footer_len:end])
    for name, value in items.items():
        item = b"\x0a" + _varint(len(name)) + name.encode() + b"\x12" + _varint(len(value)) + value
        footer += b"\x2a" + _varint(len(item)) + item
    stored = _chunks(footer, block)
    ps_new = b"".join(_varint(key) + (_varint(len(stored)) if key >> 3 == 1 else raw) for key, raw in fields)
    if len(ps_new) > 255:
        raise ValueError("ORC postscript too long")
    return data[:end - footer_len] + stored + ps_new + bytes([len(ps_new)])
