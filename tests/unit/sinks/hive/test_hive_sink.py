"""The hive sink without a Hive: Flume's properties and defaults, the errors `--check` reports, the serializers'
parsing, partition names, and the ACID ORC file layout (read back with pyarrow)."""

from __future__ import annotations

import datetime as dt
import decimal
import io
from pathlib import Path

import pyarrow.orc as orc
import pytest

from agent import config
from sinks.hive.acid import arrow_type, delta_dir, orc_bytes
from sinks.hive.metastore import metastore_targets, partition_name
from sinks.hive.serializers import DelimitedSerializer, JsonSerializer, RecordError, converter, parse_serde_separator

pytest.importorskip("thriftpy2")

BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 20000
a1.channels.c1.transactionCapacity = 20000
a1.sinks.k1.channel = c1
a1.sinks.k1.type = hive
"""
GOOD = """\
a1.sinks.k1.hive.metastore = thrift://127.0.0.1:9083
a1.sinks.k1.hive.database = logs
a1.sinks.k1.hive.table = Web
a1.sinks.k1.serializer = DELIMITED
a1.sinks.k1.serializer.fieldnames = id,,msg
"""


def build(tmp_path: Path, extra: str):
    f = tmp_path / "h.conf"
    f.write_text(BASE + extra)
    topo, problems = config.check([str(f)], "a1")
    return topo, [str(p) for p in problems if p.severity == "error"], [str(p) for p in problems if
                                                                          p.severity != "error"]


@pytest.mark.parametrize("type_", ["hive", "org.apache.flume.sink.hive.HiveSink"])
def test_types_and_flume_defaults(tmp_path, type_):
    topo, errors, warnings = build(tmp_path, GOOD + f"a1.sinks.k1.type = {type_}\n")
    assert not errors and not warnings
    sink = topo.sinks["k1"]
    c = sink.config
    assert (c.hive_txns_per_batch_ask, c.heart_beat_interval, c.auto_create_partitions, c.batch_size,
            c.max_open_connections, c.call_timeout, c.idle_timeout, c.use_local_time_stamp, c.round,
            c.round_value, c.round_unit, c.serializer_delimiter) == (100, 240, True, 15000, 500, 10000, 0, False,
                                                                     False, 1, "minute", ",")
    assert sink.full_name == "logs.web" and sink.targets == [("127.0.0.1", 9083)]
    assert sink.serializer.fieldnames == ["id", "", "msg"] and sink.partition_templates == []


def test_bad_settings_are_named(tmp_path):
    _, errors, _ = build(tmp_path, """\
a1.sinks.k1.hive.metastore = http://ms:9083
a1.sinks.k1.hive.database = logs
a1.sinks.k1.hive.table = web
a1.sinks.k1.serializer = CSV
a1.sinks.k1.round = true
a1.sinks.k1.roundUnit = hour
a1.sinks.k1.roundValue = 25
a1.sinks.k1.batchSize = 0
""")
    text = "\n".join(errors)
    assert "h.conf:11: a1.sinks.k1 (hive): hive.metastore: 'http://ms:9083' is not a metastore URI; expected " \
        "thrift://host:port" in text
    assert "h.conf:14: a1.sinks.k1 (hive): serializer: serializer = 'CSV': expected DELIMITED or JSON" in text
    assert "h.conf:17: a1.sinks.k1 (hive): roundValue: roundValue must be at most 24 for roundUnit hour" in text
    assert "h.conf:18: a1.sinks.k1 (hive): batchSize: 0 is too small" in text
    _, errors, _ = build(tmp_path, GOOD.replace("a1.sinks.k1.serializer.fieldnames = id,,msg\n", "")
                         + "a1.sinks.k1.serializer.serdeSeparator = ab\n")
    text = "\n".join(errors)
    assert "(hive): serializer.fieldnames: serializer.fieldnames is required with serializer = DELIMITED" in text
    assert "(hive): serializer.serdeSeparator: serializer.serdeSeparator = 'ab': 'ab' is not one character" in text
    _, errors, _ = build(tmp_path, "a1.sinks.k1.hive.table = t\n")
    text = "\n".join(errors)
    for prop in ("hive.metastore", "hive.database", "serializer"):
        assert f"{prop}" in text


def test_json_warns_about_delimited_options(tmp_path):
    _, errors, warnings = build(tmp_path, GOOD.replace("DELIMITED", "org.apache.flume.sink.hive.HiveJsonSerializer"))
    assert not errors
    assert any("serializer.fieldnames: warning: serializer.fieldnames is read only by the DELIMITED serializer"
               in w for w in warnings)


def test_partition_escapes_resolve_like_flume(tmp_path):
    topo, errors, _ = build(tmp_path, GOOD + "a1.sinks.k1.hive.partition = %Y-%m-%d,%{src},%H%M\n"
                                             "a1.sinks.k1.timeZone = UTC\na1.sinks.k1.round = true\n"
                                             "a1.sinks.k1.roundValue = 15\n")
    assert not errors
    ts = str(int(dt.datetime(2024, 3, 9, 10, 44, 5, tzinfo=dt.UTC).timestamp() * 1000))
    vals = [t.resolve({"timestamp": ts, "src": "web"}) for t in topo.sinks["k1"].partition_templates]
    assert vals == ["2024-03-09", "web", "1030"]


@pytest.mark.parametrize("keys, values, name", [
    (["day"], ["2024-01-01"], "day=2024-01-01"),
    (["day", "src"], ["2024-01-01", "a/b"], "day=2024-01-01/src=a%2Fb"),
    (["k"], ["x=y:z#%"], "k=x%3Dy%3Az%23%25"),
])
def test_partition_names_escape_like_hive(keys, values, name):
    assert partition_name(keys, values) == name


def test_metastore_targets():
    assert metastore_targets("thrift://a:1, thrift://b") == [("a", 1), ("b", 9083)]
    with pytest.raises(ValueError, match="port"):
        metastore_targets("thrift://a:x")


@pytest.mark.parametrize("hive_type, text, value", [
    ("int", "42", 42), ("int", "4x", None), ("int", "2147483648", None), ("tinyint", "-128", -128),
    ("bigint", "9007199254740993", 9007199254740993), ("double", "1.5", 1.5), ("boolean", "TRUE", True),
    ("boolean", "yes", None), ("varchar(3)", "abcdef", "abc"), ("char(4)", "ab", "ab  "),
    ("decimal(5,2)", "1.005", decimal.Decimal("1.01")), ("date", "2024-02-29", dt.date(2024, 2, 29)),
    ("timestamp", "2024-02-29 10:11:12.5", dt.datetime(2024, 2, 29, 10, 11, 12, 500000)),
    ("string", "x", "x"),
])
def test_text_fields_read_like_hives_text_serde(hive_type, text, value):
    assert converter(hive_type)(text) == value


def test_delimited_maps_fields_skips_empty_names_and_refuses_bad_counts():
    s = DelimitedSerializer("\t", ["id", "", "MSG"])
    convs = [converter("int"), converter("string"), converter("string")]
    cols = s.columns("db.t", [b"1\tx\thello", b"\\N\ty\t"], ["id", "msg", "other"], [convs[0], convs[1], convs[2]])
    assert cols == [[1, None], ["hello", ""], [None, None]]
    with pytest.raises(RecordError, match=r"event 2 of the batch has 2 field\(s\) separated by '\\t' but "
                                          r"serializer.fieldnames names 3 \(id,,msg\) for table db.t"):
        s.columns("db.t", [b"1\tx\ty", b"1\t2"], ["id", "msg"], convs[:2])
    with pytest.raises(RecordError, match="names 'nope', which is not a column of table db.t"):
        DelimitedSerializer(",", ["id", "nope"]).check("db.t", ["id", "msg"])


def test_json_maps_keys_case_insensitively_and_refuses_non_objects():
    s = JsonSerializer()
    cols = s.columns("db.t", [b'{"ID": 7, "msg": "a", "ok": true}', b'{"id": "8"}'], ["id", "msg", "ok"],
                     [converter("int"), converter("string"), converter("boolean")])
    assert cols == [[7, 8], ["a", None], [True, None]]
    with pytest.raises(RecordError, match="event 1 of the batch for table db.t is not JSON"):
        s.columns("db.t", [b"{oops"], ["id"], [converter("int")])
    with pytest.raises(RecordError, match="is JSON but not an object"):
        s.columns("db.t", [b"[1]"], ["id"], [converter("int")])


def test_serde_separator_spellings():
    assert parse_serde_separator(",") == "," and parse_serde_separator("'\t'") == "\t"
    with pytest.raises(ValueError):
        parse_serde_separator("'ab'")


def test_acid_file_layout():
    assert delta_dir(12) == "delta_0000012_0000012"
    data = orc_bytes(12, ["id", "msg"], [arrow_type("int"), arrow_type("varchar(10)")], [[1, 2], ["a", None]])
    reader = orc.ORCFile(io.BytesIO(data))
    # the user metadata Hive's ACID writer puts in each file (the key index: write id, bucket, last row id)
    assert reader.metadata == {b"hive.acid.key.index": b"12,536870912,1;", b"hive.acid.stats": b"2,0,0",
                               b"hive.acid.version": b"2"}
    table = reader.read()
    assert table.column_names == ["operation", "originalTransaction", "bucket", "rowId", "currentTransaction", "row"]
    rows = table.to_pylist()
    assert rows == [
        {"operation": 0, "originalTransaction": 12, "bucket": 536870912, "rowId": 0, "currentTransaction": 12,
         "row": {"id": 1, "msg": "a"}},
        {"operation": 0, "originalTransaction": 12, "bucket": 536870912, "rowId": 1, "currentTransaction": 12,
         "row": {"id": 2, "msg": None}},
    ]
    with pytest.raises(ValueError, match="column type 'map<string,int>' is not supported"):
        arrow_type("map<string,int>")
