"""The ``agent`` command as a user runs it: Flume's tutorial config, netcat → memory → file_roll at volume,
metrics, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.e2e


TUTORIAL = """\
# example.conf: A single-node Flume configuration

# Name the components on this agent
a1.sources = r1
a1.sinks = k1
a1.channels = c1

# Describe/configure the source
a1.sources.r1.type = netcat
a1.sources.r1.bind = localhost
a1.sources.r1.port = {port}

# Describe the sink
a1.sinks.k1.type = logger

# Use a channel which buffers events in memory
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.transactionCapacity = 100

# Bind the source and sink to the channel
a1.sources.r1.channels = c1
a1.sinks.k1.channel = c1
"""


def test_flume_tutorial_config_runs_unchanged(run_agent):
    port = free_port()
    agent = run_agent(TUTORIAL.format(port=port))
    agent.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"Hello world!\r\n")
        assert s.recv(16) == b"OK\n"
    # Flume's LoggerSink line: hex dump of at most 16 bytes (the \r is kept in the body), then the text.
    agent.wait_for_log("Event: { headers:{} body: 48 65 6C 6C 6F 20 77 6F 72 6C 64 21 0D")
    assert "Hello world!." in agent.log()
    assert agent.terminate() == 0


FILE_ROLL = """\
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
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
"""


def _lines(n: int, start: int = 0, tag: str = "") -> list[bytes]:
    return [f"{tag}{i:012d} {'x' * 80}".encode() for i in range(start, start + n)]


def _read_out(out: Path) -> list[bytes]:
    data = b"".join(p.read_bytes() for p in sorted(out.iterdir()))
    return data.split(b"\n")[:-1] if data else []


def _wait_lines(out: Path, n: int, timeout: float = 60.0) -> list[bytes]:
    deadline = time.monotonic() + timeout
    got: list[bytes] = []
    while time.monotonic() < deadline:
        got = _read_out(out)
        if len(got) >= n:
            return got
        time.sleep(0.1)
    return got


def test_200k_lines_one_connection_arrive_once_in_order(run_agent, tmp_path):
    port = free_port()
    out = tmp_path / "out"
    agent = run_agent(FILE_ROLL.format(port=port, out=out))
    agent.wait_for_port(port)
    lines = _lines(200_000)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"\n".join(lines) + b"\n")
    got = _wait_lines(out, len(lines))
    assert len(got) == len(lines)
    assert got == lines  # exactly once and in order
    assert agent.terminate() == 0


def test_concurrent_connections_lose_nothing(run_agent, tmp_path):
    port = free_port()
    out = tmp_path / "out"
    agent = run_agent(FILE_ROLL.format(port=port, out=out))
    agent.wait_for_port(port)
    per_conn = 25_000
    conns = 8

    def send(k: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            payload = _lines(per_conn, tag=f"c{k}-")
            for i in range(0, per_conn, 1000):  # several writes per connection, interleaved with the others
                s.sendall(b"\n".join(payload[i:i + 1000]) + b"\n")

    threads = [threading.Thread(target=send, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = _wait_lines(out, per_conn * conns)
    assert len(got) == per_conn * conns
    assert len(set(got)) == per_conn * conns
    for k in range(conns):  # each connection's lines keep their order
        mine = [g for g in got if g.startswith(f"c{k}-".encode())]
        assert mine == _lines(per_conn, tag=f"c{k}-")
    assert agent.terminate() == 0


SEQ_METRICS = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 100
a1.sources.r1.totalEvents = 5000
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"""


def _get(url: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read(), r.headers.get("Content-Type", "")


def test_http_metrics_show_flume_counters(run_agent):
    mport = free_port()
    agent = run_agent(SEQ_METRICS, args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
    agent.wait_for_port(mport)
    deadline = time.monotonic() + 20
    metrics: dict = {}
    while time.monotonic() < deadline:
        status, body, ctype = _get(f"http://127.0.0.1:{mport}/metrics")
        assert status == 200 and ctype.startswith("application/json")
        metrics = json.loads(body)
        if metrics.get("CHANNEL.c1", {}).get("EventTakeSuccessCount") == "5000":
            break
        time.sleep(0.1)
    ch = metrics["CHANNEL.c1"]
    assert ch["EventPutSuccessCount"] == "5000"
    assert ch["EventTakeSuccessCount"] == "5000"
    assert ch["ChannelSize"] == "0"
    assert ch["ChannelCapacity"] == "10000"
    assert ch["Type"] == "CHANNEL"
    src = metrics["SOURCE.r1"]
    assert src["EventAcceptedCount"] == "5000"
    assert src["AppendBatchAcceptedCount"] == "50"
    assert "SINK.k1" not in metrics  # Flume's null sink has no MBean
    _, prom, _ = _get(f"http://127.0.0.1:{mport}/metrics/prometheus")
    assert b'flume_channel_event_take_success_count{name="c1"} 5000' in prom
    assert agent.terminate() == 0


def test_sigterm_stops_cleanly_within_10s(run_agent, tmp_path):
    port = free_port()
    out = tmp_path / "out"
    agent = run_agent(FILE_ROLL.format(port=port, out=out))
    agent.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"\n".join(_lines(1000)) + b"\n")
        _wait_lines(out, 1000)
        t0 = time.monotonic()
        code = agent.terminate(timeout=12)
    assert code == 0
    assert time.monotonic() - t0 < 10
    assert len(_read_out(out)) == 1000
    assert "Agent a1 stopped" in agent.log()
