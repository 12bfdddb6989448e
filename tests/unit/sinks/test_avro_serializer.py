"""The hdfs sink's AvroEventSerializer (bodies that are Avro datums, in an Avro container file), written by the
file_roll and hdfs sinks and read back by fastavro and by Hadoop's own ``fs -text``: the schema from each header
and from schemaURL, the codecs, blocks per flush, and a batch without a schema rolled back."""

from __future__ import annotations

import io
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent import config
from agent.core import Event, EventDeliveryException, Status
from tests.conftest import put_events, require_java_peers, started_sink

fastavro = pytest.importorskip("fastavro")

SCHEMA = {"type": "record", "name": "Click", "namespace": "web",
          "fields": [{"name": "user", "type": "string"}, {"name": "n", "type": "long"},
                     {"name": "tags", "type": {"type": "array", "items": "string"}}]}
SERIALIZER = "org.apache.flume.sink.hdfs.AvroEventSerializer$Builder"

BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.keep-alive = 0
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = {serializer}
"""


def records(start: int, n: int) -> list[dict]:
    return [{"user": f"u{i}", "n": i * 1000003, "tags": ["a"] * (i % 3)} for i in range(start, start + n)]


def datum(record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(SCHEMA), record)
    return buf.getvalue()


def events(recs: list[dict], **headers: str) -> list[Event]:
    return [Event(datum(r), dict(headers)) for r in recs]


def file_roll(tmp_path: Path, extra: str = ""):
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    p = tmp_path / "a1.conf"
    p.write_text(BASE.format(out=out, serializer=SERIALIZER) + extra)
    return (*started_sink(p), out)


def read_back(out: Path) -> tuple[list[dict], dict]:
    [path] = list(out.iterdir())
    with open(path, "rb") as f:
        reader = fastavro.reader(f)
        return list(reader), reader.metadata


@pytest.mark.parametrize("codec", ["null", "deflate", "bzip2", "xz", "snappy"])
def test_bodies_become_the_records_of_an_avro_file_with_the_literal_schema(tmp_path, codec):
    k, ch, out = file_roll(tmp_path, f"a1.sinks.k1.sink.serializer.compressionCodec = {codec}\n"
                                     f"a1.sinks.k1.sink.serializer.syncIntervalBytes = 100\n")
    literal = json.dumps(SCHEMA)
    put_events(ch, events(records(0, 30), **{"flume.avro.schema.literal": literal}))
    assert k.process() is Status.READY
    got, meta = read_back(out)  # readable after the commit, before the file is closed
    assert got == records(0, 30) and meta["avro.codec"] == codec
    assert json.loads(meta["avro.schema"]) == SCHEMA
    put_events(ch, events(records(30, 5)))  # later events need no header: the file's schema is the first event's
    assert k.process() is Status.READY
    k.stop()
    assert read_back(out)[0] == records(0, 35)


def test_schema_from_the_url_header_and_from_schema_url_over_http(tmp_path):
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "click.avsc").write_text(json.dumps(SCHEMA, indent=2))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(schemas)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/click.avsc"
        k, ch, out = file_roll(tmp_path, f"a1.sinks.k1.sink.serializer.schemaURL = {url}\n")
        put_events(ch, events(records(0, 3)))
        assert k.process() is Status.READY
        k.stop()
        assert read_back(out)[0] == records(0, 3)
    finally:
        server.shutdown()
        server.server_close()
    k, ch, out = file_roll(tmp_path / "2")
    put_events(ch, events(records(0, 2), **{"flume.avro.schema.url": (schemas / "click.avsc").as_uri()}))
    assert k.process() is Status.READY
    k.stop()
    assert read_back(out)[0] == records(0, 2)


def test_an_event_without_a_schema_fails_its_batch_and_stays_in_the_channel(tmp_path):
    k, ch, out = file_roll(tmp_path)
    put_events(ch, events(records(0, 2)))
    with pytest.raises(EventDeliveryException, match="Could not find schema for event"):
        k.process()
    with ch.transaction() as tx:
        assert len(tx.take_batch(10)) == 2
        tx.rollback()
    k.stop()


def test_hadoop_reads_the_file(tmp_path):
    require_java_peers()
    from peers import hdfs

    k, ch, out = file_roll(tmp_path, "a1.sinks.k1.sink.serializer.compressionCodec = deflate\n")
    put_events(ch, events(records(0, 20), **{"flume.avro.schema.literal": json.dumps(SCHEMA)}))
    assert k.process() is Status.READY
    k.stop()
    [path] = list(out.iterdir())
    text = hdfs.hadoop_text("file:///", str(path))
    assert [json.loads(line) for line in text.decode().splitlines()] == records(0, 20)


def test_the_hdfs_sink_writes_it_too(tmp_path):
    p = tmp_path / "a1.conf"
    p.write_text(f"""\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = file://{tmp_path}/out
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.fileSuffix = .avro
a1.sinks.k1.serializer = {SERIALIZER}
a1.sinks.k1.serializer.compressionCodec = snappy
""")
    topo, problems = config.check([str(p)], "a1")
    assert topo is not None, [str(x) for x in problems]
    k = topo.sinks["k1"]
    k.start()
    k.deliver(events(records(0, 10), **{"flume.avro.schema.literal": json.dumps(SCHEMA)}))
    k.stop()
    [path] = list((tmp_path / "out").glob("*.avro"))
    with open(path, "rb") as f:
        assert list(fastavro.reader(f)) == records(0, 10)
