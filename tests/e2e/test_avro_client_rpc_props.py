"""``flume-ng avro-client --rpcProps``: Flume's RPC client properties against two real pyflume avro sources
(each an agent: avro source → memory → file_roll, on a free loopback port): load balance spreads the batches,
failover stays on the first host and moves to the second when the first is stopped, and with every host down the
command fails saying which hosts it tried."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, AgentProcess, free_port, rolled_lines, wait_for_events

pytestmark = pytest.mark.e2e

AGGREGATOR = """\
agg.sources = r1
agg.channels = c1
agg.sinks = k1
agg.sources.r1.type = avro
agg.sources.r1.bind = 127.0.0.1
agg.sources.r1.port = {port}
agg.sources.r1.channels = c1
agg.channels.c1.type = memory
agg.channels.c1.capacity = 10000
agg.channels.c1.transactionCapacity = 1000
agg.sinks.k1.type = file_roll
agg.sinks.k1.channel = c1
agg.sinks.k1.sink.directory = {out}
agg.sinks.k1.sink.rollInterval = 0
"""


def flume_ng() -> list[str]:
    beside = Path(sys.executable).parent / "flume-ng"
    exe = str(beside) if beside.exists() else shutil.which("flume-ng")
    return [exe] if exe else [sys.executable, "-c", "from agent.cli import flume_ng_main; raise SystemExit(flume_ng_main())"]


def avro_client(tmp: Path, props: str, lines: list[bytes], flag: str = "--rpcProps") -> subprocess.CompletedProcess[str]:
    (tmp / "client.properties").write_text(props)
    data = tmp / "data.txt"
    data.write_bytes(b"".join(line + b"\n" for line in lines))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(flume_ng() + ["avro-client", "-c", "conf", flag, str(tmp / "client.properties"),
                                        "-F", str(data)], capture_output=True, text=True, env=env, timeout=120)


def props(kind: str, ports: list[int], *extra: str) -> str:
    return "\n".join([f"client.type = {kind}", "hosts = h1 h2", f"hosts.h1 = 127.0.0.1:{ports[0]}",
                      f"hosts.h2 = 127.0.0.1:{ports[1]}", "batch-size = 50", "connect-timeout = 2000", *extra, ""])


def test_load_balance_and_failover_over_two_avro_sources_one_stopped(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    aggs: list[AgentProcess] = []
    try:
        for i, port in enumerate(ports):
            d = tmp_path / f"agg{i + 1}"
            (d / "out").mkdir(parents=True)
            aggs.append(AgentProcess(AGGREGATOR.format(port=port, out=d / "out"), d, "agg").start())
        for agg, port in zip(aggs, ports, strict=True):
            agg.wait_for_port(port)

        def got(i: int) -> list[bytes]:
            return rolled_lines(tmp_path / f"agg{i + 1}" / "out")

        # round robin: 8 batches of 50 alternate between the two hosts
        lb = [b"lb %03d" % i for i in range(400)]
        r = avro_client(tmp_path, props("default_loadbalance", ports), lb)
        assert r.returncode == 0, r.stderr
        wait_for_events(lb, lambda: got(0) + got(1), logs=aggs)
        assert (len(got(0)), len(got(1))) == (200, 200)

        # failover stays on the first host while it works
        fo = [b"fo %03d" % i for i in range(300)]
        r = avro_client(tmp_path, props("default_failover", ports), fo)
        assert r.returncode == 0, r.stderr
        wait_for_events(fo, lambda: got(0), logs=aggs)
        assert len(got(1)) == 200

        assert aggs[0].terminate() == 0  # the first host goes away
        down = [b"down %03d" % i for i in range(300)]
        r = avro_client(tmp_path, props("default_failover", ports), down)
        assert r.returncode == 0, r.stderr
        assert f"Sent 300 events to h1 (127.0.0.1:{ports[0]}), h2 (127.0.0.1:{ports[1]}) (default_failover)" in r.stderr
        wait_for_events(down, lambda: got(1), logs=aggs)
        assert got(1)[200:] == down  # in order, once each

        lb2 = [b"lb2 %03d" % i for i in range(200)]
        r = avro_client(tmp_path, props("default_loadbalance", ports, "backoff = true"), lb2)
        assert r.returncode == 0, r.stderr
        wait_for_events(lb2, lambda: got(1), logs=aggs)
        assert len(got(1)) == 700

        assert aggs[1].terminate() == 0  # no host left
        r = avro_client(tmp_path, props("default_failover", ports), [b"lost"])
        assert r.returncode == 1
        assert "no host could be reached: h1 (127.0.0.1:" in r.stderr and f"h2 (127.0.0.1:{ports[1]})" in r.stderr
    finally:
        for agg in aggs:
            agg.kill()


def test_a_bad_properties_file_is_refused_with_its_line(tmp_path: Path) -> None:
    r = avro_client(tmp_path, "client.type = default_failover\nhosts = h1\nhosts.h1 = localhost\n", [b"x"], "-P")
    assert r.returncode == 1
    assert f"{tmp_path / 'client.properties'}:3: hosts.h1: 'localhost' is not host:port" in r.stderr
