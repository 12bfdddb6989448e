"""The Kafka source: a consumer-group member that turns Kafka records into Flume events.

Each ``process()`` collects up to batchSize records, or what arrived within batchDurationMillis, hands them to the
channels as one batch, and only then commits the consumed offsets (without waiting: see agent/kafka_clients.py).
A batch the channel refuses is kept and offered again on the next call, before anything new is read: nothing is
skipped and nothing is committed that is not in a channel. After a crash, the records since the last commit are
read again (at-least-once).

Headers, as Flume sets them (each only when not already present, which matters with useFlumeEventFormat):
``timestamp`` (the record's timestamp, ms), ``topic`` (the topicHeader, when setTopicHeader), ``partition``,
``offset``; ``key`` is the record key whenever there is one; ``header.<flume> = <kafka>`` copies record headers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from agent.avro_event import AvroEventError, decode_event
from agent.core import POLL_BACKOFF, Batch, ChannelException, Event, PollableSource, Status
from agent.kafka_clients import ConsumerWatch, commit, subscribed_consumer
from agent.kafka_conf import check_client_config, client_config, consumer_defaults
from agent.kafka_gssapi import identities
from agent.metrics import SourceCounter
from agent.spec import Conf, Prop, Spec

__all__ = ["KafkaSource"]


class KafkaSourceCounter(SourceCounter):
    """Flume's KafkaSourceCounter: the source counters without the *Fail ones, plus Kafka's own. The *Fail ones
    are still kept (Source.deliver counts a refusal), only not shown, as in Flume."""

    FIELDS = tuple(f for f in SourceCounter.FIELDS if not f[1].endswith("Fail")) + (
        ("get_timer", "KafkaEventGetTimer"),
        ("commit_timer", "KafkaCommitTimer"),
        ("empty", "KafkaEmptyCount"),
    )


class KafkaSource(PollableSource):
    """Reads records from Kafka topics as a member of a consumer group."""

    alias = "kafka"
    flume_class = "org.apache.flume.source.kafka.KafkaSource"
    spec = Spec(
        Prop("kafka.bootstrap.servers", "str", required=True, doc="Brokers to connect to (host:port, comma list)."),
        Prop("kafka.topics", "list", None, "Topics to read, comma-separated.", sep=",", aliases=("topic",)),
        Prop("kafka.topics.regex", "str", None, "A regular expression of topics to subscribe to; wins over "
             "kafka.topics."),
        Prop("kafka.consumer.group.id", "str", "flume", "Consumer group; sources with the same group share the "
             "partitions.", aliases=("groupId",)),
        Prop("batchSize", "int", 1000, "Most records per channel transaction.", min=1),
        Prop("batchDurationMillis", "int", 1000, "Longest time (ms) a batch is collected before it is written.",
             min=1),
        Prop("backoffSleepIncrement", "int", 1000, "Backoff step (ms) after an empty poll or a refused batch.",
             min=1),
        Prop("maxBackoffSleep", "int", 5000, "Longest backoff (ms).", min=1),
        Prop("useFlumeEventFormat", "bool", False, "Values are AvroFlumeEvent datums (as written by a Kafka sink "
             "with useFlumeEventFormat or a Kafka channel): their headers become the event's headers."),
        Prop("setTopicHeader", "bool", True, "Put the record's topic in the topicHeader header."),
        Prop("topicHeader", "str", "topic", "Header name for the topic."),
        Prop("timestampHeader", "str", None, "Documented by Flume for the source but not used by it (the "
             "timestamp header always holds the record timestamp); accepted and ignored likewise."),
        Prop("header", "str", None, "header.<flumeName> = <kafkaHeaderName>: copy a record header into the "
             "event.", prefix=True),
        Prop("kafka.consumer", "str", None, "Any consumer setting (session.timeout.ms, security.protocol, sasl.*, "
             "ssl.*, ...), Java names translated for librdkafka. auto.offset.reset is latest, as in Flume: a new "
             "group starts at the end of the topic; set kafka.consumer.auto.offset.reset = earliest to read what "
             "is already there.", prefix=True),
        Prop("migrateZookeeperOffsets", "bool", True, "Flume 1.11.0 migrates offsets kept in ZooKeeper only when "
             "zookeeperConnect is set, which pyflume refuses; without it this does nothing, as in Flume."),
        Prop("zookeeperConnect", "str", None, "Not supported (ZooKeeper-based consumers are gone since Kafka 4)."),
        extends=POLL_BACKOFF,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.counter = KafkaSourceCounter()
        config = self.config
        self.batch: int = config.batch_size
        self.duration = config.batch_duration_millis / 1000.0
        self.flume_format: bool = config.use_flume_event_format
        self.set_topic: bool = config.set_topic_header
        self.topic_header: str = config.topic_header
        self.header_map: dict[str, str] = config.header
        self.topics = self._topics(conf)
        if config.zookeeper_connect:
            conf.error("ZooKeeper is not supported; offsets are kept in Kafka (remove zookeeperConnect and "
                       "set kafka.bootstrap.servers)", "zookeeperConnect")
        settings = client_config(conf, "kafka.consumer.")
        settings["bootstrap.servers"] = config.kafka_bootstrap_servers
        settings["group.id"] = config.kafka_consumer_group_id
        settings["enable.auto.commit"] = "false"
        settings["enable.auto.offset.store"] = "false"
        # Flume's source leaves the Java client's default: a group with no committed offset starts at the end.
        settings.setdefault("auto.offset.reset", "latest")
        settings.setdefault("client.id", f"flume-{name}")
        consumer_defaults(settings)
        check_client_config(conf, settings, "consumer")
        self.kerberos_identities = identities(settings)  # GSSAPI keytab logins: one principal per agent
        self.settings = settings
        self.consumer = None
        self._pending: tuple[Sequence[Event], dict[tuple[str, int], int]] | None = None
        self._revocations = 0  # partitions revoked so far (a batch that saw one reads every offset)
        self._watch = ConsumerWatch()

    def _topics(self, conf: Conf) -> list[str]:
        """kafka.topics.regex (subscribed as a pattern) or the kafka.topics list; an error when neither is set."""
        regex = self.config.kafka_topics_regex
        if regex:
            try:
                re.compile(regex)
            except re.error as exc:
                conf.error(f"not a valid regular expression: {exc}", "kafka.topics.regex")
            return ["^" + regex.lstrip("^")]  # librdkafka subscribes by regex when a name starts with ^
        topics = [t.strip() for t in self.config.kafka_topics or [] if t.strip()]
        if not topics:
            conf.error("set kafka.topics (a comma list) or kafka.topics.regex", None)
        return topics

    # Lifecycle --------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._subscribe()
        self.log.info("Kafka source %s started: topics %s, group %s on %s", self.name, ", ".join(self.topics),
                      self.settings["group.id"], self.settings["bootstrap.servers"])

    def _subscribe(self, replacing=None) -> None:  # noqa: ANN001
        self.consumer = subscribed_consumer(self.settings, self.log, f"Kafka source {self.name}", self._watch,
                                            self.topics, self._on_revoke, replacing)

    def stop(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            try:
                consumer.close()  # leaves the group at once, so the partitions move without a session timeout
            except Exception as exc:  # noqa: BLE001
                self.log.warning("Kafka source %s: closing the consumer failed: %s", self.name, exc)
        self.log.info("Kafka source %s stopped", self.name)


    def _on_revoke(self, consumer, partitions) -> None:  # noqa: ANN001
        self._revocations += 1
        # A batch the channel refused belongs to partitions that may now go to another member: drop it; the new
        # owner starts from the last committed offset, so those records are read again, not lost.
        if self._pending is not None:
            self.log.info("Kafka source %s: partitions revoked; %d unwritten records will be read again by their "
                          "next owner", self.name, len(self._pending[0]))
            self._pending = None

    # Reading ----------------------------------------------------------------------------------------------------
    def process(self) -> Status:
        consumer = self.consumer
        if consumer is None:
            return Status.BACKOFF
        if self._pending is None:
            started = time.monotonic()
            events, offsets = self._collect(consumer)
            if not events:
                self.counter.add(empty=1)
                if self._watch.stuck(consumer):  # unwritten records are read again by the new consumer
                    self._pending = None
                    self._subscribe(replacing=consumer)
                return Status.BACKOFF
            self._watch.progress()
            self.counter.add(get_timer=int((time.monotonic() - started) * 1000))
            self._pending = (events, offsets)
        events, offsets = self._pending
        try:
            self.deliver(events)
        except ChannelException as exc:
            self.log.warning("Kafka source %s: the channel refused %d events (%s); retrying them", self.name,
                             len(events), exc)
            return Status.BACKOFF
        self._pending = None
        started = time.monotonic()
        self._commit(consumer, offsets)
        self.counter.add(commit_timer=int((time.monotonic() - started) * 1000))
        return Status.READY

    def _commit(self, consumer, offsets: dict[tuple[str, int], int]) -> None:  # noqa: ANN001
        commit(consumer, {tp: o + 1 for tp, o in offsets.items()}, self.log, f"Kafka source {self.name}")

    def _collect(self, consumer) -> tuple[Sequence[Event], dict[tuple[str, int], int]]:  # noqa: ANN001
        """Up to batchSize records, or what arrived within batchDurationMillis, and the last offset read of each
        partition."""
        records: list = []  # kept as they are until the batch is made
        deadline = time.monotonic() + self.duration
        revocations = self._revocations
        while len(records) < self.batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            msgs = consumer.consume(self.batch - len(records), remaining)
            if not msgs:
                break
            good = [m for m in msgs if m.error() is None]
            if len(good) != len(msgs):
                for m in msgs:
                    err = m.error()
                    if err is not None and err.code() != -191:  # _PARTITION_EOF is informational
                        self.log.warning("Kafka source %s: %s", self.name, err.str())
            records += good
        # The last offset of each partition, read from the end. With no revocation during the batch its records
        # all belong to partitions still assigned, so the scan stops once each of those is seen (one record per
        # partition when every partition had records); after a revocation it reads every record.
        offsets: dict[tuple[str, int], int] = {}
        assigned = set()
        if records and self._revocations == revocations:
            assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        early = bool(assigned)
        for m in reversed(records):
            key = (m.topic(), m.partition())
            if key not in offsets:
                offsets[key] = m.offset()
                assigned.discard(key)
                if early and not assigned:
                    break
        if self.flume_format or self.header_map:
            return [self._event(m) for m in records], offsets
        # Plain records: the bodies now; Flume's per-record headers (timestamp, topic, partition, offset, key) only
        # if a component needs the events (a null or text sink never does)
        return Batch([m.value() or b"" for m in records], headers=lambda: self._plain_headers(records)), offsets

    def _plain_headers(self, records: list) -> list[dict[str, str]]:
        """Flume's headers of plain records (no useFlumeEventFormat, no header mapping), as ``_event`` makes them."""
        return [_with_key(self._record_headers(m), m) for m in records]

    def _record_headers(self, m) -> dict[str, str]:  # noqa: ANN001
        """timestamp, the topic (topicHeader, when setTopicHeader), partition and offset, in Flume's order."""
        h = {"timestamp": str(m.timestamp()[1])}
        if self.set_topic:
            h[self.topic_header] = m.topic()
        h["partition"] = str(m.partition())
        h["offset"] = str(m.offset())
        return h

    def _event(self, m) -> Event:  # noqa: ANN001
        """One record as an event with Flume's headers (see the module docstring)."""
        value = m.value() or b""
        if self.flume_format:
            try:
                e = decode_event(value)
            except AvroEventError as exc:
                self.log.error("Kafka source %s: record %s/%d@%d is not an AvroFlumeEvent (%s); check "
                               "useFlumeEventFormat. It is passed on as a plain body.", self.name, m.topic(),
                               m.partition(), m.offset(), exc)
                e = Event(value, {})
            h = e.headers
            for k, v in self._record_headers(m).items():  # the event's own headers win
                h.setdefault(k, v)
        else:
            h = self._record_headers(m)
            e = Event(value, h)
        if self.header_map:
            kh = m.headers()
            if kh:
                for flume_name, kafka_name in self.header_map.items():
                    for k, v in kh:
                        if k == kafka_name and v is not None:
                            h[flume_name] = v.decode(errors="replace")
        _with_key(h, m)
        return e


def _with_key(h: dict[str, str], m) -> dict[str, str]:  # noqa: ANN001
    """``h`` with the record's key, when it has one, as the last header (Flume's ``key``)."""
    key = m.key()
    if key is not None:
        h["key"] = key.decode(errors="replace")
    return h
