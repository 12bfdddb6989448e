"""fileType Parquet on file://: each batch durable in the staging log, the Parquet file written on roll, and a
staging log left by a crash converted on the next start."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from agent.core import Event
from agent.spec import Conf
from conftest import file_hdfs_sink
from sinks.hdfs import HDFSEventSink


def rows(out: Path) -> list[tuple[bytes, dict]]:
    got = []
    for f in sorted(out.glob("*.parquet")):
        got += [(r["body"], dict(r["headers"])) for r in pq.read_table(f).to_pylist()]
    return got


def test_batches_are_staged_then_written_as_parquet_on_close(tmp_path):
    s = file_hdfs_sink(tmp_path, "Parquet", hdfs__rollCount="4")
    s.deliver([Event(b"a", {"k": "1"}), Event(b"b")])
    staging = list(tmp_path.glob("*.parquet.tmp"))
    assert len(staging) == 1 and staging[0].stat().st_size > 0  # durable before the transaction commits
    assert not list(tmp_path.glob("*.parquet"))
    s.deliver([Event(b"c"), Event(b"d"), Event(b"e")])  # the 4th event rolls the first file
    s.stop()
    assert not list(tmp_path.glob("*.tmp"))
    assert rows(tmp_path) == [(b"a", {"k": "1"}), (b"b", {}), (b"c", {}), (b"d", {}), (b"e", {})]
    assert len(list(tmp_path.glob("*.parquet"))) == 2


def test_a_crash_leaves_a_staging_log_that_the_next_start_converts(tmp_path):
    s = file_hdfs_sink(tmp_path, "Parquet")
    s.deliver([Event(b"x%d" % i) for i in range(100)])
    # the process dies here: no stop(), the staging log stays; a batch cut short by the crash leaves a torn tail
    staging = next(tmp_path.glob("*.parquet.tmp"))
    with open(staging, "ab") as f:
        f.write(b"\x00\x00\x00\x09abc")
    s2 = file_hdfs_sink(tmp_path, "Parquet")
    s2.deliver([Event(b"after")])
    s2.stop()
    assert sorted(b for b, _ in rows(tmp_path)) == sorted([b"x%d" % i for i in range(100)] + [b"after"])
    assert not list(tmp_path.glob("*.tmp"))


def test_parquet_needs_an_in_use_name(tmp_path):
    conf = Conf.from_dict(HDFSEventSink.spec, hdfs__path=f"file://{tmp_path}", hdfs__fileType="Parquet",
                          hdfs__emptyInUseSuffix="true")
    HDFSEventSink("k1", conf)
    assert any("in-use name" in p.message for p in conf.problems)
