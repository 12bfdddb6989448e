"""fileType Parquet: batches staged in the in-use file as length-prefixed AvroFlumeEvent datums, converted to an
Apache Parquet file (columns headers map<string,string> and body binary) when the file rolls."""

from __future__ import annotations

from agent.avro_event import decode_event, encode_event
from agent.core import Event

__all__ = ["PARQUET_CODECS", "staging_records", "parquet_from_staging"]

# hdfs.codeC (alias or Hadoop class name) -> Parquet's compression name
PARQUET_CODECS = {"gzip": "gzip", "gzipcodec": "gzip", "default": "gzip", "defaultcodec": "gzip",
                  "snappy": "snappy", "snappycodec": "snappy", "zstandard": "zstd", "zstd": "zstd",
                  "zstandardcodec": "zstd", "lz4": "lz4", "lz4codec": "lz4", "none": "none"}


def staging_records(events: list[Event]) -> bytes:
    """Parquet staging log records: a 4-byte big-endian length, then the event as an AvroFlumeEvent datum."""
    out = []
    for e in events:
        datum = encode_event(e)
        out.append(len(datum).to_bytes(4, "big"))
        out.append(datum)
    return b"".join(out)


def parquet_from_staging(data: bytes, compression: str) -> tuple[bytes, int]:
    """The Parquet file for a staging log, and how many bytes at its end were an incomplete record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    headers: list[list[tuple[str, str]]] = []
    bodies: list[bytes] = []
    pos, n = 0, len(data)
    while pos + 4 <= n:
        size = int.from_bytes(data[pos:pos + 4], "big")
        if pos + 4 + size > n:
            break
        e = decode_event(data[pos + 4:pos + 4 + size])
        headers.append(list(e.headers.items()))
        bodies.append(e.body)
        pos += 4 + size
    table = pa.table({"headers": pa.array(headers, type=pa.map_(pa.string(), pa.string())),
                      "body": pa.array(bodies, type=pa.binary())})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression)
    return sink.getvalue().to_pybytes(), n - pos
