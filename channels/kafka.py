"""The Kafka channel: a Kafka topic as a replicated, durable channel (Flume's KafkaChannel).

Put: the transaction's events are produced when it commits; the commit returns only when Kafka acknowledged every
record (``kafka.producer.acks = all`` by default), otherwise it raises and the source keeps its batch. Take: each
thread that takes (one per sink runner) has its own consumer in the channel's consumer group; a commit commits that
consumer's offsets synchronously; a rollback puts the taken events back in front of that thread's queue, so they are
taken again first (as Flume's failedEvents list does). Records are AvroFlumeEvent datums (``parseAsFlumeEvent``), so
Flume agents and pyflume agents can share a channel topic, or feed it from a Kafka sink with useFlumeEventFormat.

The channel holds no events of its own: restarting the agent (or a hot reload) loses nothing, and its size is not
known locally (ChannelSize stays 0, as in Flume).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from agent.avro_event import AvroEventError, decode_event, encode_event
from agent.core import Channel, ChannelException, Event, Transaction
from agent.kafka_clients import ConsumerWatch, Producer, commit, subscribed_consumer
from agent.kafka_conf import check_client_config, client_config, consumer_defaults
from agent.kafka_gssapi import identities
from agent.metrics import ChannelCounter
from agent.spec import Conf, Prop, Spec

__all__ = ["KafkaChannel"]

_Entry = tuple[Event, str, int, int]  # event, topic, partition, offset


class KafkaChannelCounter(ChannelCounter):
    FIELDS = ChannelCounter.FIELDS + (
        ("get_timer", "KafkaEventGetTimer"),
        ("send_timer", "KafkaEventSendTimer"),
        ("commit_timer", "KafkaCommitTimer"),
        ("rollback", "RollbackCount"),
    )


class _Taker:
    """One taking thread's consumer and the records it has read but not yet handed out."""

    def __init__(self) -> None:
        self.consumer = None
        self.watch = ConsumerWatch()
        self.buf: list[_Entry] = []
        self.pos = 0

    def revoke(self, consumer, partitions) -> None:  # noqa: ANN001
        gone = {(p.topic, p.partition) for p in partitions}
        self.buf = [e for e in self.buf[self.pos:] if (e[1], e[2]) not in gone]
        self.pos = 0


class KafkaChannel(Channel):
    """Events live in a Kafka topic between their put and their take."""

    alias = "kafka"
    flume_class = "org.apache.flume.channel.kafka.KafkaChannel"
    durable = True
    spec = Spec(
        Prop("kafka.bootstrap.servers", "str", required=True, doc="Brokers to connect to (host:port, comma list).",
             aliases=("brokerList",)),
        Prop("kafka.topic", "str", "flume-channel", "The topic that holds the channel's events.",
             aliases=("topic",)),
        Prop("kafka.consumer.group.id", "str", "flume", "Consumer group of the taking side; give each channel its "
             "own.", aliases=("groupId",)),
        Prop("parseAsFlumeEvent", "bool", True, "Records are AvroFlumeEvent datums with headers. false: the record "
             "value is the body and headers are dropped (for topics other programs read)."),
        Prop("kafka.pollTimeout", "int", 500, "Milliseconds a take waits for records.", min=0,
             aliases=("pollTimeout",)),
        Prop("defaultPartitionId", "int", None, "Partition every event is written to.", min=0),
        Prop("partitionIdHeader", "str", None, "Header holding the partition; overrides defaultPartitionId. A value "
             "that is not an integer fails the put."),
        Prop("kafka.producer.acks", "str", "all", "Acknowledgements a put waits for."),
        Prop("readSmallestOffset", "bool", None, "Deprecated: true reads from the earliest offset (use "
             "kafka.consumer.auto.offset.reset)."),
        Prop("migrateZookeeperOffsets", "bool", True, "Flume 1.11.0 migrates offsets kept in ZooKeeper only when "
             "zookeeperConnect is set, which pyflume refuses; without it this does nothing, as in Flume."),
        Prop("zookeeperConnect", "str", None, "Not supported (offsets live in Kafka)."),
        Prop("kafka.producer", "str", None, "Any producer setting, Java names translated for librdkafka.",
             prefix=True),
        Prop("kafka.consumer", "str", None, "Any consumer setting (auto.offset.reset defaults to earliest).",
             prefix=True),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.counter = KafkaChannelCounter()
        cfg = self.config
        self.topic = cfg.kafka_topic
        self.flume_format = cfg.parse_as_flume_event
        self.poll_timeout = cfg.kafka_poll_timeout / 1000.0
        self.partition = cfg.default_partition_id
        self.partition_header = cfg.partition_id_header
        if cfg.zookeeper_connect:
            conf.error("ZooKeeper is not supported; offsets are kept in Kafka (remove zookeeperConnect and "
                       "set kafka.bootstrap.servers)", "zookeeperConnect")
        servers = cfg.kafka_bootstrap_servers
        producer = client_config(conf, "kafka.producer.")
        producer.setdefault("acks", cfg.kafka_producer_acks)
        producer["bootstrap.servers"] = servers
        producer["delivery.report.only.error"] = True  # type: ignore[assignment]
        producer.setdefault("client.id", f"flume-channel-{name}-producer")
        consumer = client_config(conf, "kafka.consumer.")
        consumer["bootstrap.servers"] = servers
        consumer["group.id"] = cfg.kafka_consumer_group_id
        consumer["enable.auto.commit"] = "false"
        consumer["enable.auto.offset.store"] = "false"
        reset = "earliest" if cfg.read_smallest_offset in (None, True) else "latest"
        consumer.setdefault("auto.offset.reset", reset)
        consumer_defaults(consumer)
        check_client_config(conf, producer, "producer")
        check_client_config(conf, consumer, "consumer")
        self.kerberos_identities = identities(producer, consumer)  # GSSAPI keytab logins: one principal per agent
        self.producer_settings = producer
        self.consumer_settings = consumer
        self.producer: Producer | None = None
        self._local = threading.local()
        self._takers: list[_Taker] = []
        self._lock = threading.Lock()
        self._started = False

    # Lifecycle --------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.producer = Producer(self.producer_settings, self.log, f"Kafka channel {self.name}")
        self._started = True
        self.counter.started()
        self.log.info("Kafka channel %s started: topic %s on %s", self.name, self.topic,
                      self.producer_settings["bootstrap.servers"])

    def stop(self) -> None:
        self._started = False
        with self._lock:
            takers, self._takers = self._takers, []
        for t in takers:
            try:
                t.consumer.close()
            except Exception as exc:  # noqa: BLE001
                self.log.warning("Kafka channel %s: closing a consumer failed: %s", self.name, exc)
        if self.producer is not None:
            self.producer.close(5.0)
            self.producer = None
        self._local = threading.local()
        self.counter.stopped()
        self.log.info("Kafka channel %s stopped", self.name)


    def size(self) -> int:
        return 0

    def transaction(self) -> Transaction:
        return _KafkaTransaction(self)

    # Helpers used by transactions ---------------------------------------------------------------------------------
    def _taker(self) -> _Taker:
        taker = getattr(self._local, "taker", None)
        if taker is None:
            if not self._started:
                raise ChannelException(f"Kafka channel {self.name} is not started")
            taker = _Taker()
            self._subscribe(taker)
            with self._lock:
                self._takers.append(taker)
            self._local.taker = taker
        return taker

    def _subscribe(self, taker: _Taker) -> None:
        """Give ``taker`` a new consumer in the channel's group; records it had read but not handed out are
        dropped (the new consumer reads them again from the last committed offset)."""
        taker.consumer = subscribed_consumer(self.consumer_settings, self.log, f"Kafka channel {self.name}",
                                             taker.watch, [self.topic], taker.revoke, taker.consumer)
        taker.buf, taker.pos = [], 0

    def _read(self, taker: _Taker, want: int) -> None:
        started = time.monotonic()
        msgs = taker.consumer.consume(max(want, 100), self.poll_timeout)
        if not msgs:
            if taker.watch.stuck(taker.consumer):
                self._subscribe(taker)
            return
        taker.watch.progress()
        entries: list[_Entry] = []
        flume_format = self.flume_format
        for m in msgs:
            if m.error() is not None:
                if m.error().code() != -191:  # _PARTITION_EOF
                    self.log.warning("Kafka channel %s: %s", self.name, m.error().str())
                continue
            value = m.value() or b""
            if flume_format:
                try:
                    e = decode_event(value)
                except AvroEventError as exc:
                    raise ChannelException(
                        f"Kafka channel {self.name}: record {m.topic()}/{m.partition()}@{m.offset()} is not a Flume "
                        f"event ({exc}); set parseAsFlumeEvent = false for topics written by other programs") from exc
            else:
                e = Event(value, {})
            key = m.key()
            if key is not None:
                e.headers["key"] = key.decode(errors="replace")
            entries.append((e, m.topic(), m.partition(), m.offset()))
        if entries:
            taker.buf = taker.buf[taker.pos:] + entries if taker.pos < len(taker.buf) else entries
            taker.pos = 0
            self.counter.add(get_timer=int((time.monotonic() - started) * 1000))

    def _produce(self, events: Sequence[Event]) -> None:
        if self.producer is None:
            raise ChannelException(f"Kafka channel {self.name} is not started")
        producer = self.producer.begin()
        started = time.monotonic()
        topic = self.topic
        encode = encode_event if self.flume_format else (lambda e: e.body)
        for e in events:
            h = e.headers
            partition = self.partition
            if self.partition_header and self.partition_header in h:
                try:
                    partition = int(h[self.partition_header])
                except ValueError:
                    raise ChannelException(f"Kafka channel {self.name}: header {self.partition_header}="
                                           f"{h[self.partition_header]!r} is not an integer partition id") from None
            kwargs = {} if partition is None else {"partition": partition}
            while True:
                try:
                    producer.produce(topic, encode(e), h.get("key"), **kwargs)
                    break
                except BufferError:
                    producer.poll(0.1)
        failure = self.producer.flush()
        if failure:
            raise ChannelException(f"Kafka channel {self.name}: writing {len(events)} events to topic {topic} "
                                   f"failed ({failure[1]})")
        self.counter.add(send_timer=int((time.monotonic() - started) * 1000))


class _KafkaTransaction(Transaction):
    def __init__(self, channel: KafkaChannel):
        super().__init__(channel)
        self.kc = channel
        self.puts: list[Event] = []
        self.taken: list[_Entry] = []
        self.taker: _Taker | None = None

    def _put(self, events: Sequence[Event]) -> None:
        self.puts.extend(events)

    def _take(self, max_events: int) -> list[Event]:
        taker = self.taker or self.kc._taker()
        self.taker = taker
        if taker.pos >= len(taker.buf):
            self.kc._read(taker, max_events)
        chunk = taker.buf[taker.pos:taker.pos + max_events]
        taker.pos += len(chunk)
        if taker.pos >= len(taker.buf):
            taker.buf, taker.pos = [], 0
        self.taken.extend(chunk)
        return [c[0] for c in chunk]

    def _commit(self) -> None:
        if self.puts:
            self.kc._produce(self.puts)
            self.puts = []
        if self.taken:
            offsets: dict[tuple[str, int], int] = {}
            for _, t, p, o in self.taken:
                offsets[(t, p)] = o + 1
            started = time.monotonic()
            # The sink has delivered these events: a commit that fails only means they are taken again after a
            # restart (at-least-once); see agent/kafka_clients.py for why it does not wait.
            commit(self.taker.consumer, offsets, self.kc.log, f"Kafka channel {self.kc.name}")
            self.kc.counter.add(commit_timer=int((time.monotonic() - started) * 1000))
            self.taken = []

    def _rollback(self) -> None:
        self.puts = []
        if self.taken:
            taker = self.taker
            assert taker is not None
            taker.buf = self.taken + taker.buf[taker.pos:]
            taker.pos = 0
            self.kc.counter.add(rollback=len(self.taken))
            self.taken = []
