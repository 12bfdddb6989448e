"""pyflume_client against a real pyflume agent's avro sources: the clients deliver every event exactly once (plain,
and TLS inside deflate with the CA checked), fail over past a host that is down, spread over hosts; the logging
handler delivers every record once with Log4jAppender's headers, and never makes the application wait when the
source is gone (drop_oldest), or waits only as told (block)."""

from __future__ import annotations

import logging
import re
import socket
import time
from pathlib import Path

import pytest

from pyflume_client import (
    AvroClient,
    ClientError,
    FailoverClient,
    FlumeHandler,
    LoadBalancingClient,
    client_from_properties,
    event,
)
from tests.conftest import assert_exactly_once, free_port, rolled_lines, self_signed, wait_for_events

pytestmark = pytest.mark.e2e


def receiver(ports: list[int], out: Path, tls: Path | None = None, compression: str = "none") -> str:
    """One agent, an avro source per port (each stamps src=<its name>), one channel, header_and_text files."""
    names = [f"r{i}" for i in range(len(ports))]
    text = f"a1.sources = {' '.join(names)}\na1.channels = c1\na1.sinks = k1\n"
    for name, port in zip(names, ports, strict=True):
        text += f"""\
a1.sources.{name}.type = avro
a1.sources.{name}.bind = 127.0.0.1
a1.sources.{name}.port = {port}
a1.sources.{name}.compression-type = {compression}
a1.sources.{name}.channels = c1
a1.sources.{name}.interceptors = src
a1.sources.{name}.interceptors.src.type = static
a1.sources.{name}.interceptors.src.key = src
a1.sources.{name}.interceptors.src.value = {name}
"""
        if tls is not None:
            text += (f"a1.sources.{name}.ssl = true\na1.sources.{name}.keystore = {tls}\n"
                     f"a1.sources.{name}.keystore-type = PKCS12\na1.sources.{name}.keystore-password = secret\n")
    return text + f"""\
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
a1.sinks.k1.sink.serializer = header_and_text
"""


def bodies(out: Path) -> list[bytes]:
    return [line.split(b"} ", 1)[1] for line in rolled_lines(out) if b"} " in line]


def down_port() -> int:
    """A loopback port nobody listens on: connecting is refused at once."""
    return free_port()


@pytest.mark.parametrize("mode", ["plain", "tls+deflate"])
def test_avro_client_delivers_every_event_once(mode, run_agent, tmp_path):
    port, out = free_port(), tmp_path / "out"
    cert, _, p12 = self_signed(tmp_path) if mode != "plain" else (None, None, None)
    agent = run_agent(receiver([port], out, tls=p12, compression="deflate" if p12 else "none"))
    agent.wait_for_port(port)
    settings = {"ssl": True, "truststore": str(cert), "compression_type": "deflate"} if cert else {}
    want = [f"event {i} é".encode() for i in range(3000)]
    with AvroClient("127.0.0.1", port, batch_size=250, **settings) as client:
        client.append(event("first", {"k": "v"}))
        client.append_batch(want)
    want.append(b"first")
    wait_for_events(want, lambda: bodies(out), logs=[agent])
    assert_exactly_once(want, bodies(out), logs=[agent])
    assert b"{k=v, src=r0} first" in rolled_lines(out)
    assert agent.terminate() == 0


def test_tls_with_an_untrusted_certificate_is_refused(run_agent, tmp_path):
    port, out = free_port(), tmp_path / "out"
    _, _, p12 = self_signed(tmp_path)
    agent = run_agent(receiver([port], out, tls=p12))
    agent.wait_for_port(port)
    client = AvroClient("127.0.0.1", port, ssl=True, connect_timeout=5000)  # the system CAs do not know it
    with pytest.raises(ClientError, match=r"1 events not delivered to 127.0.0.1:\d+: cannot connect .*CERTIFICATE"):
        client.append("x")
    client.close()
    assert agent.terminate() == 0


def test_failover_skips_a_host_that_is_down(run_agent, tmp_path):
    port, out = free_port(), tmp_path / "out"
    agent = run_agent(receiver([port], out))
    agent.wait_for_port(port)
    props = tmp_path / "client.properties"  # Flume's RPC client keys, as a Java application would write them
    props.write_text(f"client.type = default_failover\nhosts = h1 h2\nhosts.h1 = 127.0.0.1:{down_port()}\n"
                     f"hosts.h2 = 127.0.0.1:{port}\nbatch-size = 100\nconnect-timeout = 2000\n")
    client = client_from_properties(props)
    assert isinstance(client, FailoverClient)
    want = [f"f{i}".encode() for i in range(1000)]
    client.append_batch(want)
    client.close()
    wait_for_events(want, lambda: bodies(out), logs=[agent])
    assert_exactly_once(want, bodies(out), logs=[agent])
    assert agent.terminate() == 0


def test_load_balancing_spreads_and_backs_off(run_agent, tmp_path):
    p0, p1, out = free_port(), free_port(), tmp_path / "out"
    agent = run_agent(receiver([p0, p1], out))
    agent.wait_for_port(p0)
    agent.wait_for_port(p1)
    client = LoadBalancingClient([f"127.0.0.1:{p0}", f"127.0.0.1:{down_port()}", f"127.0.0.1:{p1}"],
                                 backoff=True, batch_size=10)
    want = [f"lb{i}".encode() for i in range(1000)]
    client.append_batch(want)
    client.close()
    wait_for_events(want, lambda: bodies(out), logs=[agent])
    assert_exactly_once(want, bodies(out), logs=[agent])
    by_source = {src: sum(1 for line in rolled_lines(out) if f"src={src}".encode() in line) for src in ("r0", "r1")}
    assert by_source["r0"] >= 300 and by_source["r1"] >= 300, by_source  # round robin over the two that answer
    assert agent.terminate() == 0


def test_handler_sends_every_record_once_with_log4j_headers(run_agent, tmp_path):
    port, out = free_port(), tmp_path / "out"
    agent = run_agent(receiver([port], out))
    agent.wait_for_port(port)
    handler = FlumeHandler("127.0.0.1", port, headers={"app": "shop"})
    logger = logging.getLogger("shop.orders")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    before = int(time.time() * 1000)
    try:
        for i in range(5000):
            logger.info("order %d paid", i)
        try:
            raise ValueError("card declined")
        except ValueError:
            logger.exception("order failed")
        assert handler.flush(timeout=30)
    finally:
        logger.removeHandler(handler)
        handler.close()
    want = [f"order {i} paid".encode() for i in range(5000)]
    got = wait_for_events(want, lambda: bodies(out), logs=[agent])
    assert_exactly_once(want, [b for b in got if b.startswith(b"order ") and b.endswith(b" paid")], logs=[agent])
    assert handler.stats() == {"sent": 5001, "dropped": 0, "failures": 0, "buffered": 0}
    lines = rolled_lines(out)
    first = next(line.decode() for line in lines if line.endswith(b"} order 0 paid"))
    headers = dict(kv.split("=", 1) for kv in first[1:first.index("} ")].split(", "))
    assert headers["flume.client.log4j.logger.name"] == "shop.orders"
    assert headers["flume.client.log4j.log.level"] == "20000"  # Log4j's INFO
    assert before <= int(headers["flume.client.log4j.timestamp"]) <= int(time.time() * 1000)
    assert headers["flume.client.log4j.address"] == socket.gethostbyname(socket.gethostname())
    assert headers["flume.client.log4j.message.encoding"] == "UTF8"
    assert headers["app"] == "shop"
    failed = next(line for line in lines if b"order failed" in line)
    assert b"flume.client.log4j.log.level=40000" in failed  # ERROR; the traceback is in the next lines of the body
    assert agent.terminate() == 0


def test_handler_never_blocks_the_application_when_the_source_is_gone(tmp_path, capfd):
    silent = socket.socket()  # a source that accepts connections and never answers: each call times out
    silent.bind(("127.0.0.1", 0))
    silent.listen(100)
    handler = FlumeHandler("127.0.0.1", silent.getsockname()[1], capacity=1000, batch_size=100,
                           request_timeout=1000, close_timeout=1)
    record = logging.LogRecord("app", logging.WARNING, __file__, 1, "event %d", (0,), None)
    slowest = 0.0
    start = time.perf_counter()
    for i in range(50_000):
        record.args = (i,)
        t = time.perf_counter()
        handler.emit(record)
        slowest = max(slowest, time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    stats = handler.stats()
    handler.close()
    silent.close()
    assert elapsed < 10 and slowest < 0.5, (elapsed, slowest)  # never the 1 s request timeout
    assert stats["sent"] == 0 and stats["buffered"] <= 1000 + 100
    assert stats["dropped"] + stats["buffered"] == 50_000  # each record is either waiting or counted as dropped
    assert handler.stats()["dropped"] == 50_000
    err = capfd.readouterr().err
    assert err.count("pyflume_client.FlumeHandler: cannot send to AvroClient(127.0.0.1:") == 1, err
    assert re.search(r"closed with \d+ records not sent", err), err


def test_handler_block_policy_waits_only_as_told(run_agent, tmp_path):
    gone = FlumeHandler("127.0.0.1", down_port(), capacity=10, batch_size=5, when_full="block",
                        block_timeout=0.2, close_timeout=0.5)
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "x", None, None)
    for _ in range(15):  # 5 taken by the sender, 10 waiting
        gone.emit(record)
    t = time.perf_counter()
    gone.emit(record)  # the buffer is full: waits block_timeout, then drops it
    assert 0.15 < time.perf_counter() - t < 2
    assert gone.stats()["dropped"] == 1
    gone.close()
    # with the source up, block loses nothing even through a tiny buffer
    port, out = free_port(), tmp_path / "out"
    agent = run_agent(receiver([port], out))
    agent.wait_for_port(port)
    handler = FlumeHandler("127.0.0.1", port, capacity=20, batch_size=10, when_full="block")
    for i in range(3000):
        handler.emit(logging.LogRecord("app", logging.INFO, __file__, 1, "b%d", (i,), None))
    assert handler.flush(timeout=30)
    handler.close()
    want = [f"b{i}".encode() for i in range(3000)]
    wait_for_events(want, lambda: bodies(out), logs=[agent])
    assert_exactly_once(want, bodies(out), logs=[agent])
    assert handler.stats()["dropped"] == 0
    assert agent.terminate() == 0
