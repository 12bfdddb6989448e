"""The Kafka sink, source and channel through a Kerberos (SASL_PLAINTEXT, GSSAPI) listener of a real Kafka broker
(tests/peers/secure_kafka.py) in a real MIT KDC's realm, logged in from a keytab named by the JAAS login Flume users
already have: the KafkaClient section of -Djava.security.auth.login.config, or kafka.*.sasl.jaas.config. The
listener refuses a client without Kerberos, so the records did go through the Kerberos path."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from conftest import assert_exactly_once, free_port, rolled_lines, send_lines, wait_for_events

pytestmark = pytest.mark.peer
pytest.importorskip("kafka")
pytest.importorskip("gssapi")

SASL = """\
a1.{kind}.{name}.kafka.{client}.security.protocol = SASL_PLAINTEXT
a1.{kind}.{name}.kafka.{client}.sasl.mechanism = GSSAPI
a1.{kind}.{name}.kafka.{client}.sasl.kerberos.service.name = kafka
"""

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
a1.sinks.k1.kafka.producer.linger.ms = 5
a1.sources.r2.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r2.channels = c2
a1.sources.r2.kafka.bootstrap.servers = {servers}
a1.sources.r2.kafka.topics = {topic}
a1.sources.r2.kafka.consumer.group.id = {topic}-group
a1.sources.r2.kafka.consumer.auto.offset.reset = earliest
a1.sources.r2.batchSize = 1000
a1.sources.r2.batchDurationMillis = 200
a1.channels.c2.type = memory
a1.channels.c2.capacity = 100000
a1.channels.c2.transactionCapacity = 1000
a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = c2
a1.sinks.k2.sink.directory = {out}
a1.sinks.k2.sink.rollInterval = 0
a1.sinks.k2.sink.batchSize = 1000
""" + SASL.format(kind="sinks", name="k1", client="producer") + SASL.format(kind="sources", name="r2",
                                                                             client="consumer")

CHANNEL = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel
a1.channels.c1.kafka.bootstrap.servers = {servers}
a1.channels.c1.kafka.topic = {topic}
a1.channels.c1.kafka.consumer.group.id = {topic}-group
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 500
""" + SASL.format(kind="channels", name="c1", client="producer") + SASL.format(kind="channels", name="c1",
                                                                                client="consumer")


def krb5_login(principal: str, keytab: Path) -> str:
    return (f'com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true keyTab="{keytab}" '
            f'principal="{principal}";')


def jaas_file(path: Path, principal: str, keytab: Path) -> Path:
    """A Flume agent's JAAS file, as Flume's user guide shows it."""
    path.write_text("KafkaClient {\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n"
                    f'  storeKey=true\n  keyTab="{keytab}"\n  principal="{principal}";\n}};\n')
    return path


@pytest.fixture
def client_env(realm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An agent's environment on a kerberized cluster: krb5.conf, and no tickets of the user's own."""
    monkeypatch.setenv("KRB5_CONFIG", str(realm.kdc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-tickets'}")
    monkeypatch.delenv("JAVA_OPTS", raising=False)


def _lines(n: int, tag: str) -> list[bytes]:
    return [f"{tag}-{i:06d}".encode() for i in range(n)]


def test_round_trip_sink_to_source_with_the_jaas_file(run_agent, realm, secure_kafka, client_env,
                                                      tmp_path: Path) -> None:
    """netcat -> memory -> Kafka sink -> topic -> Kafka source -> file_roll, both Kafka ends logged in from the
    keytab in the JAAS file's KafkaClient section: every line once."""
    port, out, topic = free_port(), tmp_path / "out", f"krb-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    jaas = jaas_file(tmp_path / "flume_jaas.conf", realm.flume, realm.flume_keytab)
    agent = run_agent(PIPELINE.format(port=port, servers=secure_kafka.bootstrap, topic=topic, out=out),
                      args=[f"-Djava.security.auth.login.config={jaas}"])
    agent.wait_for_port(port, timeout=30)
    lines = _lines(5000, "jaas")
    send_lines(port, lines)
    wait_for_events(lines, lambda: rolled_lines(out), timeout=120, what="every line through Kerberos Kafka",
                    logs=[agent])
    assert_exactly_once(lines, rolled_lines(out), logs=[agent])
    assert f"Kerberos login as {realm.flume} from keytab" in agent.log()
    assert agent.terminate() == 0


def test_round_trip_with_sasl_jaas_config(run_agent, realm, secure_kafka, client_env, tmp_path: Path) -> None:
    """The same pipeline with the login in kafka.producer.sasl.jaas.config / kafka.consumer.sasl.jaas.config."""
    port, out, topic = free_port(), tmp_path / "out", f"krb-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    login = krb5_login(realm.flume, realm.flume_keytab)
    conf = PIPELINE.format(port=port, servers=secure_kafka.bootstrap, topic=topic, out=out) + (
        f"a1.sinks.k1.kafka.producer.sasl.jaas.config = {login}\n"
        f"a1.sources.r2.kafka.consumer.sasl.jaas.config = {login}\n")
    agent = run_agent(conf)
    agent.wait_for_port(port, timeout=30)
    lines = _lines(3000, "prop")
    send_lines(port, lines)
    wait_for_events(lines, lambda: rolled_lines(out), timeout=120, what="every line through Kerberos Kafka",
                    logs=[agent])
    assert_exactly_once(lines, rolled_lines(out), logs=[agent])
    assert agent.terminate() == 0


def test_kafka_channel_through_kerberos(run_agent, realm, secure_kafka, client_env, tmp_path: Path) -> None:
    port, out, topic = free_port(), tmp_path / "out", f"krb-chan-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    jaas = jaas_file(tmp_path / "flume_jaas.conf", realm.flume, realm.flume_keytab)
    agent = run_agent(CHANNEL.format(port=port, servers=secure_kafka.bootstrap, topic=topic, out=out),
                      args=[f"-Djava.security.auth.login.config={jaas}"])
    agent.wait_for_port(port, timeout=30)
    lines = _lines(3000, "chan")
    send_lines(port, lines)
    wait_for_events(lines, lambda: rolled_lines(out), timeout=120, what="every line through the Kerberos channel",
                    logs=[agent])
    assert_exactly_once(lines, rolled_lines(out), logs=[agent])
    assert f"Kerberos login as {realm.flume} from keytab" in agent.log()
    assert agent.terminate() == 0


def test_round_trip_over_sasl_ssl(run_agent, realm, secure_kafka, java_stores, client_env, tmp_path: Path) -> None:
    """SASL_SSL: Kerberos over TLS, the broker's certificate checked against a Java trust store (read by pyflume)."""
    port, out, topic = free_port(), tmp_path / "out", f"krb-ssl-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    jaas = jaas_file(tmp_path / "flume_jaas.conf", realm.flume, realm.flume_keytab)
    conf = PIPELINE.format(port=port, servers=secure_kafka.ssl_bootstrap, topic=topic, out=out)
    conf = conf.replace("security.protocol = SASL_PLAINTEXT", "security.protocol = SASL_SSL")
    for client in ("sinks.k1.kafka.producer", "sources.r2.kafka.consumer"):
        conf += (f"a1.{client}.ssl.truststore.location = {java_stores.trust_jks}\n"
                 f"a1.{client}.ssl.truststore.password = changeit\n")
    agent = run_agent(conf, args=[f"-Djava.security.auth.login.config={jaas}"])
    agent.wait_for_port(port, timeout=30)
    lines = _lines(2000, "ssl")
    send_lines(port, lines)
    wait_for_events(lines, lambda: rolled_lines(out), timeout=120, what="every line through SASL_SSL",
                    logs=[agent])
    assert_exactly_once(lines, rolled_lines(out), logs=[agent])
    assert agent.terminate() == 0


def test_unreachable_kdc_loses_nothing(run_agent, realm, secure_kafka, client_env, tmp_path: Path) -> None:
    """The KDC is down when the agent starts: no login, no connection, the sink's batches roll back and stay in
    the channel; once the KDC is back every line arrives once."""
    port, out, topic = free_port(), tmp_path / "out", f"krb-kdc-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    jaas = jaas_file(tmp_path / "flume_jaas.conf", realm.flume, realm.flume_keytab)
    lines = _lines(1000, "kdc")
    realm.kdc.stop()
    try:
        agent = run_agent(PIPELINE.format(port=port, servers=secure_kafka.bootstrap, topic=topic, out=out),
                          args=[f"-Djava.security.auth.login.config={jaas}"])
        agent.wait_for_port(port, timeout=30)
        send_lines(port, lines)
        agent.wait_for_log("Cannot contact any KDC", timeout=30)
        time.sleep(4)  # several retries while the KDC is down
        assert rolled_lines(out) == []
    finally:
        realm.kdc.restart()
    wait_for_events(lines, lambda: rolled_lines(out), timeout=120, what="every line after the KDC came back",
                    logs=[agent])
    assert_exactly_once(lines, rolled_lines(out), logs=[agent])
    assert f"Kerberos login as {realm.flume} works again" in agent.log()
    assert agent.terminate() == 0


def test_a_client_without_kerberos_is_refused(secure_kafka) -> None:
    """confluent-kafka with no SASL at all gets no metadata from the GSSAPI listener: the peer is secure."""
    confluent_kafka = pytest.importorskip("confluent_kafka")

    producer = confluent_kafka.Producer({"bootstrap.servers": secure_kafka.bootstrap, "log_level": 0,
                                         "socket.timeout.ms": 3000, "message.timeout.ms": 5000})
    with pytest.raises(confluent_kafka.KafkaException):
        producer.list_topics(timeout=5)
    failures: list[str] = []
    producer.produce("unauthenticated", b"x", on_delivery=lambda err, msg: failures.append(str(err)))
    assert producer.flush(10) == 0 and len(failures) == 1, failures


def test_check_names_the_keytab_problems(realm, tmp_path: Path, client_env) -> None:
    """--check: a keytab without the principal (JAAS file), a keytab file that is not there (sasl.jaas.config),
    each at its file and line, naming the property."""
    from agent import config, kerberos

    jaas = jaas_file(tmp_path / "flume_jaas.conf", "nobody/localhost@" + realm.kdc.realm, realm.flume_keytab)
    conf = tmp_path / "a1.conf"
    conf.write_text(PIPELINE.format(port=free_port(), servers="localhost:9", topic="t", out=tmp_path) +
                    f"a1.sources.r2.kafka.consumer.sasl.jaas.config = {krb5_login(realm.flume, tmp_path / 'no.kt')}\n")
    try:
        topo, problems = config.check([str(conf)], "a1", {"java.security.auth.login.config": str(jaas)})
    finally:
        kerberos.use_system_properties({})  # the JAAS file is remembered process-wide, as the agent's
    text = [str(p) for p in problems if p.severity == "error"]
    assert topo is None
    lines = conf.read_text().splitlines()
    mech = lines.index("a1.sinks.k1.kafka.producer.sasl.mechanism = GSSAPI") + 1
    jaas_line = len(lines)  # the consumer's sasl.jaas.config, the last line
    assert f"{conf}:{mech}: a1.sinks.k1 (org.apache.flume.sink.kafka.KafkaSink): kafka.producer.sasl.mechanism: keyTab " \
           f"({jaas}:5, KafkaClient) = '{realm.flume_keytab}' has no key for 'nobody/localhost@{realm.kdc.realm}'" \
        in "\n".join(text), text
    assert f"{conf}:{jaas_line}: a1.sources.r2 (org.apache.flume.source.kafka.KafkaSource): " \
           f"kafka.consumer.sasl.jaas.config: keyTab (kafka.consumer.sasl.jaas.config) = '{tmp_path / 'no.kt'}': " \
           "no such file" in "\n".join(text), text
