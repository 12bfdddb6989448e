"""The spooldir source with the real ``agent``: files completed or deleted, restart resumes without loss,
a changed or re-used file gets a clear error while other files go on, deserializers."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import fastavro

from conftest import rolled_lines, wait_for, wait_for_events

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {spool}
a1.sources.r1.batchSize = {batch}
a1.sources.r1.pollDelay = 100
a1.sources.r1.channels = c1
{extra}
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {tmp}/cp
a1.channels.c1.dataDirs = {tmp}/data
a1.channels.c1.minimumRequiredSpace = 1048576
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {tmp}/out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
a1.sinks.k1.sink.serializer = {serializer}
"""


def setup(tmp: Path, extra: str = "", batch: int = 100, serializer: str = "text") -> str:
    (tmp / "spool").mkdir(exist_ok=True)
    (tmp / "out").mkdir(exist_ok=True)
    return CONF.format(spool=tmp / "spool", tmp=tmp, extra=extra, batch=batch, serializer=serializer)


def write(path: Path, data: bytes) -> None:
    """Files are written elsewhere and moved in, as spooldir requires."""
    tmp = path.parent.parent / (path.name + ".writing")
    tmp.write_bytes(data)
    os.rename(tmp, path)


def lines(tag: str, n: int) -> list[bytes]:
    return [b"%s-%06d" % (tag.encode(), i) for i in range(n)]


def test_files_are_read_in_order_and_completed(run_agent, tmp_path: Path) -> None:
    agent = run_agent(setup(tmp_path, "a1.sources.r1.fileHeader = true", serializer="header_and_text"))
    spool = tmp_path / "spool"
    write(spool / "a.log", b"\n".join(lines("a", 1000)) + b"\n")
    time.sleep(0.05)
    write(spool / "b.log", b"\n".join(lines("b", 500)))  # no final newline: the last line still counts
    wait_for_events(lines("a", 1000) + lines("b", 500),
                    lambda: [g.split(b"} ", 1)[1] for g in rolled_lines(tmp_path / "out")], logs=[agent])
    got = rolled_lines(tmp_path / "out")
    assert [g.split(b"} ", 1)[1] for g in got] == lines("a", 1000) + lines("b", 500)
    assert got[0].startswith(b"{file=%s} " % str(spool / "a.log").encode())
    wait_for(lambda: sorted(p.name for p in spool.iterdir() if not p.name.startswith(".")) ==
             ["a.log.COMPLETED", "b.log.COMPLETED"])
    assert agent.terminate() == 0


def test_delete_policy_immediate_and_empty_file(run_agent, tmp_path: Path) -> None:
    agent = run_agent(setup(tmp_path, "a1.sources.r1.deletePolicy = immediate"))
    spool = tmp_path / "spool"
    write(spool / "empty.log", b"")
    write(spool / "x.log", b"one\r\ntwo\n")
    wait_for(lambda: len(rolled_lines(tmp_path / "out")) == 3)
    # an empty file gives one empty event; \r is kept
    assert sorted(rolled_lines(tmp_path / "out")) == sorted([b"", b"one\r", b"two"])
    wait_for(lambda: [p for p in spool.iterdir() if not p.name.startswith(".")] == [])
    assert agent.terminate() == 0


def test_restart_mid_file_resumes_without_loss(run_agent, tmp_path: Path) -> None:
    conf = setup(tmp_path, batch=50)
    spool = tmp_path / "spool"
    big = lines("big", 200_000)
    write(spool / "big.log", b"\n".join(big) + b"\n")
    agent = run_agent(conf)
    wait_for(lambda: len(rolled_lines(tmp_path / "out")) > 1000)
    agent.kill()  # SIGKILL in the middle of the file
    assert (spool / "big.log").exists()
    (tmp_path / "agent.log").rename(tmp_path / "agent-1.log")
    agent = run_agent(conf)
    wait_for(lambda: (spool / "big.log.COMPLETED").exists(), timeout=60)
    wait_for_events(big, lambda: rolled_lines(tmp_path / "out"), timeout=30, logs=[agent])
    torn: list[bytes] = []  # the kill may have cut file_roll's write of a batch: that batch is written again
    got = rolled_lines(tmp_path / "out", torn)
    assert len(torn) <= 1 and all(any(line.startswith(t) for line in big) for t in torn)
    assert set(got) == set(big)
    assert len(got) - len(big) <= 50 + 1000  # at most the batch in flight at the kill, and one sink batch
    assert agent.terminate() == 0


def test_changed_file_is_an_error_naming_it_and_others_go_on(run_agent, tmp_path: Path) -> None:
    agent = run_agent(setup(tmp_path, batch=10))
    spool = tmp_path / "spool"
    (spool / "grow.log").write_bytes(b"\n".join(lines("g", 100_000)) + b"\n")  # written in place: still growing

    with open(spool / "grow.log", "ab") as f:
        for _ in range(20):
            f.write(b"late\n")
            f.flush()
            time.sleep(0.02)
    write(spool / "ok.log", b"\n".join(lines("ok", 10)) + b"\n")
    wait_for(lambda: "File has been modified since being read" in agent.log(), timeout=60)
    assert str(spool / "grow.log") in agent.log()
    wait_for(lambda: (spool / "ok.log.COMPLETED").exists(), timeout=30)
    assert (spool / "grow.log").exists()  # left in place
    wait_for(lambda: set(lines("ok", 10)) <= set(rolled_lines(tmp_path / "out")))
    # a re-used name
    write(spool / "ok.log", b"different\n")
    wait_for(lambda: "re-used" in agent.log(), timeout=30)
    assert agent.terminate() == 0


def test_avro_and_blob_deserializers(run_agent, tmp_path: Path) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]}
    buf = io.BytesIO()
    fastavro.writer(buf, schema, [{"n": i} for i in range(300)])
    agent = run_agent(setup(tmp_path, "a1.sources.r1.deserializer = AVRO\n"
                                      "a1.sources.r1.deserializer.schemaType = LITERAL",
                            serializer="avro_event"))
    write(tmp_path / "spool" / "r.avro", buf.getvalue())
    wait_for(lambda: (tmp_path / "spool" / "r.avro.COMPLETED").exists())
    assert agent.terminate() == 0
    events = []
    for p in (tmp_path / "out").iterdir():
        with open(p, "rb") as f:
            events += list(fastavro.reader(f))
    parsed = fastavro.parse_schema(schema)
    assert [fastavro.schemaless_reader(io.BytesIO(e["body"]), parsed) for e in events] == [{"n": i} for i in range(300)]
    assert '"name": "R"' in events[0]["headers"]["flume.avro.schema.literal"]


def test_blob_deserializer_makes_one_event_per_file(run_agent, tmp_path: Path) -> None:
    agent = run_agent(setup(tmp_path, "a1.sources.r1.deserializer = "
                                      "org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder",
                            serializer="text\na1.sinks.k1.sink.serializer.appendNewline = false"))
    blob = os.urandom(300_000)
    write(tmp_path / "spool" / "blob.bin", blob)
    wait_for(lambda: (tmp_path / "spool" / "blob.bin.COMPLETED").exists())
    assert agent.terminate() == 0
    assert b"".join(p.read_bytes() for p in (tmp_path / "out").iterdir()) == blob


GATED = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {tmp}/spool
a1.sources.r1.batchSize = 50
a1.sources.r1.maxBackoff = 200
a1.sources.r1.decodeErrorPolicy = {policy}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 200
a1.channels.c1.transactionCapacity = 50
a1.channels.c1.keep-alive = 0
a1.sinks.k1.type = gate_sink.GateSink
a1.sinks.k1.channel = c1
a1.sinks.k1.gate = {tmp}/gate
a1.sinks.k1.path = {tmp}/out/got
a1.sinks.k1.batchSize = 50
"""


def test_full_channel_stalls_the_source_and_it_resumes_without_loss(run_agent, tmp_path: Path) -> None:
    (tmp_path / "spool").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "gate").touch()  # the sink holds its batches: the 200-event channel fills up
    agent = run_agent(GATED.format(tmp=tmp_path, policy="FAIL"))
    write(tmp_path / "spool" / "a.log", b"\n".join(lines("a", 5000)) + b"\n")
    wait_for(lambda: "the channel refused a batch" in agent.log(), timeout=20)
    time.sleep(0.5)
    assert not (tmp_path / "spool" / "a.log.COMPLETED").exists()
    (tmp_path / "gate").unlink()
    wait_for(lambda: (tmp_path / "out" / "got").exists() and
             len((tmp_path / "out" / "got").read_bytes().split(b"\n")) - 1 == 5000, timeout=60)
    assert (tmp_path / "out" / "got").read_bytes().split(b"\n")[:-1] == lines("a", 5000)
    assert agent.terminate() == 0


def test_decode_error_policies(run_agent, tmp_path: Path) -> None:
    bad = b"good line\nbad \xff\xfe bytes\nlast\n"
    results = {}
    for policy in ("FAIL", "REPLACE", "IGNORE"):
        d = tmp_path / policy
        (d / "spool").mkdir(parents=True)
        (d / "out").mkdir()
        agent = run_agent(GATED.format(tmp=d, policy=policy))
        write(d / "spool" / "x.log", bad)
        if policy == "FAIL":
            wait_for(lambda a=agent: "cannot decode it" in a.log())
            assert str(d / "spool" / "x.log") in agent.log()
            assert (d / "spool" / "x.log").exists()
        else:
            wait_for(lambda d=d: (d / "spool" / "x.log.COMPLETED").exists())
            wait_for(lambda d=d: (d / "out" / "got").exists() and (d / "out" / "got").read_bytes().count(b"\n") == 3)
            results[policy] = (d / "out" / "got").read_bytes().split(b"\n")[:-1]
        assert agent.terminate() == 0
        (tmp_path / "agent.log").rename(tmp_path / f"agent-{policy}.log")
    assert results["REPLACE"] == [b"good line", "bad \ufffd\ufffd bytes".encode(), b"last"]
    assert results["IGNORE"] == [b"good line", b"bad  bytes", b"last"]
