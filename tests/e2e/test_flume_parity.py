"""The same properties file run by Apache Flume 1.11 and by pyflume writes the same bytes.

Apache Flume runs for real (jars from Maven Central, see tests/peers); without java/mvn these tests skip, and
``PYFLUME_REQUIRE_PEERS=1`` (set by .ci/run) turns the skip into a failure.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from peers.flume import FlumeAgent

pytestmark = pytest.mark.peer

N = 20_000

CONF = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = {n}
a1.sources.r1.batchSize = 500
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = i1 i2
a1.sources.r1.interceptors.i1.type = static
a1.sources.r1.interceptors.i1.key = origin
a1.sources.r1.interceptors.i1.value = parity
a1.sources.r1.interceptors.i2.type = search_replace
a1.sources.r1.interceptors.i2.searchPattern = ^(\\\\d*?)7
a1.sources.r1.interceptors.i2.replaceString = $1seven
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
a1.sinks.k1.sink.serializer = {serializer}
"""


def _read_all(out: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(out.iterdir()))


def _wait_lines(out: Path, n: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        data = _read_all(out)
        if data.count(b"\n") >= n:
            return data
        time.sleep(0.2)
    return data


@pytest.mark.parametrize("serializer", ["text", "header_and_text"])
def test_same_output_as_flume(serializer: str, tmp_path: Path, flume_classpath: str, run_agent) -> None:
    flume_out = tmp_path / "flume-out"
    ours_out = tmp_path / "ours-out"
    flume_out.mkdir()
    ours_out.mkdir()
    flume_conf = tmp_path / "flume.conf"
    flume_conf.write_text(CONF.format(n=N, out=flume_out, serializer=serializer))
    with FlumeAgent(flume_conf, log_path=tmp_path / "flume.log") as flume:
        flume_data = _wait_lines(flume_out, N, timeout=60)
        assert flume_data.count(b"\n") == N, flume.log()[-3000:]

    agent = run_agent(CONF.format(n=N, out=ours_out, serializer=serializer))
    ours = _wait_lines(ours_out, N, timeout=30)
    assert agent.terminate() == 0
    ours = _read_all(ours_out)
    assert ours == flume_data
    first = ours.split(b"\n", 1)[0]
    assert first == (b"0" if serializer == "text" else b"{origin=parity} 0")
    assert b"seven" in ours
