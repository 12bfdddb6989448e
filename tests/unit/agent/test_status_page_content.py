"""What the status page may show: secrets masked by their property names, and a page that loads nothing from
anywhere (its styles and script inline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent import config, status_page


@pytest.mark.parametrize("key, value, shown", [
    ("a1.sinks.k1.truststore-password", "hunter2", "******"),
    ("a1.sources.r1.keystore-password", "hunter2", "******"),
    ("javax.net.ssl.keyStorePassword", "hunter2", "******"),
    ("a1.channels.c1.kafka.consumer.sasl.jaas.config",
     'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";', "******"),
    ("a1.sinks.k1.kafka.producer.ssl.key.password", "p", "******"),
    ("a1.sinks.k1.kafka.producer.sasl.password", "p", "******"),
    ("a1.sources.r1.token", "t0k3n", "******"),
    ("a1.sinks.k1.hdfs.kerberosKeytab", "/etc/flume.keytab", "/etc/flume.keytab"),  # a path, not a secret
    ("a1.sinks.k1.passwordFile", "/etc/secret.txt", "/etc/secret.txt"),
    ("a1.sinks.k1.endpoint", "http://user:pw@host:8080/x", "http://user:******@host:8080/x"),
    ("a1.sinks.k1.hostname", "collector", "collector"),
    ("a1.sinks.k1.truststore-password", "", ""),
])
def test_mask(key: str, value: str, shown: str):
    assert status_page.mask(key, value) == shown


def test_effective_configuration_in_file_order_with_lines(tmp_path: Path):
    f = tmp_path / "a.conf"
    f.write_text("a1.sources = r1\na1.channels = c1\na1.sinks = k1\na1.sources.r1.type = seq\n"
                 "a1.sources.r1.channels = c1\na1.channels.c1.type = memory\na1.sinks.k1.type = avro\n"
                 "a1.sinks.k1.hostname = h\na1.sinks.k1.port = 4141\na1.sinks.k1.truststore-password = hunter2\n"
                 "a1.sinks.k1.channel = c1\n")
    topo, problems = config.check([str(f)], "a1", {"javax.net.ssl.trustStorePassword": "hunter3", "x": "y"})
    assert topo is not None, [str(p) for p in problems]
    lines = [(e["key"] + " = " + e["value"], e["line"]) for e in status_page.effective_config(topo)]
    assert lines == [
        ("a1.sources = r1", 0), ("a1.channels = c1", 0), ("a1.sinks = k1", 0),
        ("a1.sources.r1.type = seq", 4), ("a1.sources.r1.channels = c1", 5), ("a1.channels.c1.type = memory", 6),
        ("a1.sinks.k1.type = avro", 7), ("a1.sinks.k1.hostname = h", 8), ("a1.sinks.k1.port = 4141", 9),
        ("a1.sinks.k1.truststore-password = ******", 10), ("a1.sinks.k1.channel = c1", 11),
        ("-Djavax.net.ssl.trustStorePassword = ******", 0), ("-Dx = y", 0),
    ]


def test_the_page_loads_nothing_from_elsewhere():
    html = status_page.page().decode()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"(?!data:)", html), "an external resource"
    assert not re.search(r"@import|url\(", html)
    assert re.findall(r"https?://[^\"'\s)]+", html) == ["http://www.w3.org/2000/svg"]  # a namespace, not a fetch
    assert re.findall(r"fetch\(([^,)]+)", html) == ['"status.json"']


def test_components_without_an_mbean_still_count_for_the_page(tmp_path: Path):
    from agent.core import Event
    from tests.conftest import put_events

    f = tmp_path / "a.conf"
    f.write_text("a1.sources = r1\na1.channels = c1\na1.sinks = k1\na1.sources.r1.type = seq\n"
                 "a1.sources.r1.channels = c1\na1.channels.c1.type = memory\na1.sinks.k1.type = logger\n"
                 "a1.sinks.k1.channel = c1\n")
    topo, _ = config.check([str(f)], "a1")
    sink = topo.sinks["k1"]
    topo.channels["c1"].start()
    put_events(topo.channels["c1"], [Event(b"one"), Event(b"two")])
    sink.process()
    assert sink.metrics() is None  # Flume's LoggerSink has no MBean: not in /metrics
    counters = status_page._counters(sink)
    assert (counters["EventDrainAttemptCount"], counters["EventDrainSuccessCount"]) == ("2", "2")
