"""The Hive sink (``hive``), one module per role: ``sink`` (the sink and its transactions), ``metastore`` (the
metastore's Thrift calls), ``serializers`` (DELIMITED and JSON bodies into column values) and ``acid`` (Hive's
ACID ORC files and delta directories)."""

from sinks.hive.sink import HiveSink

__all__ = ["HiveSink"]
