"""The hdfs sink, one module per role: ``sink`` (the spec and the sink: batches grouped into buckets, rolls,
timers), ``bucket`` (one open file), ``closer`` (closing and renaming files off the sink thread, recovering what a
failure or a crash left open), ``fs`` (the file systems, one module per transport), ``codecs``, ``sequencefile``
and ``parquet`` (the file formats). The path escapes are shared with the kafka sink and live in
``sinks.escapes``."""

from sinks.hdfs.parquet import parquet_from_staging, staging_records
from sinks.hdfs.sink import HDFSEventSink

__all__ = ["HDFSEventSink", "staging_records", "parquet_from_staging"]
