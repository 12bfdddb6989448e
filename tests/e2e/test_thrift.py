"""Thrift RPC between pyflume agents: a two-tier chain through a failover sink group with an aggregator killed
and restarted, load_balance over two aggregators, FAILED on a full channel, bad frames and unknown methods, the
TLS connection limit, and the configuration errors ``--check`` reports."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from agent.core import Event
from agent.thrift_rpc import ThriftClient, ThriftError
from conftest import (
    AgentProcess,
    agent_command,
    assert_exactly_once,
    free_port,
    rolled_lines,
    self_signed,
    wait_for,
    wait_for_events,
)

pytestmark = pytest.mark.e2e

AGGREGATOR = """\
agg.sources = r1
agg.channels = c1
agg.sinks = k1
agg.sources.r1.type = thrift
agg.sources.r1.bind = 127.0.0.1
agg.sources.r1.port = {port}
agg.sources.r1.protocol = {protocol}
agg.sources.r1.channels = c1
{extra}agg.channels.c1.type = file
agg.channels.c1.checkpointDir = {d}/checkpoint
agg.channels.c1.dataDirs = {d}/data
agg.channels.c1.capacity = {capacity}
agg.channels.c1.transactionCapacity = 1000
agg.sinks.k1.type = file_roll
agg.sinks.k1.channel = c1
agg.sinks.k1.sink.directory = {d}/out
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
{processor}
col.sources.r1.type = netcat
col.sources.r1.bind = 127.0.0.1
col.sources.r1.port = {port}
col.sources.r1.channels = c1
col.sources.r1.ack-every-event = false
col.channels.c1.type = memory
col.channels.c1.capacity = 100000
col.channels.c1.transactionCapacity = 1000
col.sinks.k1.type = thrift
col.sinks.k1.channel = c1
col.sinks.k1.hostname = 127.0.0.1
col.sinks.k1.port = {agg1}
col.sinks.k1.batch-size = 500
col.sinks.k1.protocol = {protocol}
col.sinks.k2.type = thrift
col.sinks.k2.channel = c1
col.sinks.k2.hostname = 127.0.0.1
col.sinks.k2.port = {agg2}
col.sinks.k2.batch-size = 500
col.sinks.k2.protocol = {protocol}
"""
FAILOVER = ("col.sinkgroups.g1.processor.type = failover\ncol.sinkgroups.g1.processor.priority.k1 = 10\n"
            "col.sinkgroups.g1.processor.priority.k2 = 5")
LOAD_BALANCE = ("col.sinkgroups.g1.processor.type = load_balance\ncol.sinkgroups.g1.processor.backoff = true\n"
                "col.sinkgroups.g1.processor.selector = round_robin")


def start_aggregator(tmp: Path, name: str, port: int, protocol: str = "compact", capacity: int = 100_000,
                     extra: str = "", restart: bool = False, args: list[str] | None = None) -> AgentProcess:
    """Start (or, with ``restart``, start again on the same file channel) an aggregator under ``tmp/name``."""
    d = tmp / name
    if restart:
        (d / "agent.log").rename(d / f"agent-{time.monotonic_ns()}.log")
    else:
        (d / "out").mkdir(parents=True)
    a = AgentProcess(AGGREGATOR.format(port=port, protocol=protocol, d=d, capacity=capacity, extra=extra), d,
                     "agg", args).start()
    a.wait_for_port(port)
    return a


def received(tmp: Path) -> list[bytes]:
    return [g.split(b"} ", 1)[1] for i in (1, 2) for g in rolled_lines(tmp / f"agg{i}" / "out")]


@pytest.mark.parametrize("protocol,processor", [("compact", "failover"), ("binary", "load_balance")])
def test_two_tier_chain_through_a_sink_group_loses_nothing(protocol: str, processor: str, run_agent,  # noqa: ANN001
                                                           tmp_path: Path) -> None:
    """The preferred (failover) or one of two (load_balance) aggregators is killed mid-stream and started again
    on its file channel: every line arrives, at least once, nothing is lost."""
    ports = [free_port(), free_port()]
    aggs = [start_aggregator(tmp_path, f"agg{i + 1}", ports[i], protocol) for i in range(2)]
    try:
        col_port = free_port()
        col = run_agent(COLLECTOR.format(port=col_port, agg1=ports[0], agg2=ports[1], protocol=protocol,
                                         processor=FAILOVER if processor == "failover" else LOAD_BALANCE),
                        name="col")
        col.wait_for_port(col_port)
        lines = [b"line-%06d \xc3\xbc" % i for i in range(40_000)]
        with socket.create_connection(("127.0.0.1", col_port)) as s:
            s.sendall(b"\n".join(lines[:20_000]) + b"\n")
            wait_for(lambda: len(rolled_lines(tmp_path / "agg1" / "out")) >= 5_000)
            aggs[0].kill()  # SIGKILL mid-stream
            s.sendall(b"\n".join(lines[20_000:]) + b"\n")
        wait_for(lambda: len(rolled_lines(tmp_path / "agg2" / "out")) >= 15_000, timeout=60)
        aggs[0] = start_aggregator(tmp_path, "agg1", ports[0], protocol, restart=True)
        wait_for_events(lines, lambda: received(tmp_path), timeout=90, what="every line after agg1 came back",
                        logs=[col, *aggs])
        if processor == "load_balance":
            assert len(rolled_lines(tmp_path / "agg2" / "out")) < len(lines)  # both took a share
        assert col.terminate() == 0
    finally:
        for a in aggs:
            a.kill()


def test_full_channel_answers_failed_and_the_retry_succeeds(tmp_path: Path) -> None:
    port, mport = free_port(), free_port()
    agg = start_aggregator(tmp_path, "agg1", port, "compact", capacity=1000, extra="agg.channels.c1.keep-alive = 0\n",
                           args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
    try:
        client = ThriftClient("127.0.0.1", port)
        statuses = []
        for k in range(30):  # faster than file_roll drains a 1000-event channel
            batch = [Event(b"b%02d-%04d" % (k, i), {"k": "é"}) for i in range(1000)]
            while True:
                try:
                    client.append_batch(batch)
                    statuses.append("OK")
                    break
                except ThriftError as exc:
                    assert "returned FAILED" in str(exc), exc
                    statuses.append("FAILED")
                    time.sleep(0.01)
        client.close()
        want = [b"{k=\xc3\xa9} b%02d-%04d" % (k, i) for k in range(30) for i in range(1000)]
        wait_for_events(want, lambda: rolled_lines(tmp_path / "agg1" / "out"), logs=[agg])
        assert_exactly_once(want, rolled_lines(tmp_path / "agg1" / "out"), logs=[agg])
        assert "FAILED" in statuses
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as r:
            source = json.loads(r.read())["SOURCE.r1"]  # Flume's counters of a thrift source
        refused = statuses.count("FAILED")
        assert (source["AppendBatchReceivedCount"], source["AppendBatchAcceptedCount"]) == (str(30 + refused), "30")
        assert (source["EventReceivedCount"], source["EventAcceptedCount"]) == (str(1000 * (30 + refused)), "30000")
        assert source["ChannelWriteFail"] == str(refused)
        assert agg.terminate() == 0
    finally:
        agg.kill()


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        got = b""
        try:
            while chunk := s.recv(1000):
                got += chunk
        except OSError:
            pass
        return got


def test_bad_frames_close_only_that_connection_and_unknown_methods_are_answered(tmp_path: Path) -> None:
    port = free_port()
    agg = start_aggregator(tmp_path, "agg1", port, "binary")
    try:
        for garbage in (b"GET / HTTP/1.1\r\n\r\n", struct.pack(">i", 2_000_000_000), struct.pack(">i", 5) + b"\xff" * 5,
                        struct.pack(">i", 100) + b"\x80\x01\x00\x01" + b"\x00" * 10):
            assert _exchange(port, garbage) == b""
        client = ThriftClient("127.0.0.1", port, protocol="binary")
        with pytest.raises(ThriftError, match="exception: Invalid method name: 'shutdown'"):
            client.call("shutdown", b"")
        client.append_batch([Event(b"still works \xe2\x9c\x93", {"k": "v"})])
        client.append(Event(b"one"))
        client.close()
        compact = ThriftClient("127.0.0.1", port, protocol="compact")
        with pytest.raises(ThriftError, match="closed by the peer"):
            compact.append(Event(b"wrong protocol"))
        wait_for(lambda: rolled_lines(tmp_path / "agg1" / "out") == [b"{k=v} still works \xe2\x9c\x93", b"{} one"])
        log = agg.log()
        assert "closing the connection" in log and "set protocol = compact on one side" in log
        assert agg.terminate() == 0
    finally:
        agg.kill()


def test_threads_limits_tls_connections(tmp_path: Path) -> None:
    """With ssl, ``threads`` bounds the connections served at once, as Flume's TLS server does: one above the
    limit is closed at once; once a slot is free, a new connection is served."""
    import ssl

    _, _, p12 = self_signed(tmp_path)
    port = free_port()
    tls = (f"agg.sources.r1.ssl = true\nagg.sources.r1.keystore = {p12}\nagg.sources.r1.keystore-password = secret\n"
           "agg.sources.r1.threads = 1\n")
    agg = start_aggregator(tmp_path, "agg1", port, extra=tls)
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        first = ThriftClient("127.0.0.1", port, ssl_context=ctx)
        first.append_batch([Event(b"first")])
        second = ThriftClient("127.0.0.1", port, ssl_context=ctx)
        with pytest.raises(ThriftError):
            second.append_batch([Event(b"refused")])
        first.close()
        wait_for(lambda: _try(second))
        wait_for(lambda: sorted(rolled_lines(tmp_path / "agg1" / "out")) == [b"{} first", b"{} second"])
        assert "threads are serving connections" in agg.log()
        assert agg.terminate() == 0
    finally:
        agg.kill()


def test_threads_without_tls_limits_calls_not_connections(tmp_path: Path) -> None:
    """Without ssl, ``threads`` bounds the calls worked on at once (Flume's selector server and its worker pool):
    connections above it are served, their calls one at a time."""
    port = free_port()
    agg = start_aggregator(tmp_path, "agg1", port, extra="agg.sources.r1.threads = 1\n")
    try:
        clients = [ThriftClient("127.0.0.1", port) for _ in range(3)]
        for round_ in range(3):
            for i, client in enumerate(clients):  # all three connections stay open
                client.append_batch([Event(b"c%d-r%d" % (i, round_))])
        for client in clients:
            client.close()
        want = sorted(b"{} c%d-r%d" % (i, r) for i in range(3) for r in range(3))
        wait_for(lambda: sorted(rolled_lines(tmp_path / "agg1" / "out")) == want)
        assert "threads are serving connections" not in agg.log()
        assert agg.terminate() == 0
    finally:
        agg.kill()


def _try(client: ThriftClient) -> bool:
    try:
        client.append_batch([Event(b"second")])
    except ThriftError:
        return False
    client.close()
    return True


CHECKED = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = thrift
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 4141
a1.sources.r1.protocol = BINARY
a1.sources.r1.kerberos = true
a1.sources.r1.agent-principal = flume/_HOST@EXAMPLE.COM
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = thrift
a1.sinks.k1.channel = c1
a1.sinks.k1.hostname = collector
a1.sinks.k1.port = 4141
a1.sinks.k1.protocol = json
a1.sinks.k1.kerberos = true
"""


def test_check_reports_incomplete_kerberos_and_flumes_protocol_spelling(tmp_path: Path) -> None:
    conf = tmp_path / "a1.conf"
    conf.write_text(CHECKED)
    r = subprocess.run(agent_command() + ["--conf-file", str(conf), "--name", "a1", "--check"],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert (f"{conf}:9: a1.sources.r1 (thrift): agent-principal: agent-principal is set but agent-keytab is not; "
            "a login needs the keytab") in out
    assert (f"{conf}:17: a1.sinks.k1 (thrift): kerberos: kerberos = true needs server-principal, the source's "
            "principal") in out
    assert (f"{conf}:17: a1.sinks.k1 (thrift): kerberos: kerberos = true needs client-principal and client-keytab"
            in out)
    assert (f"{conf}:7: a1.sources.r1 (thrift): protocol: warning: Flume 1.11's thrift source uses the compact "
            "protocol for 'BINARY'") in out
    assert (f"{conf}:16: a1.sinks.k1 (thrift): protocol: warning: 'json' is not a Thrift protocol; Flume 1.11's "
            "thrift sink uses compact then") in out
