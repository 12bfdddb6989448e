"""Kafka components' configuration: Flume's keys and defaults, Java client keys translated for librdkafka, and
what cannot work refused at --check time with its line. No broker needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config

pytest.importorskip("confluent_kafka")

BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r1.channels = c1
a1.sources.r1.kafka.bootstrap.servers = 127.0.0.1:9
a1.sources.r1.kafka.topics = a, b
a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel
a1.channels.c1.kafka.bootstrap.servers = 127.0.0.1:9
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.channel = c1
a1.sinks.k1.kafka.bootstrap.servers = 127.0.0.1:9
"""


def build(tmp_path: Path, extra: str = ""):
    f = tmp_path / "k.conf"
    f.write_text(BASE + extra)
    topo, problems = config.check([str(f)], "a1")
    return topo, [str(p) for p in problems if p.severity == "error"]


def test_flume_defaults(tmp_path):
    topo, errors = build(tmp_path)
    assert not errors
    src, ch, sink = topo.sources["r1"], topo.channels["c1"], topo.sinks["k1"]
    assert src.topics == ["a", "b"] and src.batch == 1000 and src.duration == 1.0
    assert src.settings["group.id"] == "flume" and src.settings["auto.offset.reset"] == "latest"
    assert src.settings["enable.auto.commit"] == "false"
    assert ch.topic == "flume-channel" and ch.flume_format is True and ch.poll_timeout == 0.5
    assert ch.consumer_settings["auto.offset.reset"] == "earliest" and ch.producer_settings["acks"] == "all"
    assert sink.topic == "default-flume-topic" and sink.batch_size() == 100 and sink.settings["acks"] == "1"
    assert ch.durable


def test_java_client_keys_are_translated(tmp_path):
    topo, errors = build(tmp_path, """\
a1.sinks.k1.kafka.producer.max.request.size = 2097152
a1.sinks.k1.kafka.producer.buffer.memory = 33554432
a1.sinks.k1.kafka.producer.key.serializer = org.apache.kafka.common.serialization.StringSerializer
a1.sinks.k1.kafka.producer.security.protocol = SASL_PLAINTEXT
a1.sinks.k1.kafka.producer.sasl.mechanism = PLAIN
a1.sinks.k1.kafka.producer.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required \
username="flume" password="s3cret";
a1.sinks.k1.kafka.producer.ssl.disableTLSHostnameVerification = true
a1.sources.r1.kafka.consumer.partition.assignment.strategy = \
org.apache.kafka.clients.consumer.RoundRobinAssignor
a1.sources.r1.kafka.consumer.max.poll.records = 10
a1.sources.r1.kafka.topics.regex = logs-.*
a1.sinks.k1.batchSize = 250
""")
    assert not errors, errors
    s = topo.sinks["k1"].settings
    assert s["message.max.bytes"] == "2097152" and s["queue.buffering.max.kbytes"] == "32768"
    assert s["sasl.mechanisms"] == "PLAIN" and s["sasl.username"] == "flume" and s["sasl.password"] == "s3cret"
    assert s["ssl.endpoint.identification.algorithm"] == "none" and "key.serializer" not in s
    assert topo.sinks["k1"].batch_size() == 250  # the deprecated batchSize is still read
    src = topo.sources["r1"]
    assert src.settings["partition.assignment.strategy"] == "roundrobin" and "max.poll.records" not in src.settings
    assert src.topics == ["^logs-.*"]  # the regex wins over kafka.topics


@pytest.mark.parametrize("extra, expected", [
    ("a1.sinks.k1.kafka.producer.ssl.truststore.location = /etc/ts.jks\n",
     "k.conf:13: a1.sinks.k1 (org.apache.flume.sink.kafka.KafkaSink): kafka.producer.ssl.truststore.location: "
     "Java truststores cannot be read"),
    ("a1.sinks.k1.kafka.producer.acks = banana\n",
     "k.conf:13: a1.sinks.k1 (org.apache.flume.sink.kafka.KafkaSink): kafka.producer.acks: librdkafka refuses"),
    ("a1.channels.c1.kafka.consumer.no.such.thing = 1\n",
     "k.conf:13: a1.channels.c1 (org.apache.flume.channel.kafka.KafkaChannel): kafka.consumer.no.such.thing: "
     "librdkafka refuses the consumer settings: No such configuration property"),
    ("a1.sources.r1.migrateZookeeperOffsets = true\n", "migrateZookeeperOffsets: ZooKeeper offset migration"),
    ("a1.sinks.k1.kafka.producer.security.protocol = SASL_PLAINTEXT\n"
     "a1.sinks.k1.kafka.producer.sasl.mechanism = GSSAPI\n",
     "k.conf:14: a1.sinks.k1 (org.apache.flume.sink.kafka.KafkaSink): kafka.producer.sasl.mechanism: Kerberos "
     "(GSSAPI) is not available for Kafka yet: the librdkafka in confluent-kafka's wheels is built without it; see "
     "docs/kerberos.md#kafka-gssapi"),
    ("a1.sources.r1.kafka.topics.regex = (unclosed\n", "kafka.topics.regex: not a valid regular expression"),
])
def test_what_cannot_work_is_refused_with_its_line(tmp_path, extra, expected):
    topo, errors = build(tmp_path, extra)
    assert topo is None
    assert any(expected in e for e in errors), errors


def test_a_source_needs_topics(tmp_path):
    f = tmp_path / "k.conf"
    f.write_text(BASE.replace("a1.sources.r1.kafka.topics = a, b\n", ""))
    topo, problems = config.check([str(f)], "a1")
    assert topo is None and any("set kafka.topics" in str(p) for p in problems)


SSL_SINK = "a1.sinks.k1.kafka.producer.security.protocol = SSL\n"


def test_flume_global_ssl_settings_reach_kafka_clients(tmp_path, monkeypatch):
    """As Flume's KafkaSSLUtil: with SSL, a key store the client leaves unset comes from -Djavax.net.ssl.* (before
    FLUME_SSL_*); librdkafka reads PKCS12 key stores and PEM CA files, so a Java one is a warning, not a setting."""
    from conftest import self_signed

    cert, _, p12 = self_signed(tmp_path)  # librdkafka reads both files when the client is checked
    monkeypatch.setenv("FLUME_SSL_KEYSTORE_PATH", "/env/ks.p12")
    monkeypatch.setenv("FLUME_SSL_TRUSTSTORE_PATH", str(cert))
    f = tmp_path / "k.conf"
    f.write_text(BASE + SSL_SINK)
    sysprops = {"javax.net.ssl.keyStore": str(p12), "javax.net.ssl.keyStorePassword": "secret"}
    topo, problems = config.check([str(f)], "a1", sysprops)
    assert not [p for p in problems if p.severity == "error"], problems
    s = topo.sinks["k1"].settings
    assert s["ssl.keystore.location"] == str(p12) and s["ssl.keystore.password"] == "secret"
    assert s["ssl.ca.location"] == str(cert)
    assert "ssl.keystore.location" not in topo.sources["r1"].settings  # no SSL there: globals do not apply

    own = tmp_path / "own.p12"
    own.write_bytes(p12.read_bytes())
    f.write_text(BASE + SSL_SINK + f"a1.sinks.k1.kafka.producer.ssl.keystore.location = {own}\n"
                 "a1.sinks.k1.kafka.producer.ssl.keystore.password = secret\n")
    topo, _ = config.check([str(f)], "a1", sysprops)
    assert topo.sinks["k1"].settings["ssl.keystore.location"] == str(own)  # the component's own wins

    f.write_text(BASE + SSL_SINK)
    topo, problems = config.check([str(f)], "a1", {"javax.net.ssl.keyStore": "/etc/flume/ks.jks"})
    assert "ssl.keystore.location" not in topo.sinks["k1"].settings
    assert any("is not PKCS12" in str(p) and p.severity == "warning" for p in problems)


def test_librdkafka_log_lines_are_rate_limited_per_facility(caplog):
    """A broker that is down makes librdkafka log FAIL every few hundred ms: one line per 10 s per facility.
    (confluent-kafka calls the logger with Python levels and (facility, client name, message).)"""
    import logging

    from agent.kafka_conf import client_hooks

    log = logging.getLogger("pyflume.sink.k9")
    rk_log = client_hooks(log, "Kafka sink k9", {})["logger"]
    with caplog.at_level(logging.INFO, logger="pyflume.sink.k9"):
        for _ in range(50):
            rk_log.log(logging.ERROR, "%s [%s] %s", "FAIL", "flume-k9#producer-1", "Connect to 127.0.0.1:9 failed: refused")
        rk_log.log(logging.WARNING, "%s [%s] %s", "REQTMOUT", "flume-k9#producer-1", "Timed out 1 in-flight request")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "FAIL [flume-k9#producer-1] Connect to 127.0.0.1:9 failed: refused"),
        (logging.WARNING, "REQTMOUT [flume-k9#producer-1] Timed out 1 in-flight request")]


def test_kafka_counters_keep_the_fields_they_hide():
    """Flume's Kafka counters show no *Fail attributes, but BatchSink and Source.deliver still count them: a failed
    Kafka batch must roll back with its own error, not a missing counter."""
    from sinks.kafka import KafkaSinkCounter
    from sources.kafka import KafkaSourceCounter

    sink, source = KafkaSinkCounter(), KafkaSourceCounter()
    sink.add(write_fail=1, channel_read_fail=1)
    source.add(channel_write_fail=1, event_read_fail=1)
    assert "EventWriteFail" not in sink.attributes() and "ChannelWriteFail" not in source.attributes()
    assert sink.attributes()["RollbackCount"] == "0" and source.attributes()["KafkaEmptyCount"] == "0"
