"""Avro RPC between pyflume agents: a two-tier chain, failover when an aggregator dies, FAILED on a full channel,
deflate, bad frames, and the avro-client command."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
from pathlib import Path

from agent.core import Event
from agent.rpc import RpcClient, RpcError
from conftest import agent_command, assert_exactly_once, free_port, rolled_lines, wait_for, wait_for_events

AGGREGATOR = """\
agg.sources = r1
agg.channels = c1
agg.sinks = k1
agg.sources.r1.type = avro
agg.sources.r1.bind = 127.0.0.1
agg.sources.r1.port = {port}
agg.sources.r1.compression-type = {compression}
agg.sources.r1.channels = c1
agg.channels.c1.type = memory
agg.channels.c1.capacity = {capacity}
agg.channels.c1.transactionCapacity = 1000
agg.sinks.k1.type = file_roll
agg.sinks.k1.channel = c1
agg.sinks.k1.sink.directory = {out}
agg.sinks.k1.sink.rollInterval = 0
agg.sinks.k1.sink.batchSize = 1000
agg.sinks.k1.sink.serializer = header_and_text
"""

COLLECTOR = """\
col.sources = r1
col.channels = c1
col.sinks = k1 k2
col.sinkgroups = g1
col.sinkgroups.g1.sinks = k1 k2
col.sinkgroups.g1.processor.type = failover
col.sinkgroups.g1.processor.priority.k1 = 10
col.sinkgroups.g1.processor.priority.k2 = 5
col.sources.r1.type = netcat
col.sources.r1.bind = 127.0.0.1
col.sources.r1.port = {port}
col.sources.r1.channels = c1
col.sources.r1.ack-every-event = false
col.sources.r1.interceptors = st
col.sources.r1.interceptors.st.type = static
col.sources.r1.interceptors.st.key = tier
col.sources.r1.interceptors.st.value = collector
col.channels.c1.type = memory
col.channels.c1.capacity = 100000
col.channels.c1.transactionCapacity = 1000
col.sinks.k1.type = avro
col.sinks.k1.channel = c1
col.sinks.k1.hostname = 127.0.0.1
col.sinks.k1.port = {agg1}
col.sinks.k1.batch-size = 500
col.sinks.k1.compression-type = {compression}
col.sinks.k2.type = avro
col.sinks.k2.channel = c1
col.sinks.k2.hostname = 127.0.0.1
col.sinks.k2.port = {agg2}
col.sinks.k2.batch-size = 500
col.sinks.k2.compression-type = {compression}
"""


def aggregator_conf(d: Path, port: int, compression: str = "none", capacity: int = 100000,
                    durable: bool = False) -> str:
    """The aggregator's properties; ``durable`` swaps the memory channel for a file channel under ``d``, so an
    aggregator killed with SIGKILL keeps what it acknowledged and delivers it once it is started again."""
    conf = AGGREGATOR.format(port=port, out=d / "out", compression=compression, capacity=capacity)
    if durable:
        conf = conf.replace("agg.channels.c1.type = memory",
                            f"agg.channels.c1.type = file\n"
                            f"agg.channels.c1.checkpointDir = {d / 'checkpoint'}\n"
                            f"agg.channels.c1.dataDirs = {d / 'data'}")
    return conf


def start_aggregator(run_agent, tmp: Path, name: str, port: int, compression: str = "none",
                     capacity: int = 100000, durable: bool = False, restart: bool = False):
    """Start (or, with ``restart``, start again on the same directories) an aggregator under ``tmp/name``."""
    from conftest import AgentProcess

    d = tmp / name
    if restart:
        n = len(list(d.glob("agent*.log")))
        (d / "agent.log").rename(d / f"agent-{n}.log")
    else:
        d.mkdir()
        (d / "out").mkdir()
    a = AgentProcess(aggregator_conf(d, port, compression, capacity, durable), d, "agg").start()
    a.wait_for_port(port)
    return a


def test_two_tier_chain_with_failover_loses_nothing(run_agent, tmp_path: Path) -> None:
    agg1_port, agg2_port, col_port = free_port(), free_port(), free_port()
    agg1 = start_aggregator(run_agent, tmp_path, "agg1", agg1_port, "deflate", durable=True)
    agg2 = start_aggregator(run_agent, tmp_path, "agg2", agg2_port, "deflate")
    try:
        col = run_agent(COLLECTOR.format(port=col_port, agg1=agg1_port, agg2=agg2_port, compression="deflate"),
                        name="col")
        col.wait_for_port(col_port)
        lines = [b"line-%06d" % i for i in range(60_000)]
        with socket.create_connection(("127.0.0.1", col_port)) as s:
            s.sendall(b"\n".join(lines[:30_000]) + b"\n")
            wait_for(lambda: len(rolled_lines(tmp_path / "agg1" / "out")) >= 10_000)
            agg1.kill()  # the preferred aggregator dies mid-stream (SIGKILL)
            s.sendall(b"\n".join(lines[30_000:]) + b"\n")
        got = lambda: rolled_lines(tmp_path / "agg1" / "out") + rolled_lines(tmp_path / "agg2" / "out")  # noqa: E731
        # the failover target takes everything the collector still holds ...
        wait_for(lambda: len(rolled_lines(tmp_path / "agg2" / "out")) >= 30_000, timeout=60)
        # ... and what agg1 acknowledged but had not written yet sits in its file channel until it comes back
        agg1 = start_aggregator(run_agent, tmp_path, "agg1", agg1_port, "deflate", durable=True, restart=True)
        wait_for_events(lines, lambda: [g.split(b"} ", 1)[1] for g in got()], timeout=60,
                        what="every line after agg1 came back", logs=[col, agg1, agg2])
        assert all(g.startswith(b"{tier=collector} ") for g in got())
        assert col.terminate() == 0
    finally:
        agg1.kill()
        agg2.kill()


def test_full_channel_answers_failed_and_the_retry_succeeds(run_agent, tmp_path: Path) -> None:
    port = free_port()
    conf = AGGREGATOR.format(port=port, out=tmp_path / "out", compression="none", capacity=1000)
    conf = conf.replace("agg.sinks.k1.sink.batchSize = 1000", "agg.sinks.k1.sink.batchSize = 1000\n"
                        "agg.channels.c1.keep-alive = 0")
    (tmp_path / "out").mkdir()
    agent = run_agent(conf, name="agg")
    agent.wait_for_port(port)
    client = RpcClient("127.0.0.1", port)
    statuses = []
    for k in range(40):  # far faster than file_roll drains a 1000-event channel at first
        batch = [Event(b"b%02d-%04d" % (k, i)) for i in range(1000)]
        while True:
            try:
                client.append_batch(batch)
                statuses.append("OK")
                break
            except RpcError as exc:
                assert "FAILED" in str(exc)
                statuses.append("FAILED")
                time.sleep(0.01)
    client.close()
    want = [b"{} b%02d-%04d" % (k, i) for k in range(40) for i in range(1000)]
    wait_for_events(want, lambda: rolled_lines(tmp_path / "out"), logs=[agent])
    assert_exactly_once(want, rolled_lines(tmp_path / "out"), logs=[agent])
    assert agent.terminate() == 0


def test_bad_frames_close_only_that_connection(run_agent, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "out").mkdir()
    agent = run_agent(AGGREGATOR.format(port=port, out=tmp_path / "out", compression="none", capacity=1000),
                      name="agg")
    agent.wait_for_port(port)
    for garbage in (b"GET / HTTP/1.1\r\n\r\n", struct.pack(">ii", 1, 2_000_000_000),
                    struct.pack(">iii", 1, 1, 0x7FFFFFFF) + b"x" * 100, struct.pack(">iii", 1, 1, 5) + b"\xff" * 5,
                    struct.pack(">ii", 1, 1)):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(garbage)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            try:
                while s.recv(1000):
                    pass
            except OSError:
                pass
    client = RpcClient("127.0.0.1", port)
    client.append_batch([Event(b"still works", {"k": "v"})])
    client.close()
    wait_for(lambda: rolled_lines(tmp_path / "out") == [b"{k=v} still works"])
    assert "closing the connection" in agent.log()
    assert agent.terminate() == 0


def test_avro_client_command(run_agent, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "out").mkdir()
    agent = run_agent(AGGREGATOR.format(port=port, out=tmp_path / "out", compression="none", capacity=10000),
                      name="agg")
    agent.wait_for_port(port)
    data = tmp_path / "data.txt"
    data.write_bytes(b"".join(b"row %d\n" % i for i in range(250)))
    headers = tmp_path / "headers.properties"
    headers.write_text("host = web1\n")
    proc = subprocess.run([*agent_command(), "avro-client", "-H", "127.0.0.1", "-p", str(port), "-F", str(data),
                           "-R", str(headers)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    wait_for_events([b"{host=web1} row %d" % i for i in range(250)], lambda: rolled_lines(tmp_path / "out"),
                    logs=[agent])
    assert rolled_lines(tmp_path / "out")[0] == b"{host=web1} row 0"
    assert agent.terminate() == 0


def test_two_collectors_load_balance_over_two_aggregators_one_restarted(run_agent, tmp_path: Path) -> None:
    """Three tiers' worth of agents: two collectors spread over two aggregators; one aggregator is killed and
    started again mid-stream; every event arrives at least once."""
    from conftest import AgentProcess

    agg_ports = [free_port(), free_port()]
    aggs = [start_aggregator(run_agent, tmp_path, f"agg{i + 1}", agg_ports[i], durable=i == 0) for i in range(2)]
    collectors = []
    try:
        for c in range(2):
            port = free_port()
            conf = COLLECTOR.format(port=port, agg1=agg_ports[0], agg2=agg_ports[1], compression="none")
            conf = conf.replace("col.sinkgroups.g1.processor.type = failover",
                                "col.sinkgroups.g1.processor.type = load_balance\n"
                                "col.sinkgroups.g1.processor.backoff = true\n"
                                "col.sinkgroups.g1.processor.selector = round_robin")
            conf = conf.replace("col.sources.r1.interceptors.st.value = collector",
                                f"col.sources.r1.interceptors.st.value = c{c}")
            d = tmp_path / f"col{c}"
            d.mkdir()
            col = AgentProcess(conf, d, "col").start()
            col.wait_for_port(port)
            collectors.append((col, port))
        sent: list[bytes] = []
        socks = [socket.create_connection(("127.0.0.1", port)) for _, port in collectors]
        for step in range(6):
            for c, s in enumerate(socks):
                chunk = [b"c%d-%d-%05d" % (c, step, i) for i in range(5000)]
                s.sendall(b"\n".join(chunk) + b"\n")
                sent += chunk
            time.sleep(0.3)
            if step == 1:
                aggs[0].kill()  # aggregator 1 goes away mid-stream
            if step == 3:  # and comes back on the same file channel
                aggs[0] = start_aggregator(run_agent, tmp_path, "agg1", agg_ports[0], durable=True, restart=True)
        for s in socks:
            s.close()

        def received() -> list[bytes]:
            return [g.split(b"} ", 1)[1] for i in (1, 2) for g in rolled_lines(tmp_path / f"agg{i}" / "out")]

        wait_for_events(sent, received, timeout=90, what="every line after agg1 came back",
                        logs=[*(c for c, _ in collectors), *aggs])
        restarted = rolled_lines(tmp_path / "agg1" / "out")
        assert len(restarted) > 0
        for col, _ in collectors:
            assert col.terminate() == 0
    finally:
        for col, _ in collectors:
            col.kill()
        for a in aggs:
            a.kill()
