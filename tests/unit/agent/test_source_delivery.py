"""How every source hands events to its channels (Source.deliver) and listens for clients (agent.listen): what is
counted, what is retried and for how long, how batches are sliced, and that a stopping source lets go."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from agent.core import ChannelException, ChannelProcessor, ChannelSelector, Event, Source
from agent.listen import TcpListener, UdpListener
from agent.spec import Conf, Prop, Spec


class _Channels(ChannelProcessor):
    """Refuses the first ``refusals`` batches (a full channel), then keeps what it is given."""

    def __init__(self, refusals: int = 0, max_batch: int = 0):
        super().__init__(ChannelSelector("s", Conf({}, {})))
        self.refusals = refusals
        self.max_batch = max_batch
        self.batches: list[list[bytes]] = []

    def process_batch(self, events: list[Event]) -> None:
        if self.refusals:
            self.refusals -= 1
            raise ChannelException("full")
        self.batches.append([e.body for e in events])


class _Source(Source):
    spec = Spec(Prop("batchSize", "int", 0, "Batch size."))


def _source(refusals: int = 0, max_batch: int = 0, batch_size: int = 0) -> tuple[_Source, _Channels]:
    src = _Source("r1", Conf.from_dict(_Source.spec, batchSize=str(batch_size)))
    src.channel_processor = channels = _Channels(refusals, max_batch)
    return src, channels


def _counts(src: Source) -> dict[str, str]:
    return {k: v for k, v in src.counter.attributes().items() if v != "0" and k != "Type"}


def _events(n: int) -> list[Event]:
    return [Event(b"%d" % i) for i in range(n)]


def test_a_committed_batch_counts_as_received_and_accepted() -> None:
    src, channels = _source()
    assert src.deliver(_events(3)) is True
    assert channels.batches == [[b"0", b"1", b"2"]]
    assert _counts(src) == {"EventReceivedCount": "3", "EventAcceptedCount": "3", "AppendBatchReceivedCount": "1",
                            "AppendBatchAcceptedCount": "1"}
    src.deliver(_events(2), count="append")
    src.deliver(_events(1), count=None)
    assert _counts(src) == {"EventReceivedCount": "6", "EventAcceptedCount": "6", "AppendBatchReceivedCount": "1",
                            "AppendBatchAcceptedCount": "1", "AppendReceivedCount": "1", "AppendAcceptedCount": "1"}


def test_without_hold_the_refusal_reaches_the_caller() -> None:
    src, channels = _source(refusals=1)
    with pytest.raises(ChannelException):
        src.deliver(_events(4))
    assert channels.batches == []
    assert _counts(src) == {"EventReceivedCount": "4", "AppendBatchReceivedCount": "1", "ChannelWriteFail": "1"}


def test_with_hold_a_refused_batch_is_retried_until_it_is_committed() -> None:
    src, channels = _source(refusals=3)
    assert src.deliver(_events(2), hold=True, first_delay=0.001, max_delay=0.002) is True
    assert channels.batches == [[b"0", b"1"]]
    assert _counts(src) == {"EventReceivedCount": "2", "EventAcceptedCount": "2", "AppendBatchReceivedCount": "1",
                            "AppendBatchAcceptedCount": "1", "ChannelWriteFail": "3"}


def test_with_hold_a_stopping_source_gives_up_at_once() -> None:
    src, channels = _source(refusals=1_000_000)
    threading.Timer(0.2, src.stop).start()
    started = time.monotonic()
    assert src.deliver(_events(2), hold=True, first_delay=60, max_delay=60) is False
    assert time.monotonic() - started < 5
    assert channels.batches == []


def test_sliced_batches_follow_the_batch_size_and_transaction_capacity() -> None:
    src, channels = _source(max_batch=4, batch_size=3)
    acknowledged: list[int] = []
    assert src.deliver(_events(7), sliced=True, committed=acknowledged.append) is True
    assert channels.batches == [[b"0", b"1", b"2"], [b"3", b"4", b"5"], [b"6"]]
    assert acknowledged == [3, 3, 1]
    src, channels = _source(max_batch=2)
    src.deliver(_events(3), sliced=True)
    assert channels.batches == [[b"0", b"1"], [b"2"]]


def test_a_tcp_listener_serves_each_connection_and_stop_ends_them() -> None:
    src, _ = _source()
    got: list[bytes] = []

    def serve(conn: socket.socket, port: int, addr: tuple) -> None:
        while data := conn.recv(100):
            got.append(data)
            conn.sendall(b"OK")

    listener = TcpListener(src, "127.0.0.1", [0, 0], serve, count=True)
    src.start()
    listener.start()
    try:
        for port in listener.ports:
            with socket.create_connection(("127.0.0.1", port)) as c:
                c.sendall(b"x%d" % port)
                assert c.recv(2) == b"OK"
        idle = socket.create_connection(("127.0.0.1", listener.ports[0]))
        deadline = time.monotonic() + 5
        while src.counter.open_connections != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert src.counter.open_connections == 1
    finally:
        listener.stop()
    assert idle.recv(10) == b""  # stop shut the open connection down
    idle.close()
    assert sorted(got) == sorted(b"x%d" % p for p in listener.ports)
    assert listener.crash is None


def test_a_port_in_use_is_named() -> None:
    src, _ = _source()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: "):
            TcpListener(src, "127.0.0.1", [port], lambda *a: None).start()


def test_a_udp_listener_hands_over_what_is_queued_as_one_batch() -> None:
    src, _ = _source()
    batches: list[list[bytes]] = []
    received = threading.Event()

    def receive(datagrams: list[tuple[bytes, tuple]]) -> bool:
        batches.append([d for d, _ in datagrams])
        if sum(map(len, batches)) >= 3:
            received.set()
        return True

    listener = UdpListener(src, "127.0.0.1", 0, receive)
    src.start()
    listener.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(3):
                s.sendto(b"d%d" % i, ("127.0.0.1", listener.port))
        assert received.wait(5)
    finally:
        listener.stop()
    assert [d for b in batches for d in b] == [b"d0", b"d1", b"d2"]
