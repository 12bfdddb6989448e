"""Kafka source, sink and channel over SSL with keytool's Java stores, against the session's real broker (its SSL
listener serves a JKS key store; see tests/peers/kafka.py). The clients name their stores as Flume's Java clients
do (``ssl.truststore.location`` / ``ssl.keystore.location``); pyflume reads them and hands librdkafka PEM."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conftest import assert_exactly_once, free_port, rolled_lines, send_lines, wait_for_events

pytest.importorskip("confluent_kafka")
pytestmark = pytest.mark.peer

PIPELINE = """\
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.channel = c1
a1.sinks.k1.kafka.bootstrap.servers = {servers}
a1.sinks.k1.kafka.topic = {topic}
a1.sinks.k1.flumeBatchSize = 500
a1.sinks.k1.kafka.producer.security.protocol = SSL
a1.sinks.k1.kafka.producer.ssl.truststore.location = {stores.trust_jks}
a1.sinks.k1.kafka.producer.ssl.truststore.password = changeit
a1.sinks.k1.kafka.producer.ssl.truststore.type = JKS
a1.sources.r2.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r2.channels = c2
a1.sources.r2.kafka.bootstrap.servers = {servers}
a1.sources.r2.kafka.topics = {topic}
a1.sources.r2.kafka.consumer.group.id = g-{topic}
a1.sources.r2.kafka.consumer.auto.offset.reset = earliest
a1.sources.r2.kafka.consumer.security.protocol = SSL
a1.sources.r2.kafka.consumer.ssl.truststore.location = {stores.trust_p12}
a1.sources.r2.kafka.consumer.ssl.truststore.password = changeit
a1.sources.r2.kafka.consumer.ssl.keystore.location = {stores.server_jceks}
a1.sources.r2.kafka.consumer.ssl.keystore.password = storepass
a1.sources.r2.kafka.consumer.ssl.key.password = keypass1
a1.sources.r2.batchSize = 1000
a1.sources.r2.batchDurationMillis = 200
a1.channels.c2.type = org.apache.flume.channel.kafka.KafkaChannel
a1.channels.c2.kafka.bootstrap.servers = {servers}
a1.channels.c2.kafka.topic = chan-{topic}
a1.channels.c2.kafka.consumer.group.id = chan-{topic}
a1.channels.c2.kafka.producer.security.protocol = SSL
a1.channels.c2.kafka.producer.ssl.truststore.location = {stores.trust_jks}
a1.channels.c2.kafka.producer.ssl.truststore.password = changeit
a1.channels.c2.kafka.consumer.security.protocol = SSL
a1.channels.c2.kafka.consumer.ssl.truststore.location = {stores.trust_jks}
a1.channels.c2.kafka.consumer.ssl.truststore.password = changeit
a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = c2
a1.sinks.k2.sink.directory = {out}
a1.sinks.k2.sink.rollInterval = 0
a1.sinks.k2.sink.batchSize = 1000
"""


def test_source_sink_and_channel_over_ssl_with_java_trust_stores(kafka_broker, java_stores, run_agent,
                                                                 tmp_path: Path) -> None:
    """netcat -> memory -> Kafka sink (JKS trust store) -> topic -> Kafka source (PKCS12 trust store, JCEKS key
    store with its own key password) -> Kafka channel (JKS trust store) -> file_roll: every line once, every hop
    over the broker's SSL listener, the broker's certificate verified (host name included)."""
    port, out, topic = free_port(), tmp_path / "out", f"ssl-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    agent = run_agent(PIPELINE.format(port=port, servers=kafka_broker.ssl_bootstrap, topic=topic,
                                      stores=java_stores, out=out))
    agent.wait_for_port(port)
    lines = [f"ssl-{i:05d}".encode() for i in range(5000)]
    send_lines(port, lines)
    wait_for_events(lines, lambda: rolled_lines(out), logs=[agent], timeout=120)
    assert agent.terminate() == 0
    assert_exactly_once(lines, rolled_lines(out), logs=[agent])
    assert "storepass" not in agent.log() and "PRIVATE KEY" not in agent.log()
