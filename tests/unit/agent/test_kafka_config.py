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
    ("a1.sinks.k1.kafka.producer.acks = banana\n",
     "k.conf:13: a1.sinks.k1 (org.apache.flume.sink.kafka.KafkaSink): kafka.producer.acks: librdkafka refuses"),
    ("a1.channels.c1.kafka.consumer.no.such.thing = 1\n",
     "k.conf:13: a1.channels.c1 (org.apache.flume.channel.kafka.KafkaChannel): kafka.consumer.no.such.thing: "
     "librdkafka refuses the consumer settings: No such configuration property"),
    ("a1.sources.r1.zookeeperConnect = 127.0.0.1:2181\n", "zookeeperConnect: ZooKeeper is not supported"),
    ("a1.sinks.k1.kafka.producer.security.protocol = SASL_PLAINTEXT\n"
     "a1.sinks.k1.kafka.producer.sasl.mechanism = GSSAPI\n",
     "k.conf:14: a1.sinks.k1 (org.apache.flume.sink.kafka.KafkaSink): kafka.producer.sasl.mechanism: set "
     "sasl.kerberos.service.name (the brokers' principal name, usually 'kafka')"),
    ("a1.sources.r1.kafka.topics.regex = (unclosed\n", "kafka.topics.regex: not a valid regular expression"),
])
def test_what_cannot_work_is_refused_with_its_line(tmp_path, extra, expected):
    topo, errors = build(tmp_path, extra)
    assert topo is None
    assert any(expected in e for e in errors), errors


def test_migrate_zookeeper_offsets_true_is_flume_1_11_default_and_does_nothing(tmp_path):
    # Flume 1.11.0: migrateZookeeperOffsets defaults to true and only acts with zookeeperConnect set.
    topo, errors = build(tmp_path, "a1.sources.r1.migrateZookeeperOffsets = true\n"
                                   "a1.channels.c1.migrateZookeeperOffsets = true\n")
    assert not errors, errors
    assert topo.sources["r1"].config.migrate_zookeeper_offsets is True
    assert topo.channels["c1"].config.migrate_zookeeper_offsets is True


def test_a_java_store_not_on_this_machine_is_a_warning(tmp_path):
    """As for the TLS sources: --check passes with a warning, and librdkafka gets the path, so the client fails to
    start naming the file unless it is there by then (a store that is there is read and handed over as PEM)."""
    f = tmp_path / "k.conf"
    f.write_text(BASE + "a1.sinks.k1.kafka.producer.ssl.truststore.location = /etc/ts.jks\n")
    topo, problems = config.check([str(f)], "a1")
    assert topo is not None, [str(p) for p in problems]
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        "a1.sinks.k1 (org.apache.flume.sink.kafka.KafkaSink): kafka.producer.ssl.truststore.location: warning: "
        "/etc/ts.jks is not a file here: the client cannot start until it is"]
    assert topo.sinks["k1"].settings["ssl.ca.location"] == "/etc/ts.jks"


def test_a_source_needs_topics(tmp_path):
    f = tmp_path / "k.conf"
    f.write_text(BASE.replace("a1.sources.r1.kafka.topics = a, b\n", ""))
    topo, problems = config.check([str(f)], "a1")
    assert topo is None and any("set kafka.topics" in str(p) for p in problems)


SSL_SINK = "a1.sinks.k1.kafka.producer.security.protocol = SSL\n"


def test_flume_global_ssl_settings_reach_kafka_clients(tmp_path, monkeypatch, java_stores):
    """As Flume's KafkaSSLUtil: with SSL, a key store the client leaves unset comes from -Djavax.net.ssl.* (before
    FLUME_SSL_*). Every store is read by pyflume and handed to librdkafka as PEM in memory; one that cannot be read
    is a warning."""
    from conftest import self_signed

    cert, _, p12 = self_signed(tmp_path)
    monkeypatch.setenv("FLUME_SSL_KEYSTORE_PATH", "/env/ks.p12")
    monkeypatch.setenv("FLUME_SSL_TRUSTSTORE_PATH", str(java_stores.trust_jks))  # no password: JKS is not checked
    f = tmp_path / "k.conf"
    f.write_text(BASE + SSL_SINK)
    sysprops = {"javax.net.ssl.keyStore": str(p12), "javax.net.ssl.keyStorePassword": "secret"}
    topo, problems = config.check([str(f)], "a1", sysprops)
    assert not [p for p in problems if p.severity == "error"], problems
    s = topo.sinks["k1"].settings
    assert s["ssl.certificate.pem"] == cert.read_text() and "PRIVATE KEY" in s["ssl.key.pem"]
    assert s["ssl.ca.pem"] == java_stores.server_pem.read_text()
    assert "ssl.keystore.location" not in s and "ssl.keystore.password" not in s
    assert "ssl.key.pem" not in topo.sources["r1"].settings  # no SSL there: globals do not apply

    f.write_text(BASE + SSL_SINK + f"a1.sinks.k1.kafka.producer.ssl.keystore.location = {java_stores.server_jks}\n"
                 "a1.sinks.k1.kafka.producer.ssl.keystore.password = storepass\n"
                 "a1.sinks.k1.kafka.producer.ssl.key.password = keypass1\n")
    topo, _ = config.check([str(f)], "a1", sysprops)
    assert topo.sinks["k1"].settings["ssl.certificate.pem"] == java_stores.server_pem.read_text()  # its own wins

    f.write_text(BASE + SSL_SINK)
    topo, problems = config.check([str(f)], "a1", {"javax.net.ssl.keyStore": "/etc/flume/ks.jks"})
    assert "ssl.key.pem" not in topo.sinks["k1"].settings
    assert any("cannot read /etc/flume/ks.jks" in str(p) and p.severity == "warning" for p in problems)


@pytest.mark.parametrize("store, extra, expected", [
    ("trust_jks", "ssl.truststore.password = Wr0ng!", "k.conf:14: a1.sinks.k1 (org.apache.flume.sink.kafka.KafkaSink):"
     " kafka.producer.ssl.truststore.password: {path}: the store password is wrong (the JKS integrity check fails)"),
    ("server_jceks", "ssl.keystore.password = Wr0ng!", "k.conf:14: a1.sinks.k1 (org.apache.flume.sink.kafka."
     "KafkaSink): kafka.producer.ssl.keystore.password: {path}: the store password is wrong (the JCEKS integrity "
     "check fails)"),
    ("server_jks", "ssl.keystore.password = storepass\na1.sinks.k1.kafka.producer.ssl.key.password = Wr0ng!",
     "k.conf:15: a1.sinks.k1 (org.apache.flume.sink.kafka.KafkaSink): kafka.producer.ssl.key.password: {path}: the "
     "key password does not open private key 'server'"),
    ("server_p12", "ssl.keystore.password = Wr0ng!", "k.conf:14: a1.sinks.k1 (org.apache.flume.sink.kafka."
     "KafkaSink): kafka.producer.ssl.keystore.password: {path} (PKCS12): the store password is wrong, or the file "
     "is corrupt"),
])
def test_a_java_store_that_does_not_open_is_an_error_with_its_line(tmp_path, java_stores, store, extra, expected):
    path = getattr(java_stores, store)
    kind = "truststore" if store.startswith("trust") else "keystore"
    topo, errors = build(tmp_path, f"a1.sinks.k1.kafka.producer.ssl.{kind}.location = {path}\n"
                                   f"a1.sinks.k1.kafka.producer.{extra}\n")
    assert topo is None
    assert any(expected.format(path=path) in e for e in errors), errors
    assert not any("Wr0ng" in e for e in errors)


def test_java_stores_reach_librdkafka_as_pem_in_memory(tmp_path, java_stores):
    """JKS, JCEKS and PKCS12 stores made by keytool, named as Flume's Kafka clients name them."""
    for keystore, key_password in ((java_stores.server_jks, "keypass1"), (java_stores.server_jceks, "keypass1"),
                                   (java_stores.server_p12, None)):
        extra = (f"a1.channels.c1.kafka.producer.ssl.truststore.location = {java_stores.trust_p12}\n"
                 "a1.channels.c1.kafka.producer.ssl.truststore.password = changeit\n"
                 f"a1.channels.c1.kafka.producer.ssl.keystore.location = {keystore}\n"
                 "a1.channels.c1.kafka.producer.ssl.keystore.password = storepass\n")
        if key_password:
            extra += f"a1.channels.c1.kafka.producer.ssl.key.password = {key_password}\n"
        topo, errors = build(tmp_path, extra)
        assert not errors, errors
        s = topo.channels["c1"].producer_settings
        assert s["ssl.ca.pem"] == s["ssl.certificate.pem"] == java_stores.server_pem.read_text()
        assert not any(k.startswith(("ssl.keystore", "ssl.truststore", "ssl.key.password")) for k in s)


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


class _Record:
    """What the source reads of a confluent_kafka.Message."""

    def __init__(self, partition: int, offset: int):
        self._p, self._o = partition, offset

    def error(self):  # noqa: ANN201
        return None

    def topic(self) -> str:
        return "a"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes:
        return b"%d@%d" % (self._p, self._o)

    def timestamp(self) -> tuple[int, int]:
        return 1, 1_700_000_000_000

    def key(self) -> None:
        return None


class _Part:
    def __init__(self, partition: int):
        self.topic, self.partition = "a", partition


class _Consumer:
    def __init__(self, records: list[_Record], assigned: list[int]):
        self.records, self.assigned = records, assigned

    def consume(self, n: int, timeout: float) -> list[_Record]:
        out, self.records = self.records[:n], self.records[n:]
        return out

    def assignment(self) -> list[_Part]:
        return [_Part(p) for p in self.assigned]


@pytest.mark.parametrize("assigned, revoked", [([0, 1, 2], False), ([0, 1, 2, 3], False), ([], False),
                                               ([0], True), ([], True)])
@pytest.mark.parametrize("extra", ["", "a1.sources.r1.useFlumeEventFormat = true\n"])
def test_a_batch_commits_the_last_offset_of_every_partition_it_holds(tmp_path, assigned, revoked, extra):
    """Interleaved partitions; the assignment may be larger than what the batch holds (partitions with nothing
    in it), or smaller after a revocation during the batch: every partition read gets its last offset, and no
    other."""
    topo, errors = build(tmp_path, "a1.sources.r1.batchSize = 9\n" + extra)
    assert not errors
    src = topo.sources["r1"]
    records = [_Record(p, 100 * p + i) for i in range(3) for p in (2, 0, 1)]
    consumer = _Consumer(records, assigned)
    if revoked:  # the rebalance callback runs inside consume()
        consume = consumer.consume

        def consume_and_revoke(n: int, timeout: float) -> list[_Record]:
            src._on_revoke(consumer, [_Part(1), _Part(2)])
            return consume(n, timeout)

        consumer.consume = consume_and_revoke  # type: ignore[method-assign]
    batch, offsets = src._collect(consumer)
    assert [e.body for e in batch] == [r.value() for r in records]
    assert offsets == {("a", 0): 2, ("a", 1): 102, ("a", 2): 202}
