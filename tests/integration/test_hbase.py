"""The HBase sinks against a real HBase 2.6.1 (standalone master + Thrift server, from Maven Central), compared with
what Apache Flume 1.11's own HBase2Sink writes into the same HBase from the same properties."""

from __future__ import annotations

import json
import re
import struct
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

from conftest import assert_exactly_once, free_port, send_lines, wait_for, wait_for_events

pytest.importorskip("happybase")

N = 2000

# One agent, four sinks, four tables: the same text runs in Apache Flume (it ignores the `thrift` line) and in
# pyflume (which ignores nothing: `thrift` names the Thrift server, zookeeperQuorum is what Flume connects to).
FOUR_SINKS = """\
a1.sources = r1
a1.channels = c1 c2 c3 c4
a1.sinks = k1 k2 k3 k4
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = {n}
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1 c2 c3 c4
a1.sources.r1.interceptors = st
a1.sources.r1.interceptors.st.type = static
a1.sources.r1.interceptors.st.key = origin
a1.sources.r1.interceptors.st.value = web
{channels}
a1.sinks.k1.table = {prefix}_simple
a1.sinks.k2.table = {prefix}_regex_key
a1.sinks.k2.serializer = org.apache.flume.sink.hbase2.RegexHBase2EventSerializer
a1.sinks.k2.serializer.regex = ((\\\\d)\\\\d*)
a1.sinks.k2.serializer.colNames = ROW_KEY,first
a1.sinks.k2.serializer.rowKeyIndex = 0
a1.sinks.k2.serializer.depositHeaders = true
a1.sinks.k3.table = {prefix}_regex_gen
a1.sinks.k3.serializer = org.apache.flume.sink.hbase2.RegexHBase2EventSerializer
a1.sinks.k3.serializer.regex = (\\\\d*[0-4])
a1.sinks.k3.serializer.colNames = n
a1.sinks.k4.table = {prefix}_random
a1.sinks.k4.coalesceIncrements = true
a1.sinks.k4.serializer = org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer
a1.sinks.k4.serializer.rowPrefix = r-
a1.sinks.k4.serializer.suffix = random
a1.sinks.k4.serializer.incrementRow = counter
a1.sinks.k4.serializer.incrementColumn = hits
"""

TABLES = ("simple", "regex_key", "regex_gen", "random")
UUID = rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def four_sinks(prefix: str, hbase) -> str:  # noqa: ANN001
    channels = []
    for i in range(1, 5):
        channels += [f"a1.channels.c{i}.type = memory", f"a1.channels.c{i}.capacity = 100000",
                     f"a1.channels.c{i}.transactionCapacity = 1000",
                     f"a1.sinks.k{i}.type = hbase2", f"a1.sinks.k{i}.channel = c{i}",
                     f"a1.sinks.k{i}.columnFamily = cf", f"a1.sinks.k{i}.batchSize = 500",
                     f"a1.sinks.k{i}.zookeeperQuorum = {hbase.zk_quorum}", f"a1.sinks.k{i}.thrift = {hbase.thrift}"]
    return FOUR_SINKS.format(n=N, prefix=prefix, channels="\n".join(channels))


def fetch_metrics(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return json.load(r)


def rows_of(hbase, table: str) -> dict[bytes, dict[bytes, bytes]]:  # noqa: ANN001
    return hbase.scan(table)


def cells_multiset(rows: dict[bytes, dict[bytes, bytes]], skip: bytes | None = None) -> Counter:
    return Counter(tuple(sorted(cells.items())) for key, cells in rows.items() if key != skip)


def test_each_serializer_writes_what_flumes_hbase2_sink_writes(hbase, flume_classpath, run_agent,
                                                               tmp_path: Path) -> None:
    """Apache Flume 1.11's HBase2Sink and pyflume's hbase2 sink run the same properties (four sinks: the simple
    serializer with its defaults, the regex serializer with a row key group and headers, the regex serializer
    with generated keys skipping half the events, the simple serializer with random keys and coalesced increments)
    into twin tables; a plain happybase scan must find the same rows, columns and counters, and keys of the same
    form where Flume's keys are random; /metrics must show the same sink counters."""
    from peers.flume import FlumeAgent

    u = uuid.uuid4().hex[:6]
    fp, pp = f"f{u}", f"p{u}"
    for prefix in (fp, pp):
        for t in TABLES:
            hbase.create_table(f"{prefix}_{t}", "cf")
    fconf = tmp_path / "flume.conf"
    fconf.write_text(four_sinks(fp, hbase))
    expected = {"simple": N + 1, "regex_key": N, "regex_gen": N // 2, "random": N + 1}
    fport, pport = free_port(), free_port()

    def complete(prefix: str) -> bool:
        return all(len(rows_of(hbase, f"{prefix}_{t}")) >= n for t, n in expected.items())

    monitor = {"flume.monitoring.type": "http", "flume.monitoring.port": str(fport)}
    with FlumeAgent(fconf, name="a1", sysprops=monitor):
        py = run_agent(four_sinks(pp, hbase), args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={pport}"])
        wait_for(lambda: complete(pp), timeout=120, what="pyflume's rows", every=0.25)
        wait_for(lambda: complete(fp), timeout=180, what="Flume's rows", every=0.25)
        time.sleep(1)  # anything past the expected counts would be a duplicate: let it land, then compare
        counters = [{k: metrics[f"SINK.{k}"]["EventDrainSuccessCount"] for k in ("k1", "k2", "k3", "k4")}
                    for metrics in (fetch_metrics(fport), fetch_metrics(pport))]
        py.terminate()
    # Flume's HBase2Sink counts puts: the events the regex serializer skipped (k3) are not counted
    assert counters[0] == counters[1] == {"k1": str(N), "k2": str(N), "k3": str(N // 2), "k4": str(N)}
    f = {t: rows_of(hbase, f"{fp}_{t}") for t in TABLES}
    p = {t: rows_of(hbase, f"{pp}_{t}") for t in TABLES}
    for t, n in expected.items():
        assert len(f[t]) == len(p[t]) == n, t
    bodies = {str(i).encode() for i in range(N)}

    # simple, defaults: row "default" + UUID, cf:pCol = body; incRow cf:iCol counts every event (8-byte long)
    for rows in (f["simple"], p["simple"]):
        assert rows.pop(b"incRow") == {b"cf:iCol": struct.pack(">q", N)}
        assert all(re.fullmatch(b"default" + UUID, k) for k in rows)
    assert cells_multiset(f["simple"]) == cells_multiset(p["simple"])
    assert {c[b"cf:pCol"] for c in p["simple"].values()} == bodies

    # regex with a row key group and headers deposited: byte-for-byte the same table
    assert f["regex_key"] == p["regex_key"]
    assert p["regex_key"][b"1234"] == {b"cf:first": b"1", b"cf:origin": b"web"}

    # regex with generated keys "<ms>-<10 alphanumerics>-<nonce>": same cells, same nonces (each process counts
    # from 0), and each process's random part is the same on every key
    for rows in (f["regex_gen"], p["regex_gen"]):
        parts = [re.fullmatch(rb"(1\d{12})-([A-Za-z0-9]{10})-(\d+)", k) for k in rows]
        assert all(parts)
        assert len({m.group(2) for m in parts}) == 1  # type: ignore[union-attr]
        assert sorted(int(m.group(3)) for m in parts) == list(range(N // 2))  # type: ignore[union-attr]
    assert cells_multiset(f["regex_gen"]) == cells_multiset(p["regex_gen"])

    # simple with random keys and coalesced increments
    for rows in (f["random"], p["random"]):
        assert rows.pop(b"counter") == {b"cf:hits": struct.pack(">q", N)}
        assert all(re.fullmatch(rb"r--?\d{1,19}", k) for k in rows)
    assert cells_multiset(f["random"]) == cells_multiset(p["random"])


RESTART = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = {type}
a1.sinks.k1.channel = c1
a1.sinks.k1.table = {table}
a1.sinks.k1.columnFamily = cf
a1.sinks.k1.thrift = {thrift}
a1.sinks.k1.batchSize = 200
a1.sinks.k1.timeout = 10000
a1.sinks.k1.serializer = org.apache.flume.sink.hbase.RegexHbaseEventSerializer
a1.sinks.k1.serializer.regex = ((.*))
a1.sinks.k1.serializer.colNames = ROW_KEY,line
a1.sinks.k1.serializer.rowKeyIndex = 0
"""


def test_hbase_stopped_and_restarted_mid_stream_loses_nothing(hbase, run_agent, tmp_path: Path) -> None:
    """The whole HBase (master, region server, ZooKeeper and the Thrift server) goes down while events flow into
    an `hbase` sink and comes back on the same data; every event is in the table afterwards."""
    table = f"restart_{uuid.uuid4().hex[:6]}"
    hbase.create_table(table, "cf")
    port = free_port()
    agent = run_agent(RESTART.format(port=port, type="hbase", table=table, thrift=hbase.thrift))
    agent.wait_for_port(port)
    lines = [b"line-%05d" % i for i in range(6000)]
    sender = threading.Thread(target=send_lines, args=(port, lines, 100, 0.05))  # about 30 s of traffic
    sender.start()
    try:
        wait_for(lambda: len(rows_of(hbase, table)) >= 500, timeout=60, what="the first rows", every=0.25)
        hbase.stop()
        agent.wait_for_log("HBase sink k1:", timeout=60)  # a failed batch, rolled back
        time.sleep(2)
        hbase.start()
    finally:
        sender.join()
        if hbase.master is None or hbase.master.poll() is not None:
            hbase.start()
    wait_for_events(lines, lambda: list(rows_of(hbase, table)), timeout=180, what="every line after the restart",
                    logs=[agent], every=0.25)
    rows = rows_of(hbase, table)
    assert_exactly_once(lines, rows, logs=[agent])
    assert all(rows[k] == {b"cf:line": k} for k in lines)
    log = agent.log()
    assert "HBase sink k1: no HBase Thrift server answered" in log or "HBase sink k1: lost the Thrift server" in log


MISSING = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 3000
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = asynchbase
a1.sinks.k1.channel = c1
a1.sinks.k1.table = {table}
a1.sinks.k1.columnFamily = data
a1.sinks.k1.thrift = 127.0.0.1:{dead},{thrift}
a1.sinks.k1.batchSize = 1000
a1.sinks.k1.coalesceIncrements = true
a1.sinks.k1.serializer = org.apache.flume.sink.hbase.SimpleAsyncHbaseEventSerializer
a1.sinks.k1.serializer.payloadColumn = body
"""


def test_missing_table_and_family_are_named_and_the_events_wait(hbase, run_agent) -> None:
    """A missing table, then a missing column family, are reported by name; the events stay in the channel and
    land once the table has its family. The first Thrift server listed is down: the next one is used."""
    table = f"late_{uuid.uuid4().hex[:6]}"
    agent = run_agent(MISSING.format(table=table, thrift=hbase.thrift, dead=free_port()))
    agent.wait_for_log(f"table '{table}' does not exist (column family 'data' expected in it)", timeout=30)
    hbase.create_table(table, "other")
    agent.wait_for_log(f"table '{table}' has no column family 'data' (it has: other)", timeout=30)
    hbase.create_table(table, "other", "data")
    wait_for(lambda: len(rows_of(hbase, table)) >= 3001, timeout=60, what="every event", every=0.25)
    time.sleep(1)
    rows = rows_of(hbase, table)
    # 3000 increments, coalesced per batch into one cell update each
    assert rows.pop(b"incRow") == {b"data:iCol": struct.pack(">q", 3000)}
    assert sorted(c[b"data:body"] for c in rows.values()) == sorted(str(i).encode() for i in range(3000))
