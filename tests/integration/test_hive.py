"""The hive sink against a real Hive 4.0.1: a standalone metastore (embedded Derby) over the session's MiniDFS,
and Hive's own Driver reading the tables back (``peers/hive.py``). Ports: the metastore and MiniDFS on free
loopback ports, the agents' netcat sources on free loopback ports."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from conftest import delivery_report, free_port, require_java_peers, send_lines, wait_for

pytestmark = pytest.mark.peer


@pytest.fixture(scope="session")
def hive(minidfs, tmp_path_factory: pytest.TempPathFactory) -> Iterator:  # noqa: ANN001
    """One Hive metastore for the session (warehouse on the session's MiniDFS) and one Hive query JVM.

    Tests that stop the metastore must start it again before they finish."""
    require_java_peers()
    from peers.hive import HiveMetastore

    ms = HiveMetastore(tmp_path_factory.mktemp("hive"), free_port(),
                       f"hdfs://127.0.0.1:{minidfs.rpc_port}").start()
    query = ms.query_client()
    yield ms, query
    query.close()
    ms.stop()


CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = ts src
a1.sources.r1.interceptors.ts.type = timestamp
a1.sources.r1.interceptors.src.type = static
a1.sources.r1.interceptors.src.key = src
a1.sources.r1.interceptors.src.value = {src}
{channel}
a1.sinks.k1.type = hive
a1.sinks.k1.channel = c1
a1.sinks.k1.hive.metastore = {uri}
a1.sinks.k1.hive.database = default
a1.sinks.k1.hive.table = {table}
a1.sinks.k1.hive.partition = %Y-%m-%d,%{{src}}
a1.sinks.k1.timeZone = UTC
a1.sinks.k1.batchSize = {batch}
a1.sinks.k1.hive.txnsPerBatchAsk = 10
a1.sinks.k1.callTimeout = 30000
{serializer}
"""
MEMORY = """\
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000"""
DELIMITED = """\
a1.sinks.k1.serializer = DELIMITED
a1.sinks.k1.serializer.delimiter = "\\t"
a1.sinks.k1.serializer.fieldnames = id,,msg"""


def _conf(ms, port: int, table: str, *, src: str = "web", batch: int = 100, channel: str = MEMORY,  # noqa: ANN001
          serializer: str = DELIMITED) -> str:
    return CONF.format(port=port, uri=ms.uri, table=table, src=src, batch=batch, channel=channel,
                       serializer=serializer)


def _create(query, table: str, columns: str) -> None:  # noqa: ANN001
    query.run(f"DROP TABLE IF EXISTS {table}")
    query.run(f"CREATE TABLE {table} ({columns}) PARTITIONED BY (day STRING, src STRING) STORED AS ORC "
              f"TBLPROPERTIES ('transactional'='true')")


def _ids(query, table: str) -> list[str]:  # noqa: ANN001
    return [r[0] for r in query.run(f"SELECT id FROM {table}")]


def _started(hive, run_agent, table: str, columns: str, **conf) -> tuple[int, object]:  # noqa: ANN001
    """A fresh ``table`` and an agent writing to it; returns its netcat port and the agent."""
    ms, query = hive
    _create(query, table, columns)
    port = free_port()
    agent = run_agent(_conf(ms, port, table, **conf))
    agent.wait_for_log("Hive sink k1 started")
    return port, agent


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def test_delimited_rows_read_back_by_hive(hive, run_agent) -> None:  # noqa: ANN001
    query = hive[1]
    port, agent = _started(hive, run_agent, "web_delimited", "id INT, msg STRING", batch=100)
    lines = [f"{i}\tskipped\tmessage {i}".encode() for i in range(1000)]
    send_lines(port, lines)
    want = [str(i) for i in range(1000)]
    wait_for(lambda: len(_ids(query, "web_delimited")) >= 1000, timeout=120, every=1,
             what=f"1000 rows; {agent.log()[-2000:]}")
    rows = query.run("SELECT id, msg, day, src FROM web_delimited")
    assert sorted(r[0] for r in rows) == sorted(want), delivery_report(want, [r[0] for r in rows], [agent])
    assert all(r[1] == f"message {r[0]}" and r[2] == _today() and r[3] == "web" for r in rows)
    parts = query.run("SHOW PARTITIONS web_delimited")
    assert parts == [[f"day={_today()}/src=web"]]


def test_json_rows_read_back_by_hive(hive, run_agent) -> None:  # noqa: ANN001
    query = hive[1]
    port, agent = _started(hive, run_agent, "web_json", "id BIGINT, msg STRING, ok BOOLEAN, score DOUBLE", src="api",
                           batch=50, serializer="a1.sinks.k1.serializer = JSON")
    lines = [f'{{"id": {i}, "MSG": "m{i}", "ok": {"true" if i % 2 else "false"}, "score": {i / 4}}}'.encode()
             for i in range(300)]
    send_lines(port, lines)
    wait_for(lambda: len(_ids(query, "web_json")) >= 300, timeout=120, every=1,
             what=f"300 rows; {agent.log()[-2000:]}")
    rows = query.run("SELECT id, msg, ok, score, day, src FROM web_json")
    got = sorted((int(r[0]), r[1], r[2], float(r[3]), r[4], r[5]) for r in rows)
    assert got == [(i, f"m{i}", "true" if i % 2 else "false", i / 4, _today(), "api") for i in range(300)]


ERRORS = """\
a1.sources = r1
a1.channels = c1 c2 c3
a1.sinks = k1 k2 k3
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1 c2 c3
a1.sources.r1.interceptors = ts
a1.sources.r1.interceptors.ts.type = timestamp
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.channels.c3.type = memory
""" + "".join(f"""\
a1.sinks.{k}.type = hive
a1.sinks.{k}.channel = {c}
a1.sinks.{k}.hive.metastore = {{uri}}
a1.sinks.{k}.hive.database = default
a1.sinks.{k}.hive.table = {t}
a1.sinks.{k}.hive.partition = %Y-%m-%d,web
a1.sinks.{k}.batchSize = 10
a1.sinks.{k}.serializer = DELIMITED
a1.sinks.{k}.serializer.fieldnames = id,msg
""" for k, c, t in (("k1", "c1", "late_table"), ("k2", "c2", "plain_table"), ("k3", "c3", "one_partition")))


def test_bad_tables_are_named_and_the_events_wait_in_the_channel(hive, run_agent) -> None:  # noqa: ANN001
    ms, query = hive
    query.run("DROP TABLE IF EXISTS late_table")
    query.run("DROP TABLE IF EXISTS plain_table")
    query.run("CREATE TABLE plain_table (id INT, msg STRING) PARTITIONED BY (day STRING, src STRING) "
              "STORED AS TEXTFILE")
    query.run("DROP TABLE IF EXISTS one_partition")
    query.run("CREATE TABLE one_partition (id INT, msg STRING) PARTITIONED BY (day STRING) STORED AS ORC "
              "TBLPROPERTIES ('transactional'='true')")
    port = free_port()
    agent = run_agent(ERRORS.format(port=port, uri=ms.uri))
    agent.wait_for_port(port)
    send_lines(port, [f"{i},m{i}".encode() for i in range(25)])
    agent.wait_for_log("Hive sink k1: table default.late_table does not exist (hive.database = default, "
                       "hive.table = late_table); create it as a transactional ORC table", timeout=60)
    agent.wait_for_log("Hive sink k2: table default.plain_table is not transactional; Hive streaming writes only "
                       "ACID tables", timeout=60)
    agent.wait_for_log("Hive sink k3: hive.partition = %Y-%m-%d,web gives 2 value(s) but table "
                       "default.one_partition has 1 partition column(s) (day). The events stay in the channel",
                       timeout=60)
    _create(query, "late_table", "id INT, msg STRING")  # now the first sink's events can go
    wait_for(lambda: len(_ids(query, "late_table")) >= 25, timeout=120, every=1,
             what=f"the 25 events kept in the channel; {agent.log()[-2000:]}")
    assert sorted(int(i) for i in _ids(query, "late_table")) == list(range(25))


def test_aborted_and_open_transactions_stay_invisible(hive) -> None:  # noqa: ANN001
    """The layout the sink writes is read by Hive only once its transaction commits: an aborted transaction's
    delta and an open one's (a writer killed mid-batch) are never seen."""
    from sinks.hdfs.fs import NativeHdfsFileSystem
    from sinks.hive.acid import arrow_type, delta_dir, orc_bytes
    from sinks.hive.metastore import Metastore, partition_name
    from sinks.hive.sink import HiveSink

    ms, query = hive
    _create(query, "txn_table", "id INT, msg STRING")
    client = Metastore([("127.0.0.1", ms.port)], 30, "pyflume test")
    location = client.partition("default", "txn_table", ["d", "s"], create=True).sd.location
    fs = NativeHdfsFileSystem(location.split("/")[2], None, 30)
    base = "/" + location.split("/", 3)[3]
    txns = client.open_txns(3)
    write_ids = client.allocate_write_ids("default", "txn_table", txns)
    for n, txn in enumerate(txns):
        client.lock_partitions(txn, "default", "txn_table", [partition_name(["day", "src"], ["d", "s"])], 30)
        wid = write_ids[txn]
        HiveSink._write(fs, f"{base}/{delta_dir(wid)}", orc_bytes(
            wid, ["id", "msg"], [arrow_type("int"), arrow_type("string")], [[n * 10, n * 10 + 1], ["x", "y"]]))
    client.commit(txns[0])
    client.abort(txns[1])
    try:
        assert sorted(_ids(query, "txn_table")) == ["0", "1"]
    finally:
        client.abort(txns[2])
        client.close()


def test_sigkill_mid_stream_then_restart_loses_nothing(hive, run_agent, tmp_path) -> None:  # noqa: ANN001
    ms, query = hive
    _create(query, "killed", "id INT, msg STRING")
    port = free_port()
    channel = (f"a1.channels.c1.type = file\na1.channels.c1.checkpointDir = {tmp_path / 'cp'}\n"
               f"a1.channels.c1.dataDirs = {tmp_path / 'data'}\na1.channels.c1.transactionCapacity = 1000")
    conf = _conf(ms, port, "killed", batch=200, channel=channel)
    agent = run_agent(conf)
    agent.wait_for_port(port)
    n = 4000
    send_lines(port, [f"{i}\t-\tm{i}".encode() for i in range(n)], pause_every=400, pause=0.1)
    wait_for(lambda: len(_ids(query, "killed")) > 0, timeout=120, every=0.5, what="the first rows")
    agent.kill()
    seen = _ids(query, "killed")
    assert len(seen) < n, "the agent finished before it was killed; nothing was tested"
    again = run_agent(conf)
    want = [str(i) for i in range(n)]
    got = wait_for_events_hive(query, "killed", want, [agent, again])
    dupes = len(got) - len(set(got))
    assert dupes <= 200, f"more than one batch delivered twice: {delivery_report(want, got, [again])}"


def wait_for_events_hive(query, table: str, want: list[str], logs) -> list[str]:  # noqa: ANN001
    got: list[str] = []

    def arrived() -> bool:
        got[:] = _ids(query, table)
        return set(want) <= set(got)
    try:
        wait_for(arrived, timeout=180, every=1, what=table)
    except AssertionError:
        raise AssertionError(delivery_report(want, got, logs)) from None
    return got


def test_metastore_restart_mid_stream_loses_nothing(hive, run_agent) -> None:  # noqa: ANN001
    ms, query = hive
    port, agent = _started(hive, run_agent, "ms_restart", "id INT, msg STRING", batch=100)
    send_lines(port, [f"{i}\t-\tm{i}".encode() for i in range(500)])
    wait_for_events_hive(query, "ms_restart", [str(i) for i in range(500)], [agent])
    ms.stop()
    try:
        send_lines(port, [f"{i}\t-\tm{i}".encode() for i in range(500, 1000)])
        agent.wait_for_log("no metastore answered", timeout=60)
    finally:
        ms.start()
    want = [str(i) for i in range(1000)]
    got = wait_for_events_hive(query, "ms_restart", want, [agent, ms_log(ms)])
    assert sorted(got) == sorted(want), delivery_report(want, got, [agent])


class ms_log:  # noqa: N801 - a log source for delivery_report
    def __init__(self, ms) -> None:  # noqa: ANN001
        self.ms = ms

    def log(self) -> str:
        return self.ms.log()


def test_same_rows_and_layout_as_hives_own_writer(hive, run_agent) -> None:  # noqa: ANN001
    """Flume 1.11's own Hive sink cannot reach a Hive 4 metastore (docs/hive.md), so the comparison is with Hive's
    own ACID writer: the same input INSERTed by Hive into a second table. Both read back the same, and the files
    have the same ACID schema."""
    import io

    import pyarrow.orc as orc

    from sinks.hdfs.fs import NativeHdfsFileSystem

    ms, query = hive
    rows = [(i, None if i % 7 == 0 else f"it's row {i}, \u00e9") for i in range(60)]
    port, agent = _started(hive, run_agent, "ours", "id INT, msg STRING", src="cmp", batch=25)
    null = "\\N"  # Hive's text NULL
    send_lines(port, [f"{i}\t-\t{null if m is None else m}".encode() for i, m in rows])
    _create(query, "hives_own", "id INT, msg STRING")
    values = ",".join(f"({i}, {'NULL' if m is None else repr(m)})" for i, m in rows)
    query.run(f"INSERT INTO hives_own PARTITION (day='{_today()}', src='cmp') VALUES {values}")
    wait_for(lambda: len(_ids(query, "ours")) >= len(rows), timeout=120, every=1,
             what=f"{len(rows)} rows; {agent.log()[-2000:]}")
    ours = sorted(query.run("SELECT id, msg, day, src FROM ours"), key=lambda r: int(r[0]))
    theirs = sorted(query.run("SELECT id, msg, day, src FROM hives_own"), key=lambda r: int(r[0]))
    assert ours == theirs
    fs = NativeHdfsFileSystem(f"127.0.0.1:{ms.fs_uri.rsplit(':', 1)[1]}", None, 30)

    def schema(table: str) -> str:
        part = f"/warehouse/{table}/day={_today()}/src=cmp"
        delta = sorted(d for d in fs.list(part) if d.startswith("delta_"))[0]
        name = next(f for f in fs.list(f"{part}/{delta}") if f.startswith("bucket_"))
        assert fs.read(f"{part}/{delta}/_orc_acid_version") == b"2"
        return str(orc.ORCFile(io.BytesIO(fs.read(f"{part}/{delta}/{name}"))).schema.remove_metadata())
    assert schema("ours") == schema("hives_own")


def test_open_transactions_are_heartbeated(hive, run_agent) -> None:  # noqa: ANN001
    """The transactions a sink has opened but not used yet are kept alive: the metastore sees their heartbeats."""
    from sinks.hive.metastore import Metastore

    ms, query = hive
    client = Metastore([("127.0.0.1", ms.port)], 30, "pyflume test")
    before = client.call("get_open_txns_info").txn_high_water_mark  # later transactions are the sink's
    port, agent = _started(hive, run_agent, "beats", "id INT, msg STRING", batch=10,
                           serializer=DELIMITED + "\na1.sinks.k1.heartBeatInterval = 1")
    send_lines(port, [f"{i}\t-\tm{i}".encode() for i in range(5)])
    wait_for(lambda: len(_ids(query, "beats")) >= 5, timeout=60, every=1, what="5 rows")

    def beats() -> dict[int, int]:
        return {t.id: t.lastHeartbeatTime for t in client.call("get_open_txns_info").open_txns if t.id > before}
    try:
        first = beats()
        assert len(first) == 9, f"expected the 9 unused transactions of the batch of 10 open, got {first}"
        wait_for(lambda: all(beats().get(t, 0) > last for t, last in first.items()), timeout=30, every=0.5,
                 what=f"heartbeats of {sorted(first)}")
    finally:
        client.close()
