"""The hdfs sink against a real HDFS (Hadoop's MiniDFSCluster, WebHDFS on), over RPC (the default) and WebHDFS;
files read back by Hadoop's own code."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest
from hdfs import InsecureClient
from hdfs.util import HdfsError

from conftest import free_port, wait_for_events
from peers.hdfs import hadoop_text

pytestmark = pytest.mark.peer

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = {n}
a1.sources.r1.batchSize = 500
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = ts
a1.sources.r1.interceptors.ts.type = timestamp
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = hdfs://127.0.0.1:{rpc}{path}/%Y
{transport}
a1.sinks.k1.hdfs.timeZone = UTC
a1.sinks.k1.hdfs.batchSize = 1000
a1.sinks.k1.hdfs.rollInterval = 0
a1.sinks.k1.hdfs.rollSize = 0
a1.sinks.k1.hdfs.rollCount = {roll_count}
{extra}
"""


def _client(minidfs) -> InsecureClient:
    return InsecureClient(minidfs.webhdfs, user="root")


def _files(client: InsecureClient, path: str) -> list[str]:
    out = []
    for year in client.list(path):
        out += [f"{path}/{year}/{name}" for name in sorted(client.list(f"{path}/{year}"))]
    return out


def _wait_closed(client: InsecureClient, path: str, expect_files: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    files: list[str] = []
    while time.monotonic() < deadline:
        try:
            files = _files(client, path)
        except Exception:  # noqa: BLE001 - the directory may not exist yet
            files = []
        if len([f for f in files if not f.endswith(".tmp")]) >= expect_files:
            return files
        time.sleep(0.2)
    return files


def _wait_taken(mport: int, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
                if json.loads(r.read())["CHANNEL.c1"]["EventTakeSuccessCount"] == str(n):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the sink did not take {n} events within {timeout} s")


def _transport(minidfs, transport: str) -> str:
    if transport == "webhdfs":
        return f"a1.sinks.k1.hdfs.transport = webhdfs\na1.sinks.k1.hdfs.webhdfs.address = 127.0.0.1:{minidfs.http_port}"
    return ""


def _run(run_agent, minidfs, path: str, n: int, roll_count: int, extra: str, transport: str = "rpc") -> list[str]:
    mport = free_port()
    agent = run_agent(CONF.format(n=n, rpc=minidfs.rpc_port, transport=_transport(minidfs, transport), path=path,
                                  roll_count=roll_count, extra=extra),
                      args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
    _wait_taken(mport, n)
    assert agent.terminate() == 0  # closes and renames the last file
    client = _client(minidfs)
    files = _files(client, path)
    assert not any(f.endswith(".tmp") for f in files), files
    return files


def _expected(n: int) -> list[bytes]:
    return [str(i).encode() for i in range(n)]


@pytest.mark.parametrize(("codec", "transport"), [("", "rpc"), ("gzip", "rpc"), ("bzip2", "rpc"), ("default", "rpc"),
                                                  ("snappy", "rpc"), ("lz4", "rpc"), ("", "webhdfs"),
                                                  ("gzip", "webhdfs")])
def test_streams_read_back_by_hadoop(run_agent, minidfs, codec: str, transport: str) -> None:
    path = f"/flume/stream-{codec or 'plain'}-{transport}"
    extra = ("a1.sinks.k1.hdfs.fileType = CompressedStream\na1.sinks.k1.hdfs.codeC = " + codec) if codec else \
        "a1.sinks.k1.hdfs.fileType = DataStream"
    n = 5000
    files = _run(run_agent, minidfs, path, n, 2000, extra, transport)
    assert len(files) == 3
    ext = {"": "", "gzip": ".gz", "bzip2": ".bz2", "default": ".deflate", "snappy": ".snappy", "lz4": ".lz4"}[codec]
    assert all(f.split("/")[-1].startswith("FlumeData.") and f.endswith(ext) for f in files), files
    text = hadoop_text(f"hdfs://127.0.0.1:{minidfs.rpc_port}", f"{path}/*/*")
    assert sorted(text.split(b"\n")[:-1], key=int) == _expected(n)


@pytest.mark.parametrize(("write_format", "codec", "kind"), [
    ("Writable", "", ""), ("Text", "", ""), ("Writable", "default", "BLOCK"), ("Text", "default", "RECORD"),
    ("Writable", "snappy", "BLOCK"), ("Text", "bzip2", "BLOCK")])
def test_sequence_files_read_back_by_hadoop(run_agent, minidfs, write_format: str, codec: str, kind: str) -> None:
    path = f"/flume/seq-{write_format}-{codec or 'none'}-{kind}"
    n = 3000
    extra = f"a1.sinks.k1.hdfs.writeFormat = {write_format}"
    if codec:
        extra += f"\na1.sinks.k1.hdfs.codeC = {codec}\na1.sinks.k1.hdfs.sequenceFileCompression = {kind}"
    files = _run(run_agent, minidfs, path, n, 0, extra)
    assert len(files) == 1
    text = hadoop_text(f"hdfs://127.0.0.1:{minidfs.rpc_port}", files[0])
    lines = text.split(b"\n")[:-1]
    assert len(lines) == n
    keys, values = zip(*(line.split(b"\t", 1) for line in lines), strict=True)
    now = time.time() * 1000
    assert all(now - 600_000 < int(k) <= now for k in keys)  # the timestamp header
    if write_format == "Text":
        assert list(values) == _expected(n)
    else:  # BytesWritable prints its bytes in hex
        assert list(values) == [b" ".join(b"%02x" % c for c in v) for v in _expected(n)]


def test_in_use_file_left_by_a_crash_is_recovered(run_agent, minidfs) -> None:
    client = _client(minidfs)
    path = "/flume/recover"
    year = time.strftime("%Y", time.gmtime())
    client.write(f"{path}/{year}/FlumeData.123.tmp", data=b"left over\n")
    files = _run(run_agent, minidfs, path, 100, 0, "a1.sinks.k1.hdfs.fileType = DataStream")
    assert f"{path}/{year}/FlumeData.123" in files
    with client.read(f"{path}/{year}/FlumeData.123") as r:
        assert r.read() == b"left over\n"




def test_committed_batches_survive_a_killed_agent_and_the_next_start_closes_the_file(run_agent, minidfs) -> None:
    """Over RPC the file stays open between batches; every committed batch was hsynced, so Hadoop reads it all from
    the in-use file after a SIGKILL, and the next start recovers the dead writer's lease and renames the file."""
    path = "/flume/killed"
    n = 3000
    mport = free_port()
    conf = CONF.format(n=n, rpc=minidfs.rpc_port, transport="", path=path, roll_count=0,
                       extra="a1.sinks.k1.hdfs.fileType = DataStream\na1.sinks.k1.hdfs.batchSize = 100")
    agent = run_agent(conf, args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
    _wait_taken(mport, n)
    agent.kill()
    client = _client(minidfs)
    year = time.strftime("%Y", time.gmtime())
    left = [f for f in _files(client, path) if f.endswith(".tmp")]
    assert len(left) == 1, left
    text = hadoop_text(f"hdfs://127.0.0.1:{minidfs.rpc_port}", left[0])
    assert sorted(text.split(b"\n")[:-1], key=int) == _expected(n)
    files = _run(run_agent, minidfs, path, 10, 0, "a1.sinks.k1.hdfs.fileType = DataStream")
    recovered = left[0][:-len(".tmp")]
    assert recovered in files and len(files) == 2, files
    assert client.status(recovered)["length"] == len(text)
    with client.read(recovered) as r:  # readable through WebHDFS too: closed at its full length
        assert r.read() == text
    assert year in recovered


@pytest.mark.parametrize("transport", ["rpc", "webhdfs"])
def test_cluster_restart_mid_stream_loses_nothing(run_agent, tmp_path, transport: str) -> None:
    from conftest import free_port, require_java_peers
    from peers.hdfs import MiniDFS

    require_java_peers()
    cluster = MiniDFS(tmp_path / "dfs", free_port(), free_port()).start()
    try:
        n = 20000
        conf = CONF.format(n=n, rpc=cluster.rpc_port, transport=_transport(cluster, transport), path="/flume/restart",
                           roll_count=0,
                           extra="a1.sinks.k1.hdfs.fileType = DataStream\na1.sinks.k1.hdfs.batchSize = 200\n"
                                 "a1.sinks.k1.hdfs.rollInterval = 2\na1.sinks.k1.hdfs.callTimeout = 3000")
        conf = conf.replace("a1.sources.r1.batchSize = 500", "a1.sources.r1.batchSize = 100")
        agent = run_agent(conf)
        agent.wait_for_log("creating", timeout=30)
        cluster.stop()
        time.sleep(3)
        cluster.start(format=False)
        client = InsecureClient(cluster.webhdfs, user="root")

        def received() -> list[bytes]:
            got: list[bytes] = []
            try:
                for f in _files(client, "/flume/restart"):
                    with client.read(urllib.parse.quote(f)) as r:
                        got += r.read().split(b"\n")[:-1]
            except HdfsError:  # a file the restart left open is unreadable until its lease is recovered
                pass
            return got

        got = wait_for_events(_expected(n), received, timeout=90, what="every event after the cluster restart",
                              logs=[agent], every=0.5)
        assert agent.terminate() == 0
        assert set(got) == set(_expected(n))
    finally:
        cluster.stop()


def _parquet_rows(client: InsecureClient, files: list[str]) -> list[dict]:
    import io

    import pyarrow.parquet as pq

    rows: list[dict] = []
    for f in files:
        with client.read(f) as r:
            rows += pq.read_table(io.BytesIO(r.read())).to_pylist()
    return rows


@pytest.mark.parametrize("codec", ["", "zstandard"])
def test_parquet_files_roll_and_keep_headers(run_agent, minidfs, codec: str) -> None:
    path = f"/flume/parquet-{codec or 'snappy'}"
    extra = "a1.sinks.k1.hdfs.fileType = Parquet" + (f"\na1.sinks.k1.hdfs.codeC = {codec}" if codec else "")
    files = _run(run_agent, minidfs, path, 5000, 2000, extra)
    assert len(files) == 3 and all(f.endswith(".parquet") for f in files), files  # 2000 + 2000 + 1000
    rows = _parquet_rows(_client(minidfs), files)
    assert sorted(int(r["body"]) for r in rows) == list(range(5000))
    assert all(dict(r["headers"]).keys() == {"timestamp"} for r in rows)


def test_a_parquet_staging_file_left_by_a_crash_is_converted(run_agent, minidfs) -> None:
    from agent.core import Event
    from sinks.hdfs import staging_records

    client = _client(minidfs)
    path = "/flume/parquet-recover"
    year = time.strftime("%Y", time.gmtime())
    staged = staging_records([Event(b"kept-%d" % i, {"h": str(i)}) for i in range(3)]) + b"\x00\x00\x01"  # torn
    client.write(f"{path}/{year}/FlumeData.7.parquet.tmp", data=staged)
    files = _run(run_agent, minidfs, path, 100, 0, "a1.sinks.k1.hdfs.fileType = Parquet")
    assert f"{path}/{year}/FlumeData.7.parquet" in files
    rows = _parquet_rows(client, [f"{path}/{year}/FlumeData.7.parquet"])
    assert [(r["body"], dict(r["headers"])) for r in rows] == [(b"kept-%d" % i, {"h": str(i)}) for i in range(3)]
