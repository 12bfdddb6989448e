"""The Kafka sink: publishes each batch to Kafka (librdkafka through confluent-kafka) with Flume's properties.

A batch is taken from the channel, every event becomes one record (value = the body, or with useFlumeEventFormat
the AvroFlumeEvent datum of headers and body; key = the ``key`` header), the producer is flushed, and the
transaction commits only when every record of the batch has a successful delivery report. Any failure (broker
down, topic refused, record too large, timeout) rolls the whole batch back; the runner backs off and the batch is
sent again, so delivery is at-least-once, as in Flume.

Delivery reports are requested for failures only (``delivery.report.only.error``): a healthy batch costs one
``produce`` call per event and one ``flush`` per batch, with no Python callback per record.
"""

from __future__ import annotations

import time

from agent.avro_event import encode_event
from agent.core import BatchSink, Event, EventDeliveryException
from agent.kafka_clients import Producer
from agent.kafka_conf import check_client_config, client_config
from agent.kafka_gssapi import identities
from agent.metrics import SinkCounter
from agent.spec import Conf, Prop, Spec
from sinks.escapes import EscapeError, PathTemplate, has_escapes

__all__ = ["KafkaSink"]


class KafkaSinkCounter(SinkCounter):
    """Flume's KafkaSinkCounter: the sink counters without EventWriteFail/ChannelReadFail, plus Kafka's own."""

    FIELDS = tuple(f for f in SinkCounter.FIELDS if f[0] not in ("write_fail", "channel_read_fail")) + (
        ("send_timer", "KafkaEventSendTimer"),
        ("rollback", "RollbackCount"),
    )


class KafkaSink(BatchSink):
    """Writes events to a Kafka topic; commits a batch once Kafka acknowledged all of it."""

    alias = "kafka"
    flume_class = "org.apache.flume.sink.kafka.KafkaSink"
    batch_size_prop = "flumeBatchSize"
    spec = Spec(
        Prop("kafka.bootstrap.servers", "str", required=True, doc="Brokers to connect to (host:port, comma list).",
             aliases=("brokerList",)),
        Prop("kafka.topic", "str", "default-flume-topic",
             "Topic to publish to. With allowTopicOverride, the topicHeader header wins and `%{header}` escapes "
             "are applied to this value when that header is absent.", aliases=("topic",)),
        Prop("flumeBatchSize", "int", 100, "Events per transaction (and per producer flush).", min=1,
             aliases=("batchSize",)),
        Prop("kafka.producer.acks", "str", "1", "Acknowledgements the leader waits for: 0, 1 or all (-1).",
             aliases=("requiredAcks",)),
        Prop("useFlumeEventFormat", "bool", False,
             "Write the AvroFlumeEvent datum (headers and body) instead of the bare body, so a Kafka source or "
             "channel with useFlumeEventFormat/parseAsFlumeEvent gets the headers back."),
        Prop("defaultPartitionId", "int", None, "Partition every record goes to (default: Kafka's partitioner, by "
             "key).", min=0),
        Prop("partitionIdHeader", "str", None, "Header holding the partition number; overrides defaultPartitionId. "
             "A value that is not an integer fails the batch."),
        Prop("allowTopicOverride", "bool", True, "Let the topicHeader header choose the topic per event."),
        Prop("topicHeader", "str", "topic", "Header naming the topic when allowTopicOverride is true."),
        Prop("timestampHeader", "str", None, "Header holding the record timestamp (epoch ms); bad values are "
             "ignored."),
        Prop("header", "str", None, "header.<flumeName> = <kafkaName>: copy Flume headers onto Kafka record "
             "headers (UTF-8).", prefix=True),
        Prop("kafka.producer", "str", None, "Any producer setting (linger.ms, compression.type, batch.size, "
             "security.protocol, sasl.*, ssl.*), Java names translated for librdkafka.", prefix=True),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.counter = KafkaSinkCounter()
        c = self.config
        self.topic: str = c.kafka_topic
        self.topic_template = PathTemplate(self.topic) if has_escapes(self.topic) else None
        self.override: bool = c.allow_topic_override
        self.topic_header: str = c.topic_header
        self.flume_format: bool = c.use_flume_event_format
        self.partition: int | None = c.default_partition_id
        self.partition_header: str | None = c.partition_id_header
        self.timestamp_header: str | None = c.timestamp_header
        self.header_map: dict[str, str] = c.header
        #: whether every record goes to the topic (or the topic header's) with no partition, timestamp or headers
        self._simple = self.topic_template is None and self.partition is None and not self.partition_header and \
            not self.timestamp_header and not self.header_map
        settings = client_config(conf, "kafka.producer.")
        settings.setdefault("acks", c.kafka_producer_acks)
        settings["bootstrap.servers"] = c.kafka_bootstrap_servers
        settings.setdefault("client.id", f"flume-{name}")
        settings["delivery.report.only.error"] = True  # type: ignore[assignment]
        check_client_config(conf, settings, "producer")
        self.kerberos_identities = identities(settings)  # GSSAPI keytab logins: one principal per agent
        self.settings = settings
        self.producer: Producer | None = None

    def start(self) -> None:
        self.producer = Producer(self.settings, self.log, f"Kafka sink {self.name}")
        self.counter.started()
        self.log.info("Kafka sink %s started: topic %s on %s", self.name, self.topic,
                      self.settings["bootstrap.servers"])

    def stop(self) -> None:
        if self.producer is not None:
            left = self.producer.close(5.0)
            if left:
                self.log.warning("Kafka sink %s: %d records still unacknowledged at stop (their batch was not "
                                 "committed and stays in the channel)", self.name, left)
            self.producer = None
        self.counter.stopped()

    def _topic_of(self, headers: dict[str, str]) -> str:
        if not self.override:
            return self.topic
        t = headers.get(self.topic_header)
        if t is not None:
            return t
        if self.topic_template is None:
            return self.topic
        try:
            return self.topic_template.resolve(headers)
        except EscapeError as exc:
            raise EventDeliveryException(f"Kafka sink {self.name}: cannot resolve topic '{self.topic}': {exc}") \
                from exc

    def deliver(self, events: list[Event]) -> None:
        if self.producer is None:
            raise EventDeliveryException(f"Kafka sink {self.name} is not started")
        producer = self.producer.begin()
        started = time.monotonic()
        try:
            if self._simple:
                self._send_simple(producer.produce, events)
            else:
                for e in events:
                    self._send_one(producer.produce, e)
            failure = self.producer.flush()
        except BufferError as exc:  # the local queue stayed full even after waiting
            raise EventDeliveryException(f"Kafka sink {self.name}: producer queue full: {exc}") from exc
        if failure:
            self.counter.add(rollback=1)
            count, why = failure
            raise EventDeliveryException(f"Kafka sink {self.name}: {count} of {len(events)} records failed ({why}); "
                                         f"the batch is rolled back")
        self.counter.add(send_timer=int((time.monotonic() - started) * 1000))

    def _send_simple(self, produce, events: list[Event]) -> None:  # noqa: ANN001
        """The common case in one tight loop: value and key only, the topic from the topic header or kafka.topic."""
        topic = self.topic
        theader = self.topic_header if self.override else None
        encode = encode_event if self.flume_format else None
        for e in events:
            h = e.headers
            value = encode(e) if encode else e.body
            if h:
                t = (h.get(theader) if theader else None) or topic
                key = h.get("key")
            else:
                t, key = topic, None
            try:
                produce(t, value, key)
            except BufferError:  # local queue full: wait for room (served by poll)
                self._produce(produce, t, value, key, None, None, None)

    def _produce(self, produce, topic: str, value: bytes, key: str | None, partition: int | None,  # noqa: ANN001
                 timestamp: int | None, headers: list[tuple[str, bytes]] | None) -> None:
        kwargs = {}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        if headers:
            kwargs["headers"] = headers
        while True:
            try:
                produce(topic, value, key, **kwargs)
                return
            except BufferError:  # local queue full: serve delivery reports and let it drain
                self.producer.client.poll(0.1)  # type: ignore[union-attr]

    def _send_one(self, produce, e: Event) -> None:  # noqa: ANN001
        h = e.headers
        partition = self.partition
        if self.partition_header:
            v = h.get(self.partition_header)
            if v is not None:
                try:
                    partition = int(v)
                except ValueError:
                    raise EventDeliveryException(f"Kafka sink {self.name}: header {self.partition_header}={v!r} "
                                                 f"is not an integer partition id") from None
        timestamp = None
        if self.timestamp_header:
            v = h.get(self.timestamp_header)
            if v is not None:
                try:
                    timestamp = int(v)
                except ValueError:
                    self.log.warning("Invalid timestamp in header %s - %s", self.timestamp_header, v)
        kheaders = [(k, h[f].encode()) for f, k in self.header_map.items() if f in h] or None
        value = encode_event(e) if self.flume_format else e.body
        self._produce(produce, self._topic_of(h), value, h.get("key"), partition, timestamp, kheaders)
