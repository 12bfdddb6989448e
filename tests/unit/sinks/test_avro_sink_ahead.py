"""The Avro sink's take-ahead (sinks/rpc.py RpcSink.process) against a scripted Avro server on a real socket: the
next batch is taken while the peer works on the current one, sent only after its OK on a connection that is not
pipelined, and a refusal gives the channel back every batch still open, in its order."""

from __future__ import annotations

import select
import socket
import threading

import pytest
from test_sinks_basic import bind, make_channel

import sinks.rpc
from agent import rpc
from agent.core import Batch, EventDeliveryException, Status, bodies_of
from sinks.avro import AvroSink


class ScriptedServer:
    """Answers each appendBatch with the next status of ``script`` (then OK), and, on a pipelined connection, every
    call after a refused one FAILED as pyflume's Avro source does; records the batches it got and whether each call
    was already on the wire when the one before it was answered."""

    def __init__(self, script: list[str], pipeline: bool):
        self.script = list(script)
        self.pipeline = pipeline
        self.batches: list[list[bytes]] = []
        # was the third call sent before the second was answered (the first answer tells the client whether the
        # connection is pipelined, so the first call is always alone)
        self.third_was_early: bool | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            conn = rpc.Connection(sock)
            state = rpc.ServerState()
            try:
                while True:
                    serial, payload = conn.read_pack()
                    if not self.pipeline:
                        payload = payload.replace(rpc.PIPELINE_META.encode(), b"pyflume.nothing!")
                    prefix, _, events, _ = rpc.decode_request(state, payload)
                    self.batches.append([bytes(b) for b in events.bodies])
                    if state.refusing:
                        status = "FAILED"
                    else:
                        status = self.script.pop(0) if self.script else "OK"
                        state.refusing = status != "OK" and state.pipeline
                    if len(self.batches) == 2:  # a pipelining client sends the next call without our answer
                        # (already read with the second into the connection's buffer, or arriving on the socket)
                        self.third_was_early = bool(conn._buf) or bool(select.select([sock], [], [], 0.5)[0])
                    conn.write_pack(serial, rpc.encode_response(prefix, status))
            except (EOFError, OSError):
                sock.close()

    def close(self) -> None:
        self.listener.close()


def _sink(port: int, channel) -> AvroSink:  # noqa: ANN001
    conf, problems = bind(AvroSink, {"hostname": "127.0.0.1", "port": str(port), "batch-size": "100"})
    assert problems == []
    sink = AvroSink("k1", conf)
    sink.channel = channel
    sink.start()
    return sink


def _fill(channel, n: int) -> list[bytes]:  # noqa: ANN001
    bodies = [b"e%04d" % i for i in range(n)]
    for i in range(0, n, 100):
        tx = channel.transaction()
        tx.begin()
        tx.put_batch(Batch(bodies[i:i + 100]))
        tx.commit()
        tx.close()
    return bodies


def _left(channel) -> list[bytes]:  # noqa: ANN001
    """The bodies queued in the memory channel, head first (read without taking)."""
    return [bytes(b) for chunk in channel._queue for b in bodies_of(chunk)]


@pytest.mark.parametrize("pipeline", [False, True])
def test_a_refusal_returns_every_open_batch_in_order_and_the_retry_sends_them_in_order(pipeline: bool,
                                                                                       monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(sinks.rpc, "_AHEAD_SECONDS", 30.0)  # a slow first call must not end the taking ahead
    server = ScriptedServer(["OK", "FAILED"], pipeline)
    channel = make_channel(transactionCapacity="100")
    sink = _sink(server.port, channel)
    try:
        bodies = _fill(channel, 500)
        with pytest.raises(EventDeliveryException, match="returned FAILED"):
            sink.process()
        assert sink.client.pipelined is False  # closed after the refusal (pipelined) or never pipelined
        # the first batch was delivered; the refused one and the one taken (and maybe sent) behind it are back
        assert _left(channel) == bodies[100:]
        assert sink.counter.drain_success == 100
        for _ in range(10):  # one process() sends batches for up to 50 ms: enough here, unless the machine stalls
            assert sink.process() is Status.READY
            if not channel.size():
                break
        assert channel.size() == 0
        # calls: OK, FAILED, (pipelined: maybe the one behind it, refused), then the retry of the last 400 events
        batches = server.batches
        retry = max(i for i, b in enumerate(batches) if b == bodies[100:200])
        assert retry >= 2 and batches[:retry] == [bodies[i:i + 100] for i in range(0, retry * 100, 100)]
        retried = [b for batch in batches[retry:] for b in batch]
        assert retried == bodies[100:], "the retry must send every batch once more, in the channel's order"
        # without the pipeline, a call goes out only after the answer to the one before it
        assert server.third_was_early is pipeline, [b[0] for b in server.batches]
    finally:
        sink.stop()
        server.close()


def test_a_channel_without_take_ahead_gets_one_batch_per_process() -> None:
    server = ScriptedServer([], pipeline=True)
    channel = make_channel(transactionCapacity="100")
    channel.take_ahead = False  # as the file channel: BatchSink.process, one transaction at a time
    sink = _sink(server.port, channel)
    try:
        _fill(channel, 300)
        assert sink.process() is Status.READY
        assert channel.size() == 200 and len(server.batches) == 1
    finally:
        sink.stop()
        server.close()
