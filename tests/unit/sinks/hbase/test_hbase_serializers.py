"""The HBase sinks' configuration and serializers: Flume's names, defaults, row keys and columns, checked without
HBase (the integration tests compare with a real HBase and with Flume's own sink)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent import config
from agent.core import Event
from agent.spec import Conf, ConfigError
from sinks.hbase import RegexHbaseEventSerializer, SimpleHbaseEventSerializer

pytest.importorskip("happybase")

BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.channel = c1
a1.sinks.k1.table = t
a1.sinks.k1.columnFamily = cf
"""

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def build(tmp_path: Path, extra: str):
    f = tmp_path / "h.conf"
    f.write_text(BASE + extra)
    topo, problems = config.check([str(f)], "a1")
    return topo, [str(p) for p in problems if p.severity == "error"], [str(p) for p in problems if
                                                                          p.severity != "error"]


@pytest.mark.parametrize("type_, serializer", [
    ("hbase2", "SimpleHbaseEventSerializer"),
    ("org.apache.flume.sink.hbase2.HBase2Sink", "SimpleHbaseEventSerializer"),
    ("hbase", "SimpleHbaseEventSerializer"),
    ("org.apache.flume.sink.hbase.HBaseSink", "SimpleHbaseEventSerializer"),
    ("asynchbase", "SimpleHbaseEventSerializer"),
    ("org.apache.flume.sink.hbase.AsyncHBaseSink", "SimpleHbaseEventSerializer"),
])
def test_types_and_flume_defaults(tmp_path, type_, serializer):
    topo, errors, warnings = build(tmp_path, f"a1.sinks.k1.type = {type_}\na1.sinks.k1.thrift = 127.0.0.1:9090\n")
    assert not errors and not warnings
    sink = topo.sinks["k1"]
    assert type(sink.serializer).__name__ == serializer
    assert sink.batch_size() == 100 and sink.wal is True and sink.coalesce is False and sink.timeout_ms == 60000
    assert sink.conf["znodeParent"] == "/hbase" and sink.targets == [("127.0.0.1", 9090)]


def test_without_thrift_the_quorum_hosts_are_tried_on_9090_and_check_says_so(tmp_path):
    topo, errors, warnings = build(tmp_path, "a1.sinks.k1.type = hbase2\n"
                                             "a1.sinks.k1.zookeeperQuorum = zk1:2181,zk2:2181, zk1:2181\n")
    assert not errors
    assert topo.sinks["k1"].targets == [("zk1", 9090), ("zk2", 9090)]
    assert len(warnings) == 1
    assert "h.conf:11: a1.sinks.k1 (hbase2): zookeeperQuorum: warning: HBase is reached through its Thrift " \
        "server" in warnings[0]
    assert "`<agent>.sinks.k1.thrift = host:port`" in warnings[0]
    topo, errors, warnings = build(tmp_path, "a1.sinks.k1.type = hbase2\n")
    assert topo.sinks["k1"].targets == [("127.0.0.1", 9090)] and "127.0.0.1:9090 will be tried" in warnings[0]


def test_bad_settings_are_named(tmp_path):
    _, errors, warnings = build(tmp_path, """\
a1.sinks.k1.type = asynchbase
a1.sinks.k1.thrift = h1:90x
a1.sinks.k1.kerberosPrincipal = flume/_HOST@EXAMPLE.COM
a1.sinks.k1.batchSize = 0
a1.sinks.k1.async.hbase.client.retries.number = 3
a1.sinks.k1.serializer = org.apache.flume.sink.hbase2.RegexHBase2EventSerializer
a1.sinks.k1.serializer.colNames = ts,ROW_KEY
a1.sinks.k1.serializer.rowKeyIndex = 0
""")
    text = "\n".join(errors)
    assert "h.conf:11: a1.sinks.k1 (asynchbase): thrift: 'h1:90x' is not host:port" in text
    assert "h.conf:12: a1.sinks.k1 (asynchbase): kerberosPrincipal: kerberosPrincipal is set but " \
        "kerberosKeytab is not" in text
    assert "h.conf:13: a1.sinks.k1 (asynchbase): batchSize: 0 is too small" in text
    assert "h.conf:17: a1.sinks.k1 (asynchbase): serializer.rowKeyIndex: Column at 0 must be ROW_KEY and is ts" in text
    assert any("async.hbase.client.retries.number: warning: asynchbase client settings" in w for w in warnings)
    _, errors, _ = build(tmp_path, "a1.sinks.k1.type = hbase2\na1.sinks.k1.thrift = h:1\n"
                                   "a1.sinks.k1.serializer = org.example.MySerializer\n")
    assert "Java plugins cannot run in pyflume" in "\n".join(errors)
    _, errors, _ = build(tmp_path, "a1.sinks.k1.type = hbase2\na1.sinks.k1.thrift = h:1\n"
                                   "a1.sinks.k1.serializer = org.apache.flume.sink.hbase.RegexHbaseEventSerializer\n"
                                   "a1.sinks.k1.serializer.regex = ([a-z]+\n")
    assert "(hbase2): serializer.regex: invalid regex '([a-z]+'" in "\n".join(errors)


def simple(**opts: str) -> SimpleHbaseEventSerializer:
    return SimpleHbaseEventSerializer("k1", Conf.from_dict(SimpleHbaseEventSerializer.spec, **opts), b"cf")


def regex(**opts: str) -> RegexHbaseEventSerializer:
    return RegexHbaseEventSerializer("k1", Conf.from_dict(RegexHbaseEventSerializer.spec, **opts), b"cf")


def test_simple_serializer_defaults_match_flume():
    puts, incs = simple().serialize([Event(b"one"), Event(b"two")])
    assert [cells for _, cells in puts] == [{b"cf:pCol": b"one"}, {b"cf:pCol": b"two"}]
    for row, _ in puts:
        assert re.fullmatch(rb"default" + UUID.encode(), row)
    assert incs == [(b"incRow", b"cf:iCol", 1)] * 2


@pytest.mark.parametrize("suffix, shape", [
    ("timestamp", rb"p-1[0-9]{12}"),
    ("random", rb"p--?[0-9]{1,19}"),
    ("nano", rb"p-[0-9]+"),
    ("uuid", rb"p-" + UUID.encode()),
    ("anything-else", rb"p-" + UUID.encode()),
])
def test_simple_serializer_suffixes(suffix, shape):
    puts, _ = simple(rowPrefix="p-", suffix=suffix).serialize([Event(b"x")] * 50)
    assert all(re.fullmatch(shape, row) for row, _ in puts)
    if suffix in ("random", "uuid"):
        assert len({row for row, _ in puts}) == 50


def test_simple_serializer_parts_turn_off():
    puts, incs = simple(payloadColumn="", incrementRow="counters", incrementColumn="n").serialize([Event(b"x")])
    assert puts == [] and incs == [(b"counters", b"cf:n", 1)]
    puts, incs = simple(incrementColumn="").serialize([Event(b"x")])
    assert len(puts) == 1 and incs == []


def test_regex_serializer_default_writes_the_body_under_generated_keys():
    s = regex()
    puts, incs = s.serialize([Event(b"line one\nand two"), Event(b"b")])
    assert incs == []
    assert [cells for _, cells in puts] == [{b"cf:payload": b"line one\nand two"}, {b"cf:payload": b"b"}]
    keys = [row.decode() for row, _ in puts]
    m = [re.fullmatch(r"(1[0-9]{12})-([A-Za-z0-9]{10})-([0-9]+)", k) for k in keys]
    assert all(m) and m[0].group(2) == m[1].group(2) == RegexHbaseEventSerializer.random_key
    assert int(m[1].group(3)) == int(m[0].group(3)) + 1


def test_regex_serializer_columns_row_key_and_headers():
    s = regex(regex=r"(?<host>[^ ]+) (\d+) (.*)", colNames="host,ROW_KEY,msg", rowKeyIndex="1", depositHeaders="true")
    puts, _ = s.serialize([Event(b"web1 42 GET /", {"topic": "t1"}), Event(b"no match"), Event(b"web2 43 ")])
    assert puts == [(b"42", {b"cf:host": b"web1", b"cf:msg": b"GET /", b"cf:topic": b"t1"}),
                    (b"43", {b"cf:host": b"web2", b"cf:msg": b""})]


def test_regex_serializer_case_charset_and_group_mismatch():
    s = regex(regex="(ABC)(.)", colNames="a,b", regexIgnoreCase="true", charset="ISO-8859-1")
    puts, _ = s.serialize([Event("abcé".encode("latin-1"))])
    assert [cells for _, cells in puts] == [{b"cf:a": b"abc", b"cf:b": "é".encode()}]  # values: always UTF-8
    with pytest.raises(ConfigError, match="rowKeyIndex must be less than num columns 2"):
        regex(regex="(a)(b)", colNames="a,b,", rowKeyIndex="2")  # Java's split drops the trailing empty name
    conf = Conf.from_dict(RegexHbaseEventSerializer.spec, regex="(a)(b)", colNames="a")
    s = RegexHbaseEventSerializer("k1", conf, b"cf")
    assert s.serialize([Event(b"ab")]) == ([], [])
    assert any("the regex has 2 groups but colNames lists 1 columns" in str(p) for p in conf.problems)


def test_a_custom_serializer_by_dotted_path(tmp_path, monkeypatch):
    (tmp_path / "my_hbase_ser.py").write_text('''
from sinks.hbase import HbaseEventSerializer

class StatusCounter(HbaseEventSerializer):
    def increments(self, event):
        return [(event.headers.get("status", "unknown").encode(), self.column(b"hits"), 1)]
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    topo, errors, _ = build(tmp_path, "a1.sinks.k1.type = hbase2\na1.sinks.k1.thrift = h:1\n"
                                      "a1.sinks.k1.serializer = my_hbase_ser.StatusCounter\n"
                                      "a1.sinks.k1.serializer.anything = goes\n")
    assert not errors
    ser = topo.sinks["k1"].serializer
    assert ser.serialize([Event(b"", {"status": "200"}), Event(b"")]) == (
        [], [(b"200", b"cf:hits", 1), (b"unknown", b"cf:hits", 1)])
    _, errors, _ = build(tmp_path, "a1.sinks.k1.type = hbase2\na1.sinks.k1.thrift = h:1\n"
                                   "a1.sinks.k1.serializer = sinks.logger.LoggerSink\n")
    assert "must subclass sinks.hbase.HbaseEventSerializer" in "\n".join(errors)


@pytest.mark.parametrize(("pattern", "columns", "ignore_case"), [
    (r"(\S+) (\w+) \[([^\]]*)\] (\d+)(.*)", "ROW_KEY,b,c,d,e", "false"),
    (r"(?<ip>[0-9.]+) (GET|post) (\s*)(.*)", "ROW_KEY,b,c,d", "true")])
def test_regex_serializer_bytes_path_equals_the_text_path(pattern: str, columns: str, ignore_case: str):
    """ASCII bodies take a bytes-level regex; it must write exactly what the decoded-text path writes, and both
    keep Java's ASCII-only classes (\\w, \\d, \\s, case folding)."""
    s = regex(regex=pattern, colNames=columns, rowKeyIndex="0", regexIgnoreCase=ignore_case)
    assert s.bytes_pattern is not None
    bodies = [b"10.0.0.1 GET [x] 200 rest", b"10.0.0.2 Post  tail", b"a_b \xc3\xa9t\xc3\xa9 [y] 1", b"x \x1c [z] 2 ",
              b"10.0.0.3 post \x1c\x1dz", b"1.2.3.4 gEt [] 3", b"no match", b"9.9.9.9 get \xe2\x80\x83 [q] 4 \xc3\xa9"]
    events = [Event(b) for b in bodies]
    fast, _ = s.serialize(events)
    s.bytes_pattern = None
    slow, _ = s.serialize(events)
    assert fast == slow and fast  # some match, some do not, in both paths alike
    # Java's \s is [ \t\n\x0B\f\r]: \x1c is no whitespace there (Python's text regex says it is without re.ASCII)
    assert regex(regex=r"(\s)", colNames="a").serialize([Event(b"\x1c")])[0] == []
    assert regex(regex=r"(\w+)", colNames="a").serialize([Event("été".encode())])[0] == []
