"""Kafka source, sink and channel against a real Apache Kafka broker (KRaft, from Maven Central)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from agent.avro_event import decode_event, encode_event
from agent.core import Event
from conftest import (
    assert_exactly_once,
    delivery_report,
    free_port,
    listening,
    rolled_lines,
    send_lines,
    wait_for,
    wait_for_events,
)

pytest.importorskip("confluent_kafka")

PIPELINE = """\
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = st
a1.sources.r1.interceptors.st.type = static
a1.sources.r1.interceptors.st.key = origin
a1.sources.r1.interceptors.st.value = netcat
a1.channels.c1.type = {c1_type}
a1.channels.c1.kafka.bootstrap.servers = {servers}
a1.channels.c1.kafka.topic = {chan_topic}
a1.channels.c1.kafka.consumer.group.id = {group}-chan
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.channel = c1
a1.sinks.k1.kafka.bootstrap.servers = {servers}
a1.sinks.k1.kafka.topic = {topic}
a1.sinks.k1.flumeBatchSize = 500
a1.sinks.k1.useFlumeEventFormat = true
a1.sinks.k1.kafka.producer.linger.ms = 5
a1.sources.r2.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r2.channels = c2
a1.sources.r2.kafka.bootstrap.servers = {servers}
a1.sources.r2.kafka.topics = {topic}
a1.sources.r2.kafka.consumer.group.id = {group}
a1.sources.r2.kafka.consumer.auto.offset.reset = earliest
a1.sources.r2.useFlumeEventFormat = true
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
a1.sinks.k2.sink.serializer = header_and_text
"""


def headers_of(line: bytes) -> tuple[dict[str, str], bytes]:
    """Parse a header_and_text line: ``{k1=v1, k2=v2} body``."""
    head, _, body = line.partition(b"} ")
    pairs = head[1:].decode().split(", ") if len(head) > 1 else []
    return dict(p.split("=", 1) for p in pairs), body


def bodies(out: Path) -> list[bytes]:
    """The bodies of every header_and_text line rolled into ``out``."""
    return [headers_of(g)[1] for g in rolled_lines(out)]


def names() -> tuple[str, str, str]:
    u = uuid.uuid4().hex[:8]
    return f"t-{u}", f"chan-{u}", f"g-{u}"


def consume_all(servers: str, topic: str, expect: int, timeout: float = 60.0) -> list:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": servers, "group.id": f"check-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": "false"})
    c.subscribe([topic])
    got: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expect and time.monotonic() < deadline:
            got += [m for m in c.consume(10_000, 0.5) if m.error() is None]
        if len(got) >= expect:  # anything beyond what was expected shows up within a short extra wait
            got += [m for m in c.consume(10_000, 1.0) if m.error() is None]
    finally:
        c.close()
    return got


def test_source_channel_sink_round_trip_with_headers(kafka_broker, run_agent, tmp_path: Path) -> None:
    """netcat → Kafka channel → Kafka sink (Flume event format) → topic → Kafka source → memory → file."""
    topic, chan, group = names()
    for t in (topic, chan):
        kafka_broker.create_topic(t, 2)
    port, out = free_port(), tmp_path / "out"
    out.mkdir()
    agent = run_agent(PIPELINE.format(port=port, servers=kafka_broker.bootstrap, topic=topic, chan_topic=chan,
                                      group=group, out=out, c1_type="org.apache.flume.channel.kafka.KafkaChannel"))
    agent.wait_for_port(port)
    lines = [b"line-%05d" % i for i in range(20_000)]
    send_lines(port, lines)
    wait_for_events(lines, lambda: bodies(out), what="every line through Kafka twice", logs=[agent])
    got = rolled_lines(out)
    assert_exactly_once(lines, [headers_of(g)[1] for g in got], logs=[agent])  # exactly once on a clean run
    h, _ = headers_of(got[0])
    assert h["origin"] == "netcat"  # the interceptor's header survived the channel and the topic
    assert h["topic"] == topic and h["partition"] in ("0", "1") and int(h["offset"]) >= 0
    assert abs(int(h["timestamp"]) - time.time() * 1000) < 120_000
    # the channel topic holds Flume event datums, readable by any Flume agent
    recs = consume_all(kafka_broker.bootstrap, chan, len(lines))
    assert len(recs) == len(lines)
    assert decode_event(recs[0].value()).headers == {"origin": "netcat"}
    assert agent.terminate() == 0


def test_broker_restarted_mid_stream_loses_nothing(kafka_broker, run_agent, tmp_path: Path) -> None:
    topic, chan, group = names()
    kafka_broker.create_topic(topic, 1)
    port, out = free_port(), tmp_path / "out"
    out.mkdir()
    agent = run_agent(PIPELINE.format(port=port, servers=kafka_broker.bootstrap, topic=topic, chan_topic=chan,
                                      group=group, out=out, c1_type="memory"))
    agent.wait_for_port(port)
    first = [b"a-%05d" % i for i in range(20_000)]
    second = [b"b-%05d" % i for i in range(20_000)]
    send_lines(port, first)
    wait_for(lambda: len(rolled_lines(out)) >= 5_000, what="the stream to be under way")
    kafka_broker.stop()  # mid-stream: the sink's batches wait, the source's polls come back empty
    try:
        send_lines(port, second)
        time.sleep(3)
    finally:
        kafka_broker.start()
    want = first + second
    wait_for_events(want, lambda: bodies(out), timeout=120, what="every line after restart",
                    logs=[agent, kafka_broker])
    # Kafka itself has every line too (at least once)
    in_topic = [decode_event(m.value()).body for m in consume_all(kafka_broker.bootstrap, topic, len(want))]
    assert set(in_topic) >= set(want), delivery_report(want, in_topic, [agent, kafka_broker])
    assert agent.terminate() == 0


SOURCE_ONLY = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = kafka
a1.sources.r1.channels = c1
a1.sources.r1.kafka.bootstrap.servers = {servers}
a1.sources.r1.kafka.topics.regex = {regex}
a1.sources.r1.kafka.consumer.group.id = {group}
a1.sources.r1.kafka.consumer.auto.offset.reset = earliest
a1.sources.r1.batchDurationMillis = 100
a1.sources.r1.header.trace = trace-id
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = header_and_text
"""


def produce(servers: str, topic: str, values: list[bytes], **kw) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    for v in values:
        p.produce(topic, v, **kw)
    assert p.flush(30) == 0


def test_a_consumer_group_resumes_where_it_committed(kafka_broker, tmp_path: Path) -> None:
    from conftest import AgentProcess

    topic, _, group = names()
    kafka_broker.create_topic(topic, 2)
    produce(kafka_broker.bootstrap, topic, [b"first-%04d" % i for i in range(3000)], key=b"k1",
            headers=[("trace-id", b"abc")])
    runs = []
    for run in range(2):
        d = tmp_path / f"run{run}"
        (d / "out").mkdir(parents=True)
        conf = SOURCE_ONLY.format(servers=kafka_broker.bootstrap, regex=topic.replace("-", "[-]"), group=group,
                                  out=d / "out")
        agent = AgentProcess(conf, d).start()
        runs.append(agent)
        try:
            # the second run starts after the committed offsets: none of the first 3000 again
            want = [b"%s-%04d" % (b"first" if run == 0 else b"second", i) for i in range(3000)]
            wait_for_events(want, lambda d=d: bodies(d / "out"), what=f"run {run}", logs=[agent])
            time.sleep(1.0)  # nothing more arrives
            got = rolled_lines(d / "out")
            assert_exactly_once(want, [headers_of(g)[1] for g in got], logs=[agent])
            if run == 0:
                h, body = headers_of(got[0])
                assert h["key"] == "k1" and h["trace"] == "abc" and h["topic"] == topic
        finally:
            assert agent.terminate() == 0
        if run == 0:
            produce(kafka_broker.bootstrap, topic, [b"second-%04d" % i for i in range(3000)])


def test_flume_event_format_is_the_avro_datum_flume_writes() -> None:
    """The bytes a Flume 1.11 Kafka sink writes for useFlumeEventFormat (SpecificDatumWriter, binary encoder)."""
    e = Event(b"hello", {"a": "1"})
    assert encode_event(e) == b"\x02\x02a\x021\x00\x0ahello"
    assert encode_event(Event(b"")) == b"\x00\x00"
    back = decode_event(b"\x02\x02a\x021\x00\x0ahello")
    assert back.headers == {"a": "1"} and back.body == b"hello"


FLUME_SIDE = """\
f1.sources = r1 r2
f1.channels = c1 c2
f1.sinks = k1 k2
f1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
f1.sources.r1.channels = c1
f1.sources.r1.kafka.bootstrap.servers = {servers}
f1.sources.r1.kafka.topics = {from_py}
f1.sources.r1.kafka.consumer.group.id = flume-{from_py}
f1.sources.r1.kafka.consumer.auto.offset.reset = earliest
f1.sources.r1.useFlumeEventFormat = true
f1.sources.r1.batchDurationMillis = 200
f1.channels.c1.type = memory
f1.channels.c1.capacity = 100000
f1.channels.c1.transactionCapacity = 1000
f1.sinks.k1.type = file_roll
f1.sinks.k1.channel = c1
f1.sinks.k1.sink.directory = {out}
f1.sinks.k1.sink.rollInterval = 0
f1.sinks.k1.sink.serializer = header_and_text
f1.sources.r2.type = netcat
f1.sources.r2.bind = 127.0.0.1
f1.sources.r2.port = {port}
f1.sources.r2.ack-every-event = false
f1.sources.r2.max-line-length = 1000
f1.sources.r2.channels = c2
f1.sources.r2.interceptors = st
f1.sources.r2.interceptors.st.type = static
f1.sources.r2.interceptors.st.key = made-by
f1.sources.r2.interceptors.st.value = flume
f1.channels.c2.type = memory
f1.channels.c2.capacity = 100000
f1.channels.c2.transactionCapacity = 1000
f1.sinks.k2.type = org.apache.flume.sink.kafka.KafkaSink
f1.sinks.k2.channel = c2
f1.sinks.k2.kafka.bootstrap.servers = {servers}
f1.sinks.k2.kafka.topic = {from_flume}
f1.sinks.k2.flumeBatchSize = 500
f1.sinks.k2.useFlumeEventFormat = true
"""

PY_SIDE = """\
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = st
a1.sources.r1.interceptors.st.type = static
a1.sources.r1.interceptors.st.key = made-by
a1.sources.r1.interceptors.st.value = pyflume
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = kafka
a1.sinks.k1.channel = c1
a1.sinks.k1.kafka.bootstrap.servers = {servers}
a1.sinks.k1.kafka.topic = {from_py}
a1.sinks.k1.flumeBatchSize = 500
a1.sinks.k1.useFlumeEventFormat = true
a1.sources.r2.type = kafka
a1.sources.r2.channels = c2
a1.sources.r2.kafka.bootstrap.servers = {servers}
a1.sources.r2.kafka.topics = {from_flume}
a1.sources.r2.kafka.consumer.group.id = py-{from_flume}
a1.sources.r2.kafka.consumer.auto.offset.reset = earliest
a1.sources.r2.useFlumeEventFormat = true
a1.sources.r2.batchDurationMillis = 200
a1.channels.c2.type = memory
a1.channels.c2.capacity = 100000
a1.channels.c2.transactionCapacity = 1000
a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = c2
a1.sinks.k2.sink.directory = {out}
a1.sinks.k2.sink.rollInterval = 0
a1.sinks.k2.sink.serializer = header_and_text
"""


def test_flume_and_pyflume_share_topics_in_flume_event_format(kafka_broker, flume_classpath, run_agent,
                                                                tmp_path: Path) -> None:
    """Apache Flume 1.11's Kafka source reads what pyflume's Kafka sink wrote, and pyflume's Kafka source reads
    what Flume's Kafka sink wrote; the headers cross over in both directions."""
    from peers.flume import FlumeAgent

    u = uuid.uuid4().hex[:8]
    from_py, from_flume = f"from-py-{u}", f"from-flume-{u}"
    for t in (from_py, from_flume):
        kafka_broker.create_topic(t, 1)
    fport, pport = free_port(), free_port()
    fout, pout = tmp_path / "flume-out", tmp_path / "py-out"
    fout.mkdir()
    pout.mkdir()
    fconf = tmp_path / "flume.conf"
    fconf.write_text(FLUME_SIDE.format(servers=kafka_broker.bootstrap, from_py=from_py, from_flume=from_flume,
                                       out=fout, port=fport))
    py = run_agent(PY_SIDE.format(servers=kafka_broker.bootstrap, from_py=from_py, from_flume=from_flume,
                                  out=pout, port=pport))
    with FlumeAgent(fconf, name="f1") as flume:
        flume.wait_for_log("Component type: SOURCE, name: r1 started", timeout=120)
        wait_for(lambda: listening(fport), what="Flume's netcat source")
        py.wait_for_port(pport)
        py_lines = [b"py-%05d" % i for i in range(5000)]
        flume_lines = [b"fl-%05d" % i for i in range(5000)]
        send_lines(pport, py_lines)
        send_lines(fport, flume_lines)
        wait_for_events(py_lines, lambda: bodies(fout), timeout=120, what="pyflume -> Flume", logs=[py, flume])
        wait_for_events(flume_lines, lambda: bodies(pout), timeout=120, what="Flume -> pyflume", logs=[py, flume])
        for out, lines, origin, topic in ((fout, py_lines, "pyflume", from_py), (pout, flume_lines, "flume",
                                                                                  from_flume)):
            got = [headers_of(g) for g in rolled_lines(out)]
            assert_exactly_once(lines, [b for _, b in got], logs=[py, flume])
            h = got[0][0]
            assert h["made-by"] == origin and h["topic"] == topic and "partition" in h and "offset" in h


def test_clients_that_lost_every_broker_give_up_and_are_replaced(kafka_broker) -> None:
    """The recovery from librdkafka's lost-metadata state (agent/kafka_clients.py), driven by a real outage: with
    the broker gone, a batch's flush gives up after the stall time instead of message.timeout.ms (300 s) and the
    next batch gets a new producer that delivers it; a consumer is declared stuck only while the cluster does not
    answer (and is then replaced, as the Kafka source does), never when it is merely idle."""
    import logging

    from confluent_kafka import Consumer

    from agent.kafka_clients import ConsumerWatch, Producer

    log = logging.getLogger("test")
    topic, _, group = names()
    kafka_broker.create_topic(topic, 1)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "linger.ms": "5"}, log, "test producer")
    producer.watch.STALL = 3.0
    watch = ConsumerWatch()
    watch.watch.STALL = 3.0

    def subscribed() -> Consumer:
        c = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "error_cb": watch.watch.note})
        c.subscribe([topic])
        return c

    def replace(stuck: Consumer) -> Consumer:
        """As the Kafka source does: the stuck consumer is closed in the background (leaving a group with no
        broker can block), a new one takes its place."""
        threading.Thread(target=stuck.close, daemon=True).start()
        return subscribed()

    consumer = subscribed()
    replaced = 0
    client = producer.begin()
    client.produce(topic, b"before")
    assert producer.flush() is None
    kafka_broker.stop()
    try:
        client = producer.begin()
        for i in range(10):
            client.produce(topic, b"lost-%d" % i)
        started = time.monotonic()
        failure = producer.flush()
        took = time.monotonic() - started
        assert failure is not None and failure[0] == 10, failure
        assert took < 60, f"the flush waited {took:.0f} s with no broker"
        # a consumer whose cluster is gone is stuck once the stall time has passed since the report
        for _ in range(60):
            if consumer.consume(10, 0.5) == [] and watch.stuck(consumer):
                break
        else:
            pytest.fail("the consumer was never declared stuck with the broker stopped")
        consumer = replace(consumer)
        replaced += 1
    finally:
        kafka_broker.start()
    client = producer.begin()
    assert client is not None
    for i in range(10):
        client.produce(topic, b"again-%d" % i)
    assert producer.flush() is None
    # the consumer made during the outage reads everything once the broker is back, or is found stuck and replaced
    # (librdkafka can leave a consumer that first joined during an outage fetching nothing for good)
    read: list[bytes] = []
    deadline = time.monotonic() + 90
    while len(set(read)) < 11 and time.monotonic() < deadline:
        got = [m.value() for m in consumer.consume(100, 0.5) if m.error() is None]
        if got:
            read += got
            watch.progress()
        elif watch.stuck(consumer):
            consumer = replace(consumer)
            replaced += 1
    assert len(set(read)) >= 11, (f"{replaced} consumers replaced; "
                                  + delivery_report([b"before"], read, [kafka_broker]))
    watch.watch.note(_AllDown())
    watch.quiet_since -= 10
    assert not watch.stuck(consumer)
    consumer.close()
    got = [m.value() for m in consume_all(kafka_broker.bootstrap, topic, 11)]
    want = [b"before"] + [b"again-%d" % i for i in range(10)]
    assert set(want) <= set(got), delivery_report(want, got, [kafka_broker])


class _AllDown:
    """What librdkafka's error callback passes when every broker is down (only its code is read)."""

    def code(self) -> int:
        return -187
