"""Kafka with Kerberos (GSSAPI) at configuration time: the JAAS login read from sasl.jaas.config or the KafkaClient
section of -Djava.security.auth.login.config, librdkafka-style settings translated for kafka-python, and what cannot
work refused with its line. No KDC or broker needed (the keytab is written here)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from agent import config, kerberos
from agent.kafka_gssapi import translate

pytest.importorskip("kafka")

BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = kafka
a1.sinks.k1.channel = c1
a1.sinks.k1.kafka.bootstrap.servers = localhost:9
a1.sinks.k1.kafka.producer.security.protocol = SASL_PLAINTEXT
a1.sinks.k1.kafka.producer.sasl.mechanism = GSSAPI
a1.sinks.k1.kafka.producer.sasl.kerberos.service.name = kafka
"""


def keytab(path: Path, *principals: str) -> Path:
    """A keytab file (MIT format 0x502) with one dummy aes256 key per principal: enough for read_keytab."""
    out = b"\x05\x02"
    for p in principals:
        names, realm = p.split("@")
        parts = names.split("/")
        entry = struct.pack(">H", len(parts)) + struct.pack(">H", len(realm)) + realm.encode()
        for c in parts:
            entry += struct.pack(">H", len(c)) + c.encode()
        entry += struct.pack(">IIBH", 1, 0, 1, 18) + struct.pack(">H", 32) + b"\0" * 32
        out += struct.pack(">i", len(entry)) + entry
    path.write_bytes(out)
    return path


def check(tmp_path: Path, extra: str = "", sysprops: dict | None = None):
    f = tmp_path / "k.conf"
    f.write_text(BASE + extra)
    topo, problems = config.check([str(f)], "a1", sysprops or {})
    return topo, [str(p) for p in problems]


@pytest.fixture(autouse=True)
def _no_jaas(monkeypatch):
    monkeypatch.delenv("JAVA_OPTS", raising=False)
    yield
    kerberos.use_system_properties({})


def test_parse_jaas_sections_with_lines():
    text = ('// Flume\nKafkaClient {\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n'
            '  keyTab="/etc/f.keytab"\n  principal="flume/h@R";\n};\n/* more */ Client { a required b=c; };\n')
    sections = kerberos.parse_jaas(text, "j.conf")
    (entry,) = sections["KafkaClient"]
    assert entry.options == {"useKeyTab": "true", "keyTab": "/etc/f.keytab", "principal": "flume/h@R"}
    assert entry.lines["keyTab"] == "j.conf:5" and entry.where == "j.conf:3"
    assert sections["Client"][0].options == {"b": "c"}
    with pytest.raises(kerberos.JaasError, match="j.conf:2"):
        kerberos.parse_jaas('X {\n m required a="open;\n', "j.conf")


def test_jaas_file_login_with_keytab(tmp_path):
    kt = keytab(tmp_path / "f.keytab", "flume/h@R")
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(f'KafkaClient {{\n com.sun.security.auth.module.Krb5LoginModule required\n useKeyTab=true\n'
                    f' keyTab="{kt}"\n principal="flume/h@R";\n}};\n')
    topo, problems = check(tmp_path, sysprops={"java.security.auth.login.config": str(jaas)})
    assert topo is not None, problems
    sink = topo.sinks["k1"]
    assert sink.settings["sasl.kerberos.principal"] == "flume/h@R"
    assert [i.principal for i in sink.kerberos_identities] == ["flume/h@R"]


def test_jaas_file_from_java_opts(tmp_path, monkeypatch):
    jaas = tmp_path / "jaas.conf"
    jaas.write_text('KafkaClient {\n com.sun.security.auth.module.Krb5LoginModule required\n useKeyTab=true\n'
                    ' keyTab="/no/such.keytab"\n principal="flume/h@R";\n};\n')
    monkeypatch.setenv("JAVA_OPTS", f"-Xmx1g -Djava.security.auth.login.config={jaas}")
    topo, problems = check(tmp_path)
    assert topo is None
    assert any(f"k.conf:11: a1.sinks.k1 (kafka): kafka.producer.sasl.mechanism: keyTab ({jaas}:4, KafkaClient) = "
               "'/no/such.keytab': no such file" in p for p in problems), problems


def test_sasl_jaas_config_keytab_without_the_principal(tmp_path):
    kt = keytab(tmp_path / "f.keytab", "other/h@R")
    topo, problems = check(tmp_path, "a1.sinks.k1.kafka.producer.sasl.jaas.config = "
                                     "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true "
                                     f'storeKey=true keyTab="{kt}" principal="flume/h@R";\n')
    assert topo is None
    assert any("k.conf:13: a1.sinks.k1 (kafka): kafka.producer.sasl.jaas.config: keyTab "
               f"(kafka.producer.sasl.jaas.config) = '{kt}' has no key for 'flume/h@R'; it holds other/h@R" in p
               for p in problems), problems


@pytest.mark.parametrize("extra, expected", [
    ("", "warning: no JAAS login for Kerberos"),
    ("a1.sinks.k1.kafka.producer.transactional.id = t\n", "kafka.producer.transactional.id: transactions are not "
     "available with Kerberos"),
    ("a1.sinks.k1.kafka.producer.no.such = 1\n", "kafka.producer.no.such: kafka-python, the client pyflume uses for "
     "Kerberos (GSSAPI), has no producer setting 'no.such'"),
    ("a1.sinks.k1.kafka.producer.sasl.jaas.config = com.sun.security.auth.module.Krb5LoginModule required;\n",
     "neither useKeyTab=true nor useTicketCache=true"),
])
def test_problems_name_their_line(tmp_path, extra, expected):
    _, problems = check(tmp_path, extra)
    assert any(expected in p for p in problems), problems


def test_gssapi_needs_a_sasl_protocol(tmp_path):
    f = tmp_path / "k.conf"
    f.write_text(BASE.replace("SASL_PLAINTEXT", "SSL"))
    topo, problems = config.check([str(f)], "a1")
    assert topo is None and any("needs security.protocol = SASL_PLAINTEXT or SASL_SSL" in str(p) for p in problems)


def test_translation_for_kafka_python():
    opts, problems = translate({"bootstrap.servers": "a:1, b:2", "acks": "all", "linger.ms": "5",
                                "compression.type": "none", "message.max.bytes": "2000000", "client.id": "x",
                                "security.protocol": "sasl_plaintext", "sasl.mechanisms": "GSSAPI",
                                "delivery.report.only.error": True}, "producer")
    assert not problems
    assert opts == {"bootstrap_servers": ["a:1", "b:2"], "acks": -1, "linger_ms": 5, "compression_type": None,
                    "max_request_size": 2000000, "client_id": "x", "security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": "GSSAPI", "enable_idempotence": False}
    opts, problems = translate({"group.id": "g", "auto.offset.reset": "smallest", "enable.auto.commit": "false",
                                "fetch.queue.backoff.ms": "10", "partition.assignment.strategy": "roundrobin"},
                               "consumer")
    assert not problems and opts["auto_offset_reset"] == "earliest" and opts["enable_auto_commit"] is False


def test_one_principal_per_agent_across_kafka_clients(tmp_path):
    """Flume logs its JVM in once: a consumer logging in as another principal than the producer is refused."""
    a = keytab(tmp_path / "a.keytab", "flume/h@R")
    b = keytab(tmp_path / "b.keytab", "etl/h@R")
    login = 'com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab="{}" principal="{}";'
    extra = (f"a1.sinks.k1.kafka.producer.sasl.jaas.config = {login.format(a, 'flume/h@R')}\n"
             "a1.sources = r1 r2\n"
             "a1.sources.r2.type = kafka\n"
             "a1.sources.r2.channels = c1\n"
             "a1.sources.r2.kafka.bootstrap.servers = localhost:9\n"
             "a1.sources.r2.kafka.topics = t\n"
             "a1.sources.r2.kafka.consumer.security.protocol = SASL_PLAINTEXT\n"
             "a1.sources.r2.kafka.consumer.sasl.mechanism = GSSAPI\n"
             "a1.sources.r2.kafka.consumer.sasl.kerberos.service.name = kafka\n"
             f"a1.sources.r2.kafka.consumer.sasl.jaas.config = {login.format(b, 'etl/h@R')}\n")
    topo, problems = check(tmp_path, extra)
    assert topo is None
    assert any("already logs this agent in as 'flume/h@R'" in p or "already logs this agent in as 'etl/h@R'" in p
               for p in problems), problems
