"""Serializers write exactly Flume's bytes; avro_event files read back with fastavro; the logger sink's event dump
matches Flume's EventHelper.dumpEvent (commons-io HexDump) character for character."""

from __future__ import annotations

import io

import fastavro
import pytest

from agent.core import Event
from agent.registry import resolve
from agent.spec import ConfigError, Problem, Raw
from sinks.logger import dump_event, hex_dump
from sinks.serializers import (
    BodyTextEventSerializer,
    EventSerializer,
    FlumeEventAvroEventSerializer,
    HeaderAndBodyTextEventSerializer,
    java_map_string,
)


def build(alias: str, **props: str) -> tuple[EventSerializer, list[Problem]]:
    cls = resolve("serializer", alias)
    problems: list[Problem] = []
    conf = cls.spec.bind({k: Raw(v, 7) for k, v in props.items()}, problems=problems, component="k1",
                         key_prefix="sink.serializer.")
    ser = cls("k1", conf)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError("; ".join(map(str, errors)))
    return ser, problems


def serialize(ser: EventSerializer, *batches: list[Event]) -> bytes:
    out = io.BytesIO()
    ser.open(out)
    for batch in batches:
        ser.write(batch)
        ser.flush()
    ser.close()
    return out.getvalue()


# --------------------------------------------------------------------------------------------------------------
# Resolution


@pytest.mark.parametrize("name, cls", [
    ("text", BodyTextEventSerializer),
    ("TEXT", BodyTextEventSerializer),
    ("header_and_text", HeaderAndBodyTextEventSerializer),
    ("HEADER_AND_TEXT", HeaderAndBodyTextEventSerializer),
    ("avro_event", FlumeEventAvroEventSerializer),
    ("org.apache.flume.serialization.BodyTextEventSerializer$Builder", BodyTextEventSerializer),
    ("org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder", HeaderAndBodyTextEventSerializer),
    ("org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder", FlumeEventAvroEventSerializer),
    ("sinks.serializers.BodyTextEventSerializer", BodyTextEventSerializer),
])
def test_names_resolve_as_in_flume(name, cls):
    assert resolve("serializer", name) is cls


# --------------------------------------------------------------------------------------------------------------
# Text serializers

E1 = Event(b"first", {"host": "web1"})
E2 = Event(b"second", {"host": "web2", "topic": "a b"})
E3 = Event(b"", {})


@pytest.mark.parametrize("alias, props, batches, want", [
    ("text", {}, [[E1, E2]], b"first\nsecond\n"),
    ("text", {}, [[E1], [E2, E3]], b"first\nsecond\n\n"),
    ("text", {"appendNewline": "false"}, [[E1, E2, E3]], b"firstsecond"),
    ("text", {"appendNewline": "FALSE"}, [[E1], [E2]], b"firstsecond"),
    ("text", {}, [[]], b""),
    ("header_and_text", {}, [[E1, E2, E3]],
     b"{host=web1} first\n{host=web2, topic=a b} second\n{} \n"),
    ("header_and_text", {"appendNewline": "false"}, [[E1], [E2]],
     b"{host=web1} first{host=web2, topic=a b} second"),
    ("header_and_text", {}, [[Event(b"x", {"k": "\u00e9"})]], "{k=\u00e9} x\n".encode()),
], ids=["text", "text-batches", "text-no-newline", "text-no-newline-any-case", "text-empty-batch",
        "headers", "headers-no-newline", "headers-utf8"])
def test_text_serializers(alias, props, batches, want):
    ser, problems = build(alias, **props)
    assert problems == []
    assert serialize(ser, *batches) == want


def test_text_writes_one_buffer_per_batch():
    writes: list[bytes] = []

    class Recorder(io.BytesIO):
        def write(self, data):  # type: ignore[override]
            writes.append(bytes(data))
            return super().write(data)

    for alias in ("text", "header_and_text"):
        writes.clear()
        ser, _ = build(alias)
        ser.open(Recorder())
        ser.write([E1, E2, E3])
        assert len(writes) == 1


def test_text_encode_equals_write():
    ser, _ = build("text")
    assert ser.encode([E1, E2]) == b"first\nsecond\n"
    assert ser.supports_reopen


def test_unknown_option_is_warned_with_the_nearest_name():
    _, problems = build("text", appendNewLine="false")
    assert [str(p) for p in problems] == [
        ":7: k1: warning: unknown property 'sink.serializer.appendNewLine'; did you mean "
        "'sink.serializer.appendNewline'?"]


def test_bad_boolean_is_an_error():
    with pytest.raises(ConfigError, match=r"sink.serializer.appendNewline: 'yes' is not a boolean"):
        build("text", appendNewline="yes")


@pytest.mark.parametrize("headers, want", [
    ({}, "{}"),
    ({"a": "1"}, "{a=1}"),
    ({"a": "1", "b": ""}, "{a=1, b=}"),
])
def test_java_map_string(headers, want):
    assert java_map_string(headers) == want


# --------------------------------------------------------------------------------------------------------------
# avro_event


def read_avro(data: bytes) -> tuple[list[dict], dict, int]:
    r = fastavro.reader(io.BytesIO(data))
    records = list(r)
    blocks = sum(1 for _ in fastavro.block_reader(io.BytesIO(data)))
    return records, r.metadata, blocks


def test_avro_round_trip_null_codec():
    ser, problems = build("avro_event")
    assert problems == [] and not ser.supports_reopen
    data = serialize(ser, [E1, E2], [E3])
    records, meta, blocks = read_avro(data)
    assert records == [
        {"headers": {"host": "web1"}, "body": b"first"},
        {"headers": {"host": "web2", "topic": "a b"}, "body": b"second"},
        {"headers": {}, "body": b""},
    ]
    assert meta["avro.codec"] == "null"
    assert blocks == 2  # one block per flushed batch, as Flume's sinks flush per batch
    schema = fastavro.reader(io.BytesIO(data)).writer_schema
    assert schema["name"] == "Event" and "namespace" not in schema


def test_avro_deflate_and_blocks_by_sync_interval():
    ser, _ = build("avro_event", compressionCodec="deflate", syncIntervalBytes="1000")
    events = [Event(b"%05d" % i + b"x" * 95, {"n": str(i)}) for i in range(100)]
    data = serialize(ser, events)
    records, meta, blocks = read_avro(data)
    assert meta["avro.codec"] == "deflate"
    assert [r["body"] for r in records] == [e.body for e in events]
    assert [r["headers"]["n"] for r in records] == [str(i) for i in range(100)]
    assert blocks >= 10  # ~108 bytes per record, a block every ~1000 bytes
    assert len(data) < 100 * 100  # compressed


def test_avro_blocks_reach_the_file_before_flush_when_the_interval_fills():
    ser, _ = build("avro_event", syncIntervalBytes="32")
    out = io.BytesIO()
    ser.open(out)
    header = len(out.getvalue())
    ser.write([Event(b"y" * 40)])  # bigger than the interval: a block is written at once
    assert len(out.getvalue()) > header
    ser.close()
    assert [r["body"] for r in fastavro.reader(io.BytesIO(out.getvalue()))] == [b"y" * 40]


def test_avro_serializer_reopens_a_fresh_container_for_each_file():
    ser, _ = build("avro_event")
    first = serialize(ser, [E1])
    second = serialize(ser, [E2])
    assert [r["body"] for r in fastavro.reader(io.BytesIO(first))] == [b"first"]
    assert [r["body"] for r in fastavro.reader(io.BytesIO(second))] == [b"second"]


def test_avro_empty_file_is_a_valid_container():
    ser, _ = build("avro_event")
    records, _, blocks = read_avro(serialize(ser))
    assert records == [] and blocks == 0


def test_avro_unknown_codec_warns_and_writes_uncompressed():
    ser, problems = build("avro_event", compressionCodec="lzo")
    assert [p.severity for p in problems] == ["warning"]
    assert problems[0].prop == "sink.serializer.compressionCodec"
    assert "Unable to instantiate avro codec with name (lzo)" in problems[0].message
    assert "Compression disabled" in problems[0].message
    _, meta, _ = read_avro(serialize(ser, [E1]))
    assert meta["avro.codec"] == "null"


def test_avro_codec_names_are_case_sensitive_as_in_avro_java():
    ser, problems = build("avro_event", compressionCodec="Deflate")
    assert ser.codec == "null" and problems[0].severity == "warning"


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has("cramjam"), reason="snappy needs the cramjam package, not installed here")
def test_avro_snappy_round_trip():
    ser, _ = build("avro_event", compressionCodec="snappy")
    records, meta, _ = read_avro(serialize(ser, [E1, E2]))
    assert meta["avro.codec"] == "snappy" and [r["body"] for r in records] == [b"first", b"second"]


@pytest.mark.skipif(_has("cramjam"), reason="cramjam is installed, so snappy works")
def test_avro_snappy_without_its_library_says_what_to_install():
    with pytest.raises(ConfigError, match=r"'snappy' needs the Python package cramjam; install it"):
        build("avro_event", compressionCodec="snappy")


def test_avro_sync_interval_bounds_as_avro_java():
    with pytest.raises(ConfigError, match="syncIntervalBytes: 31 is too small; the minimum is 32"):
        build("avro_event", syncIntervalBytes="31")


# --------------------------------------------------------------------------------------------------------------
# The logger sink's event dump (Flume's EventHelper.dumpEvent over commons-io HexDump)

ALPHABET = b"abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("body, headers, max_bytes, want", [
    (b"", {}, 16, "{ headers:{} body: }"),
    (b"", {"a": "1"}, 16, "{ headers:{a=1} body: }"),
    (b"hello", {}, 16, "{ headers:{} body: 68 65 6C 6C 6F" + " " * 34 + "hello }"),
    (b"0123456789ABCDEF", {}, 16,
     "{ headers:{} body: 30 31 32 33 34 35 36 37 38 39 41 42 43 44 45 46 0123456789ABCDEF }"),
    (ALPHABET, {}, 16,
     "{ headers:{} body: 61 62 63 64 65 66 67 68 69 6A 6B 6C 6D 6E 6F 70 abcdefghijklmnop }"),
    (ALPHABET, {}, 4, "{ headers:{} body: 61 62 63 64" + " " * 37 + "abcd }"),
    (b"\x00\x01\x7f\x80\xff a~\t", {}, 16,
     "{ headers:{} body: 00 01 7F 80 FF 20 61 7E 09" + " " * 22 + "..... a~. }"),
    (b"x", {"host": "web1", "topic": "t"}, 16, "{ headers:{host=web1, topic=t} body: 78" + " " * 46 + "x }"),
    (ALPHABET, {}, 20,
     "{ headers:{} body: 61 62 63 64 65 66 67 68 69 6A 6B 6C 6D 6E 6F 70 abcdefghijklmnop\n"
     "00000010 71 72 73 74" + " " * 37 + "qrst }"),
    (b"abc", {}, 0, "{ headers:{} body:...Exception while dumping: illegal index: 0 into array of length 0 }"),
], ids=["empty", "empty-with-header", "short", "exactly-16", "longer-than-max", "max-4", "non-printable",
        "headers", "two-lines", "max-0"])
def test_dump_event_matches_flume(body, headers, max_bytes, want):
    assert dump_event(Event(body, headers), max_bytes) == want


def test_hex_dump_is_commons_io_format():
    # HexDump.dump(data, 0, out, 0): offset, 16 three-character slots, the ASCII column, the line separator.
    assert hex_dump(b"AB") == "00000000 41 42" + " " * 43 + "AB\n"
    assert hex_dump(bytes(range(17))) == (
        "00000000 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F ................\n"
        "00000010 10" + " " * 46 + ".\n")
    assert hex_dump(b"") == ""
