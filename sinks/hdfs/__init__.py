"""The hdfs sink, one module per role: ``sink`` (the spec and the sink: batches grouped into buckets, rolls,
timers), ``bucket`` (one open file), ``fs`` (the file systems, one module per transport), ``codecs``,
``sequencefile`` and ``parquet`` (the file formats). ``escapes`` (the path escapes) is shared with the kafka sink
and lives in ``sinks.escapes``."""

from sinks.hdfs.parquet import parquet_from_staging, staging_records
from sinks.hdfs.sink import HDFSEventSink

__all__ = ["HDFSEventSink", "staging_records", "parquet_from_staging"]
