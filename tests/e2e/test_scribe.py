"""The scribe source with a real Scribe client: a Thrift client built at run time by thriftpy2 from Scribe's IDL
(tests/peers/thrift/scribe.thrift), framed transport and the binary protocol as Scribe clients use them, reading
the old-style replies Flume's Scribe server writes (strict_read off, as in Apache Thrift's own clients)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.transport import TFramedTransportFactory, TTransportException

from conftest import assert_exactly_once, free_port, rolled_lines, wait_for, wait_for_events

pytestmark = pytest.mark.e2e

scribe = thriftpy2.load(str(Path(__file__).parents[1] / "peers" / "thrift" / "scribe.thrift"),
                        module_name="scribe_e2e_thrift")

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.scribe.ScribeSource
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.maxReadBufferBytes = 200000
a1.sources.r1.workerThreads = 2
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.transactionCapacity = 1000
a1.channels.c1.keep-alive = 0
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
a1.sinks.k1.sink.serializer = header_and_text
"""


def client(port: int):  # noqa: ANN201
    return make_client(scribe.Scribe, "127.0.0.1", port, timeout=10_000,
                       proto_factory=TBinaryProtocolFactory(strict_read=False),
                       trans_factory=TFramedTransportFactory())


def start(run_agent, tmp_path: Path) -> tuple:  # noqa: ANN001
    """The agent with its scribe source on a free port: (agent, port, output directory)."""
    port = free_port()
    out = tmp_path / "out"
    out.mkdir()
    agent = run_agent(CONF.format(port=port, out=out))
    agent.wait_for_port(port)
    return agent, port, out


def test_scribe_clients_log_into_the_channel_once_and_are_told_to_try_later(run_agent, tmp_path: Path) -> None:
    agent, port, out = start(run_agent, tmp_path)
    c = client(port)
    answers = []
    for k in range(30):  # faster than file_roll drains a 1000-event channel: some batches are refused
        entries = [scribe.LogEntry(category=f"app-{k % 3}-ü" if i % 10 else None, message=f"m{k:02d}-{i:04d} é ✓")
                   for i in range(1000)]
        while (result := c.Log(entries)) != scribe.ResultCode.OK:
            assert result == scribe.ResultCode.TRY_LATER
            answers.append(result)
            time.sleep(0.01)
        answers.append(result)
    assert c.Log([]) == scribe.ResultCode.OK
    c.close()
    want = [((f"{{category=app-{k % 3}-ü}} " if i % 10 else "{} ") + f"m{k:02d}-{i:04d} é ✓").encode()
            for k in range(30) for i in range(1000)]
    wait_for_events(want, lambda: rolled_lines(out), logs=[agent])
    assert_exactly_once(want, rolled_lines(out), logs=[agent])
    assert scribe.ResultCode.TRY_LATER in answers
    assert agent.terminate() == 0


def test_a_call_over_max_read_buffer_bytes_closes_only_that_connection(run_agent, tmp_path: Path) -> None:
    agent, port, out = start(run_agent, tmp_path)
    big = client(port)
    with pytest.raises((TTransportException, OSError)):  # closed, maybe with a reset: the call was not read
        big.Log([scribe.LogEntry(category="big", message="x" * 300_000)])
    big.close()
    small = client(port)
    assert small.Log([scribe.LogEntry(category="small", message="fits")]) == scribe.ResultCode.OK
    small.close()
    wait_for(lambda: rolled_lines(out) == [b"{category=small} fits"])
    assert "a frame of 300" in agent.log() and "the limit is 200000" in agent.log()
    assert agent.terminate() == 0
