"""Hive's ACID file layout, as Hive 3 and 4 readers expect it, for rows inserted by one transaction.

A transaction with write id ``W`` puts its rows for one partition in the directory ``delta_W_W`` (seven digits
each, as Hive's streaming writer names them) under the partition's location: one ORC file ``bucket_00000`` and the
marker ``_orc_acid_version`` (``2``). Each ORC row wraps the table's columns in Hive's ACID event:
``struct<operation, originalTransaction, bucket, rowId, currentTransaction, row: struct<the columns>>`` with
operation 0 (insert), both transaction fields set to ``W``, ``bucket`` the encoded bucket property of bucket 0,
statement 0 (BucketCodec V1: ``1 << 29``) and ``rowId`` counting from 0. Readers take a delta only when its write
id is committed in their snapshot, so a file of an aborted or still open transaction is never seen, and the
compactor can merge the deltas later.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

__all__ = ["ACID_VERSION", "BUCKET_FILE", "arrow_type", "delta_dir", "orc_bytes"]

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
    return buf.getvalue()
