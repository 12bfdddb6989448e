"""The HBase sinks (``hbase2``, ``hbase``, ``asynchbase``), one module per role: ``sink`` (the three sinks),
``serializers`` (events into puts and increments) and ``thrift`` (HBase's Thrift 1 API: addresses, types, the
``mutateRows`` encoder)."""

from sinks.hbase.serializers import HbaseEventSerializer, RegexHbaseEventSerializer, SimpleHbaseEventSerializer
from sinks.hbase.sink import AsyncHBaseSink, HBase2Sink, HBaseSink

__all__ = [
    "HBase2Sink",
    "HBaseSink",
    "AsyncHBaseSink",
    "HbaseEventSerializer",
    "SimpleHbaseEventSerializer",
    "RegexHbaseEventSerializer",
]
