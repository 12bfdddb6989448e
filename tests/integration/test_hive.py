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


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def test_delimited_rows_read_back_by_hive(hive, run_agent) -> None:  # noqa: ANN001
    ms, query = hive
    _create(query, "web_delimited", "id INT, msg STRING")
    port = free_port()
    agent = run_agent(_conf(ms, port, "web_delimited", batch=100))
    agent.wait_for_log("Hive sink k1 started")
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
    ms, query = hive
    _create(query, "web_json", "id BIGINT, msg STRING, ok BOOLEAN, score DOUBLE")
    port = free_port()
    agent = run_agent(_conf(ms, port, "web_json", src="api", batch=50,
                            serializer="a1.sinks.k1.serializer = JSON"))
    agent.wait_for_log("Hive sink k1 started")
    lines = [f'{{"id": {i}, "MSG": "m{i}", "ok": {"true" if i % 2 else "false"}, "score": {i / 4}}}'.encode()
             for i in range(300)]
    send_lines(port, lines)
    wait_for(lambda: len(_ids(query, "web_json")) >= 300, timeout=120, every=1,
             what=f"300 rows; {agent.log()[-2000:]}")
    rows = query.run("SELECT id, msg, ok, score, day, src FROM web_json")
    got = sorted((int(r[0]), r[1], r[2], float(r[3]), r[4], r[5]) for r in rows)
    assert got == [(i, f"m{i}", "true" if i % 2 else "false", i / 4, _today(), "api") for i in range(300)]
