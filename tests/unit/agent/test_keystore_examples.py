"""The user guide's key store examples pass ``--check`` as written, with their placeholder paths and passwords
replaced by stores keytool made (tests/peers/keytool.py): Kafka's SSL examples for the source, sink and channel
(server authentication, then client authentication too), the global ``FLUME_SSL_*`` / ``-Djavax.net.ssl.*``
settings, and TLS on the avro, http and syslog sources."""

from __future__ import annotations

import pytest

from agent import config, tls

pytest.importorskip("confluent_kafka")

KAFKA = """\
a1.sources = source1
a1.channels = channel1 c2
a1.sinks = sink1
a1.sources.source1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.source1.channels = channel1
a1.sources.source1.kafka.bootstrap.servers = kafka-1:9093,kafka-2:9093,kafka-3:9093
a1.sources.source1.kafka.topics = mytopic
a1.sources.source1.kafka.consumer.group.id = flume-consumer
a1.sources.source1.kafka.consumer.security.protocol = SSL
# optional, the global truststore can be used alternatively
a1.sources.source1.kafka.consumer.ssl.truststore.location=/path/to/truststore.jks
a1.sources.source1.kafka.consumer.ssl.truststore.password=<password to access the truststore>
a1.sources.source1.kafka.consumer.ssl.endpoint.identification.algorithm=HTTPS
# optional, the global keystore can be used alternatively
a1.sources.source1.kafka.consumer.ssl.keystore.location=/path/to/client.keystore.jks
a1.sources.source1.kafka.consumer.ssl.keystore.password=<password to access the keystore>
a1.sources.source1.kafka.consumer.ssl.key.password=<password to access the key>
a1.channels.channel1.type = org.apache.flume.channel.kafka.KafkaChannel
a1.channels.channel1.kafka.bootstrap.servers = kafka-1:9093,kafka-2:9093,kafka-3:9093
a1.channels.channel1.kafka.topic = channel
a1.channels.channel1.kafka.consumer.group.id = flume-consumer
a1.channels.channel1.kafka.producer.security.protocol = SSL
a1.channels.channel1.kafka.producer.ssl.truststore.location = /path/to/truststore.jks
a1.channels.channel1.kafka.producer.ssl.truststore.password = <password to access the truststore>
a1.channels.channel1.kafka.producer.ssl.keystore.location = /path/to/client.keystore.jks
a1.channels.channel1.kafka.producer.ssl.keystore.password = <password to access the keystore>
a1.channels.channel1.kafka.producer.ssl.key.password = <password to access the key>
a1.channels.channel1.kafka.consumer.security.protocol = SSL
a1.channels.channel1.kafka.consumer.ssl.truststore.location = /path/to/truststore.jks
a1.channels.channel1.kafka.consumer.ssl.truststore.password = <password to access the truststore>
a1.channels.c2.type = memory
a1.sinks.sink1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.sink1.channel = channel1
a1.sinks.sink1.kafka.bootstrap.servers = kafka-1:9093,kafka-2:9093,kafka-3:9093
a1.sinks.sink1.kafka.topic = mytopic
a1.sinks.sink1.kafka.producer.security.protocol = SSL
a1.sinks.sink1.kafka.producer.ssl.truststore.location = /path/to/truststore.jks
a1.sinks.sink1.kafka.producer.ssl.truststore.password = <password to access the truststore>
a1.sinks.sink1.kafka.producer.ssl.keystore.location = /path/to/client.keystore.jks
a1.sinks.sink1.kafka.producer.ssl.keystore.password = <password to access the keystore>
a1.sinks.sink1.kafka.producer.ssl.key.password = <password to access the key>
"""

SOURCES = """\
a1.sources = r1 r2 r3
a1.channels = c1
a1.sources.r1.type = avro
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 4141
a1.sources.r1.ssl = true
a1.sources.r1.channels = c1
a1.sources.r2.type = http
a1.sources.r2.port = 5140
a1.sources.r2.ssl = true
a1.sources.r2.keystore = /path/to/keystore.jks
a1.sources.r2.keystore-password = password
a1.sources.r2.keystore-type = JKS
a1.sources.r2.channels = c1
a1.sources.r3.type = syslogtcp
a1.sources.r3.port = 5141
a1.sources.r3.host = 127.0.0.1
a1.sources.r3.ssl = true
a1.sources.r3.channels = c1
a1.channels.c1.type = memory
"""


def _real(text: str, stores) -> str:  # noqa: ANN001
    return (text.replace("/path/to/truststore.jks", str(stores.trust_jks))
            .replace("/path/to/client.keystore.jks", str(stores.server_jks))
            .replace("/path/to/keystore.jks", str(stores.server_same_jks))
            .replace("<password to access the truststore>", "changeit")
            .replace("<password to access the keystore>", "storepass")
            .replace("<password to access the key>", "keypass1")
            .replace("keystore-password = password", "keystore-password = storepass"))


def test_kafka_ssl_examples(tmp_path, java_stores) -> None:
    f = tmp_path / "kafka.conf"
    f.write_text(_real(KAFKA, java_stores))
    topo, problems = config.check([str(f)], "a1")
    assert topo is not None and not [p for p in problems if p.severity == "error"], [str(p) for p in problems]
    for settings in (topo.sources["source1"].settings, topo.sinks["sink1"].settings,
                     topo.channels["channel1"].producer_settings):
        assert settings["ssl.ca.pem"] == settings["ssl.certificate.pem"] == java_stores.server_pem.read_text()
    assert topo.channels["channel1"].consumer_settings["ssl.ca.pem"] == java_stores.server_pem.read_text()


@pytest.mark.parametrize("how", ["environment", "system properties"])
def test_global_ssl_settings_and_tls_sources(tmp_path, java_stores, monkeypatch, how) -> None:
    """The avro and syslog sources take Flume's global key store (FLUME_SSL_* or -Djavax.net.ssl.*, a JKS file)."""
    f = tmp_path / "tls.conf"
    f.write_text(_real(SOURCES, java_stores))
    sysprops: dict[str, str] = {}
    if how == "environment":
        monkeypatch.setenv("FLUME_SSL_KEYSTORE_PATH", str(java_stores.server_same_jks))
        monkeypatch.setenv("FLUME_SSL_KEYSTORE_PASSWORD", "storepass")
        monkeypatch.setenv("FLUME_SSL_KEYSTORE_TYPE", "JKS")
    else:
        sysprops = {"javax.net.ssl.keyStore": str(java_stores.server_p12),
                    "javax.net.ssl.keyStorePassword": "storepass", "javax.net.ssl.keyStoreType": "PKCS12"}
    try:
        topo, problems = config.check([str(f)], "a1", sysprops)
        assert topo is not None and not problems, [str(p) for p in problems]
        for name in ("r1", "r3"):
            assert topo.sources[name]._tls.context() is not None  # the key and certificate load
    finally:
        tls.use_system_properties({})
