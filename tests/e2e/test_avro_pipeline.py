"""pyflume's ordered pipelining between its own Avro tiers (agent/rpc.py PIPELINE_META): a second appendBatch may
be on the wire before the first is answered, and a call behind a refused one is refused too, so no batch overtakes
another; a client that does not ask (Apache Flume's) keeps one call at a time and Flume's answers."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from agent.core import Batch, Event
from agent.rpc import RpcClient, RpcError, encode_events
from conftest import AgentProcess, free_port, wait_for, wait_for_events

STUCK_AGGREGATOR = """\
agg.sources = r1
agg.channels = c1
agg.sinks = k1
agg.sources.r1.type = avro
agg.sources.r1.bind = 127.0.0.1
agg.sources.r1.port = {port}
agg.sources.r1.channels = c1
agg.channels.c1.type = memory
agg.channels.c1.capacity = 150
agg.channels.c1.transactionCapacity = 100
agg.channels.c1.keep-alive = 0
agg.sinks.k1.type = gate_sink.GateSink
agg.sinks.k1.channel = c1
agg.sinks.k1.gate = {gate}
agg.sinks.k1.path = {out}
"""


def _metrics(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return json.loads(r.read())["SOURCE.r1"]


class _FlumeLikeClient(RpcClient):
    asks_pipeline = False  # as Apache Flume's client: no pyflume meta in the handshake


def _bodies(prefix: bytes, n: int) -> Batch:
    return Batch([b"%s-%03d" % (prefix, i) for i in range(n)])


def test_a_call_pipelined_behind_a_refused_one_is_refused_and_not_delivered(tmp_path: Path) -> None:
    port, mport = free_port(), free_port()
    gate = tmp_path / "gate"
    gate.touch()  # the sink delivers nothing: the channel keeps what it accepted
    agg = AgentProcess(STUCK_AGGREGATOR.format(port=port, gate=gate, out=tmp_path / "out.txt"), tmp_path, "agg",
                       ["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"]).start()
    try:
        agg.wait_for_port(port)
        agg.wait_for_port(mport)  # the metrics server starts after the sources
        client = RpcClient("127.0.0.1", port)
        client.append_batch(_bodies(b"a", 100))  # 100 of the channel's 150
        assert client.pipelined, "a pyflume Avro source agrees to pipelining"

        client.send_batch(encode_events(_bodies(b"b", 100)))  # does not fit: FAILED
        client.send_batch(encode_events(_bodies(b"c", 10)))  # would fit, but must not overtake b
        with pytest.raises(RpcError, match="returned FAILED"):
            client.batch_answer(100)
        assert not client.connected, "the client drops the connection whose later calls are refused"
        # the source handles the call behind the refused one after it answered the refusal: wait until it did
        wait_for(lambda: _metrics(mport)["AppendBatchReceivedCount"] == "3", timeout=10,
                 what="the source to handle the third call")
        m = _metrics(mport)
        assert (m["AppendBatchReceivedCount"], m["AppendBatchAcceptedCount"], m["EventAcceptedCount"],
                m["ChannelWriteFail"]) == ("3", "1", "100", "1"), m

        client.append_batch(_bodies(b"d", 10))  # a new connection starts clean
        assert client.pipelined
        assert _metrics(mport)["EventAcceptedCount"] == "110"
        client.close()

        # a client that does not ask keeps Flume's semantics: one call at a time, a refusal ends nothing
        flume = _FlumeLikeClient("127.0.0.1", port)
        with pytest.raises(RpcError, match="returned FAILED"):
            flume.append_batch(_bodies(b"e", 100))
        assert not flume.pipelined and flume.connected
        flume.append_batch(_bodies(b"f", 10))  # the same connection: accepted
        assert _metrics(mport)["EventAcceptedCount"] == "120"
        flume.close()

        # a refused batch closes a pipelined connection even when nothing was pipelined behind it, so the next call
        # (a single append here) is not refused with it
        with pytest.raises(RpcError, match="returned FAILED"):
            client.append_batch(_bodies(b"g", 100))
        assert not client.connected
        client.append(Event(b"h"))
        assert _metrics(mport)["EventAcceptedCount"] == "121"
        client.close()

        gate.unlink()
        want = [bytes(b) for b in _bodies(b"a", 100).bodies + _bodies(b"d", 10).bodies + _bodies(b"f", 10).bodies]
        want.append(b"h")
        wait_for_events(want, lambda: (tmp_path / "out.txt").read_bytes().splitlines()
                        if (tmp_path / "out.txt").exists() else [], logs=[agg])
        assert (tmp_path / "out.txt").read_bytes().splitlines() == want
        assert agg.terminate() == 0
    finally:
        agg.kill()


# a commit waits up to a second for room: while the sink is held that ends in FAILED, once it runs it succeeds
CHAIN_AGGREGATOR = STUCK_AGGREGATOR.replace("capacity = 150", "capacity = 300").replace("keep-alive = 0",
                                                                                       "keep-alive = 1")
COLLECTOR = """\
col.sources = r1
col.channels = c1
col.sinks = k1
col.sources.r1.type = netcat
col.sources.r1.bind = 127.0.0.1
col.sources.r1.port = {port}
col.sources.r1.ack-every-event = false
col.sources.r1.channels = c1
col.channels.c1.type = memory
col.channels.c1.capacity = 100000
col.channels.c1.transactionCapacity = 100
col.sinks.k1.type = avro
col.sinks.k1.channel = c1
col.sinks.k1.hostname = 127.0.0.1
col.sinks.k1.port = {agg}
col.sinks.k1.batch-size = 100
"""


def test_a_pipelined_chain_keeps_the_order_through_refusals(tmp_path: Path) -> None:
    """The aggregator's channel fills while its sink is held: the collector's pipelined calls are refused, the
    collector backs off and sends again, and the aggregator's output is every line once, in the input's order."""
    agg_port, col_port, mport = free_port(), free_port(), free_port()
    (tmp_path / "agg").mkdir()
    (tmp_path / "col").mkdir()
    gate = tmp_path / "gate"
    gate.touch()
    out = tmp_path / "out.txt"
    agg = AgentProcess(CHAIN_AGGREGATOR.format(port=agg_port, gate=gate, out=out), tmp_path / "agg", "agg",
                       ["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"]).start()
    col = AgentProcess(COLLECTOR.format(port=col_port, agg=agg_port), tmp_path / "col", "col").start()
    try:
        agg.wait_for_port(agg_port)
        agg.wait_for_port(mport)  # the metrics server starts after the sources
        col.wait_for_port(col_port)
        lines = [b"line-%05d" % i for i in range(50_000)]
        with socket.create_connection(("127.0.0.1", col_port)) as s:
            s.sendall(b"\n".join(lines) + b"\n")
        # three batches fill the aggregator's channel; the calls behind them are refused
        wait_for(lambda: int(_metrics(mport)["ChannelWriteFail"]) >= 1, timeout=30)
        time.sleep(0.5)
        gate.unlink()
        got = wait_for_events(lines, lambda: out.read_bytes().splitlines() if out.exists() else [], timeout=60,
                              what="every line through the refusals", logs=[col, agg])
        m = _metrics(mport)
        refused_behind = int(m["AppendBatchReceivedCount"]) - int(m["AppendBatchAcceptedCount"]) - \
            int(m["ChannelWriteFail"])
        assert refused_behind >= 1, f"no call was refused behind a refused one: the chain did not pipeline ({m})"
        assert got == lines, "lines arrived out of order or more than once"
        assert col.terminate() == 0 and agg.terminate() == 0
    finally:
        col.kill()
        agg.kill()
