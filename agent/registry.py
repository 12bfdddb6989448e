"""Component types: Flume's aliases, Flume's Java class names, and dotted Python paths to a user's own classes.

``resolve(family, text)`` turns the ``type`` a user wrote into a Python class. Aliases match case-insensitively,
as in Flume. A Flume class name of a built-in resolves to pyflume's implementation. Any other dotted name is
imported as ``package.module.Class`` so custom components work without touching pyflume. A Java class name that
is not one of Flume's built-ins gets an error that says Java plugins cannot run here and how to write the Python
equivalent.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from agent.spec import ConfigError

__all__ = ["Entry", "ENTRIES", "resolve", "entries", "FAMILIES"]


@dataclass(frozen=True)
class Entry:
    family: str
    alias: str | None
    flume_class: str | None
    target: str  # "module:Class"


def _e(family: str, alias: str | None, flume_class: str | None, target: str) -> Entry:
    return Entry(family, alias, flume_class, target)


ENTRIES: list[Entry] = [
    # Channels
    _e("channel", "memory", "org.apache.flume.channel.MemoryChannel", "channels.memory:MemoryChannel"),
    _e("channel", "file", "org.apache.flume.channel.file.FileChannel", "channels.file:FileChannel"),
    _e("channel", "kafka", "org.apache.flume.channel.kafka.KafkaChannel", "channels.kafka:KafkaChannel"),
    _e("channel", "SPILLABLEMEMORY", "org.apache.flume.channel.SpillableMemoryChannel",
       "channels.spillable:SpillableMemoryChannel"),
    # Sources
    _e("source", "netcat", "org.apache.flume.source.NetcatSource", "sources.netcat:NetcatSource"),
    _e("source", "netcatudp", "org.apache.flume.source.NetcatUdpSource", "sources.netcat:NetcatUdpSource"),
    _e("source", "seq", "org.apache.flume.source.SequenceGeneratorSource", "sources.seq:SequenceGeneratorSource"),
    _e("source", "exec", "org.apache.flume.source.ExecSource", "sources.exec:ExecSource"),
    _e("source", "spooldir", "org.apache.flume.source.SpoolDirectorySource", "sources.spooldir:SpoolDirectorySource"),
    _e("source", "TAILDIR", "org.apache.flume.source.taildir.TaildirSource", "sources.taildir:TaildirSource"),
    _e("source", "http", "org.apache.flume.source.http.HTTPSource", "sources.http.source:HTTPSource"),
    _e("source", "avro", "org.apache.flume.source.AvroSource", "sources.avro:AvroSource"),
    _e("source", "syslogtcp", "org.apache.flume.source.SyslogTcpSource", "sources.syslog.tcp:SyslogTcpSource"),
    _e("source", "multiport_syslogtcp", "org.apache.flume.source.MultiportSyslogTCPSource",
       "sources.syslog.multiport:MultiportSyslogTCPSource"),
    _e("source", "syslogudp", "org.apache.flume.source.SyslogUDPSource", "sources.syslog.udp:SyslogUDPSource"),
    _e("source", "kafka", "org.apache.flume.source.kafka.KafkaSource", "sources.kafka:KafkaSource"),
    _e("source", None, "org.apache.flume.source.StressSource", "sources.stress:StressSource"),
    _e("source", "thrift", "org.apache.flume.source.ThriftSource", "sources.thrift:ThriftSource"),
    _e("source", None, "org.apache.flume.source.scribe.ScribeSource", "sources.scribe:ScribeSource"),
    # Sinks
    _e("sink", "logger", "org.apache.flume.sink.LoggerSink", "sinks.logger:LoggerSink"),
    _e("sink", "null", "org.apache.flume.sink.NullSink", "sinks.null:NullSink"),
    _e("sink", "file_roll", "org.apache.flume.sink.RollingFileSink", "sinks.file_roll:RollingFileSink"),
    _e("sink", "hdfs", "org.apache.flume.sink.hdfs.HDFSEventSink", "sinks.hdfs:HDFSEventSink"),
    _e("sink", "avro", "org.apache.flume.sink.AvroSink", "sinks.avro:AvroSink"),
    _e("sink", "kafka", "org.apache.flume.sink.kafka.KafkaSink", "sinks.kafka:KafkaSink"),
    _e("sink", "hbase2", "org.apache.flume.sink.hbase2.HBase2Sink", "sinks.hbase:HBase2Sink"),
    _e("sink", "hbase", "org.apache.flume.sink.hbase.HBaseSink", "sinks.hbase:HBaseSink"),
    _e("sink", "asynchbase", "org.apache.flume.sink.hbase.AsyncHBaseSink", "sinks.hbase:AsyncHBaseSink"),
    _e("sink", "http", "org.apache.flume.sink.http.HttpSink", "sinks.http:HttpSink"),
    _e("sink", "irc", "org.apache.flume.sink.irc.IRCSink", "sinks.irc:IRCSink"),
    _e("sink", "thrift", "org.apache.flume.sink.ThriftSink", "sinks.thrift:ThriftSink"),
    _e("sink", "hive", "org.apache.flume.sink.hive.HiveSink", "sinks.hive:HiveSink"),
    # HTTP source handlers (the http source's handler)
    _e("http_handler", None, "org.apache.flume.source.http.JSONHandler", "sources.http.handlers:JSONHandler"),
    _e("http_handler", None, "org.apache.flume.sink.solr.morphline.BlobHandler", "sources.http.handlers:BlobHandler"),
    _e("http_handler", None, "org.apache.flume.source.http.BLOBHandler", "sources.http.handlers:BLOBHandler"),
    # Spooling directory deserializers (the spooldir source's deserializer)
    _e("deserializer", "LINE", "org.apache.flume.serialization.LineDeserializer$Builder",
       "sources.deserializers:LineDeserializer"),
    _e("deserializer", "AVRO", "org.apache.flume.serialization.AvroEventDeserializer$Builder",
       "sources.deserializers:AvroDeserializer"),
    _e("deserializer", None, "org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder",
       "sources.deserializers:BlobDeserializer"),
    # Channel selectors
    _e("selector", "replicating", "org.apache.flume.channel.ReplicatingChannelSelector",
       "channels.selectors:ReplicatingChannelSelector"),
    _e("selector", "multiplexing", "org.apache.flume.channel.MultiplexingChannelSelector",
       "channels.selectors:MultiplexingChannelSelector"),
    _e("selector", "load_balancing", "org.apache.flume.channel.LoadBalancingChannelSelector",
       "channels.selectors:LoadBalancingChannelSelector"),
    # Sink processors
    _e("processor", "default", "org.apache.flume.sink.DefaultSinkProcessor", "sinks.processors:DefaultSinkProcessor"),
    _e("processor", "failover", "org.apache.flume.sink.FailoverSinkProcessor",
       "sinks.processors:FailoverSinkProcessor"),
    _e("processor", "load_balance", "org.apache.flume.sink.LoadBalancingSinkProcessor",
       "sinks.processors:LoadBalancingSinkProcessor"),
    # Interceptors
    _e("interceptor", "timestamp", "org.apache.flume.interceptor.TimestampInterceptor$Builder",
       "interceptors.headers:TimestampInterceptor"),
    _e("interceptor", "host", "org.apache.flume.interceptor.HostInterceptor$Builder",
       "interceptors.headers:HostInterceptor"),
    _e("interceptor", "static", "org.apache.flume.interceptor.StaticInterceptor$Builder",
       "interceptors.headers:StaticInterceptor"),
    _e("interceptor", "remove_header", "org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder",
       "interceptors.headers:RemoveHeaderInterceptor"),
    _e("interceptor", None, "org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder",
       "interceptors.headers:UUIDInterceptor"),
    _e("interceptor", "search_replace", "org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder",
       "interceptors.regex:SearchAndReplaceInterceptor"),
    _e("interceptor", "regex_filter", "org.apache.flume.interceptor.RegexFilteringInterceptor$Builder",
       "interceptors.regex:RegexFilteringInterceptor"),
    _e("interceptor", "regex_extractor", "org.apache.flume.interceptor.RegexExtractorInterceptor$Builder",
       "interceptors.regex:RegexExtractorInterceptor"),
    # Regex extractor serializers (serializers.<s>.type of the regex_extractor interceptor)
    _e("extractor_serializer", "default",
       "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer",
       "interceptors.regex:PassThroughSerializer"),
    _e("extractor_serializer", None, "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer",
       "interceptors.regex:MillisSerializer"),
    # Serializers (hdfs serializer, file_roll sink.serializer)
    _e("serializer", "text", "org.apache.flume.serialization.BodyTextEventSerializer$Builder",
       "sinks.serializers:BodyTextEventSerializer"),
    _e("serializer", "header_and_text", "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder",
       "sinks.serializers:HeaderAndBodyTextEventSerializer"),
    _e("serializer", "avro_event", "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder",
       "sinks.serializers:FlumeEventAvroEventSerializer"),
    _e("serializer", None, "org.apache.flume.sink.hdfs.AvroEventSerializer$Builder",
       "sinks.serializers:AvroEventSerializer"),
    # Path managers (file_roll sink.pathManager): how the files are named
    _e("path_manager", "DEFAULT", "org.apache.flume.formatter.output.DefaultPathManager$Builder",
       "sinks.file_roll:PathManager"),
    _e("path_manager", "ROLLTIME", "org.apache.flume.formatter.output.RollTimePathManager$Builder",
       "sinks.file_roll:RollTimePathManager"),
    # HBase sink serializers (the HBase 1, HBase 2 and asynchbase names of the same two serializers)
    _e("hbase_serializer", None, "org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer",
       "sinks.hbase:SimpleHbaseEventSerializer"),
    _e("hbase_serializer", None, "org.apache.flume.sink.hbase.SimpleHbaseEventSerializer",
       "sinks.hbase:SimpleHbaseEventSerializer"),
    _e("hbase_serializer", None, "org.apache.flume.sink.hbase.SimpleAsyncHbaseEventSerializer",
       "sinks.hbase:SimpleHbaseEventSerializer"),
    _e("hbase_serializer", None, "org.apache.flume.sink.hbase2.RegexHBase2EventSerializer",
       "sinks.hbase:RegexHbaseEventSerializer"),
    _e("hbase_serializer", None, "org.apache.flume.sink.hbase.RegexHbaseEventSerializer",
       "sinks.hbase:RegexHbaseEventSerializer"),
]

FAMILIES = {
    "source": ("agent.core", "Source"),
    "channel": ("agent.core", "Channel"),
    "sink": ("agent.core", "Sink"),
    "selector": ("agent.core", "ChannelSelector"),
    "processor": ("agent.core", "SinkProcessor"),
    "interceptor": ("agent.core", "Interceptor"),
    "serializer": ("sinks.serializers", "EventSerializer"),
    "hbase_serializer": ("sinks.hbase", "HbaseEventSerializer"),
    "extractor_serializer": ("interceptors.regex", "RegexExtractorSerializer"),
    "path_manager": ("sinks.file_roll", "PathManager"),
    "http_handler": ("sources.http", "HTTPSourceHandler"),
    "deserializer": ("sources.deserializers", "EventDeserializer"),
}

#: Families chosen by a property of their own (the http source's ``handler``, spooldir's ``deserializer``) rather
#: than by ``type``: their messages call a member what Flume calls it and list every name it accepts.
_NOUNS = {"http_handler": "handler", "deserializer": "deserializer"}

# Flume 1.11 components that pyflume does not provide (yet): a precise message beats "unknown type".
_NOT_YET = {
    "source": {"jms"},
    "channel": {"jdbc"},
    "sink": {"morphline_solr", "elasticsearch"},
}

_JAVA_NAME = re.compile(r"^(org|com|net|io|de|fr|uk|edu|gov)\.[\w.$]+$|.*\$[A-Z]\w*$")


def entries(family: str) -> list[Entry]:
    return [e for e in ENTRIES if e.family == family]


def _index() -> dict[tuple[str, str], Entry]:
    idx: dict[tuple[str, str], Entry] = {}
    for e in ENTRIES:
        if e.alias:
            idx[(e.family, e.alias.lower())] = e
        if e.flume_class:
            idx[(e.family, e.flume_class)] = e
    return idx


_INDEX = _index()


def register(entry: Entry) -> None:
    """Add a component type (used by later modules and by tests)."""
    ENTRIES.append(entry)
    if entry.alias:
        _INDEX[(entry.family, entry.alias.lower())] = entry
    if entry.flume_class:
        _INDEX[(entry.family, entry.flume_class)] = entry


def load_target(target: str) -> type:
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def base_class(family: str) -> type:
    module, cls = FAMILIES[family]
    return getattr(importlib.import_module(module), cls)


def aliases(family: str) -> list[str]:
    return [e.alias for e in ENTRIES if e.family == family and e.alias]


def resolve(family: str, text: str) -> type:
    """The class for ``type = text`` in a component of ``family``; ConfigError with a useful message if none."""
    name = text.strip()
    entry = _INDEX.get((family, name.lower())) or _INDEX.get((family, name))
    if entry is not None:
        try:
            return load_target(entry.target)
        except (ImportError, AttributeError) as exc:  # a missing optional dependency, say
            raise ConfigError(f"the {family} type '{name}' could not be loaded: {exc}") from None
    if name.lower() in _NOT_YET.get(family, ()):
        raise ConfigError(
            f"'{name}' is a Flume {family} type that pyflume does not provide yet; available: "
            f"{', '.join(aliases(family))}"
        )
    noun = _NOUNS.get(family)
    base = ".".join(FAMILIES[family])
    if "." not in name:
        if noun:
            names = [e.alias or e.flume_class for e in ENTRIES if e.family == family]
            raise ConfigError(f"unknown {noun} '{name}'; expected {', '.join(n for n in names if n)}, or a dotted "
                              f"Python path to a subclass of {base}")
        raise ConfigError(
            f"unknown {family} type '{name}'; expected one of {', '.join(aliases(family))}, a Flume class name, "
            f"or a dotted Python path to your own class (package.module.Class)"
        )
    module_name, _, cls_name = name.replace("$Builder", "").rpartition(".")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, cls_name)
    except (ImportError, AttributeError, ValueError) as exc:
        if _JAVA_NAME.match(name) and noun:
            raise ConfigError(f"'{name}' looks like a Java class; Java {noun}s cannot run in pyflume. Write it as a "
                              f"Python subclass of {base}, put it on PYTHONPATH and name it here as "
                              f"package.module.Class") from None
        if _JAVA_NAME.match(name):
            raise ConfigError(
                f"'{name}' looks like a Java class; Java plugins cannot run in pyflume. Write the equivalent as a "
                f"Python class that subclasses {base}, put it on PYTHONPATH and name it "
                f"here as package.module.Class (see docs/custom-components.md)"
            ) from None
        raise ConfigError(f"cannot load {noun or family + ' class'} '{name}': {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, base_class(family))):
        raise ConfigError(f"'{name}' is not a {noun or family}: it must subclass {base}")
    return cls
