"""pyflume_client against a real pyflume agent's avro sources: the clients deliver every event exactly once (plain,
and TLS inside deflate with the CA checked), fail over past a host that is down, spread over hosts; the logging
handler delivers every record once with Log4jAppender's headers, and never makes the application wait when the
source is gone (drop_oldest), or waits only as told (block)."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from pathlib import Path

import pytest

from agent.core import Event
from agent.rpc import RpcClient
from pyflume_client import (
    AvroClient,
    ClientError,
    FailoverClient,
    FlumeClient,
    FlumeHandler,
    LoadBalancingClient,
    client_from_properties,
    event,
)
from tests.conftest import AgentProcess, assert_exactly_once, free_port, rolled_lines, self_signed, wait_for_events
from tests.e2e.test_syslog_sources import SINK

pytestmark = pytest.mark.e2e


def receiver(ports: list[int], out: Path, tls: Path | None = None, compression: str = "none") -> str:
    """One agent, an avro source per port (each stamps src=<its name>), one channel, header_and_text files."""
    names = [f"r{i}" for i in range(len(ports))]
    text = f"a1.sources = {' '.join(names)}\n"
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
    return text + SINK.format(out=out)


def bodies(out: Path, prefix: bytes = b"") -> list[bytes]:
    """The bodies written so far that start with ``prefix`` (each test sends its own)."""
    return [body for line in rolled_lines(out) if b"} " in line
            and (body := line.split(b"} ", 1)[1]).startswith(prefix)]


class Receiver:
    """One pyflume agent for the whole module: plain avro sources on ``ports[0]`` and ``ports[1]``, a TLS-inside-
    deflate one on ``tls_port`` (its CA in ``cert``), all writing to ``out``."""

    def __init__(self, tmp: Path):
        self.ports, self.tls_port, self.out = [free_port(), free_port()], free_port(), tmp / "out"
        self.cert, _, p12 = self_signed(tmp)
        text = receiver(self.ports, self.out)
        tls = receiver([self.tls_port], self.out, tls=p12, compression="deflate")
        text = text.replace("a1.sources = r0 r1", "a1.sources = r0 r1 t0")
        text += "".join(line.replace(".r0.", ".t0.").replace("value = r0", "value = t0") + "\n"
                        for line in tls.splitlines() if line.startswith("a1.sources.r0."))
        self.agent = AgentProcess(text, tmp).start()
        for port in [*self.ports, self.tls_port]:
            self.agent.wait_for_port(port)


@pytest.fixture(scope="module")
def rx(tmp_path_factory: pytest.TempPathFactory):
    r = Receiver(tmp_path_factory.mktemp("receiver"))
    yield r
    assert r.agent.terminate() == 0


def down_port() -> int:
    """A loopback port nobody listens on: connecting is refused at once."""
    return free_port()


def log_through(handler: FlumeHandler, prefix: str, n: int, logger: logging.Logger | None = None) -> list[bytes]:
    """Log ``prefix i`` for i < n through ``handler`` on ``logger`` (a logger of its own by default), wait for the
    handler to send them, close it; the bodies expected."""
    own = logger is None
    logger = logging.getLogger(f"test.{prefix}") if logger is None else logger
    logger.addHandler(handler)
    if own:
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        for i in range(n):
            logger.warning("%s %d", prefix, i)
        assert handler.flush(timeout=30)
    finally:
        logger.removeHandler(handler)
        handler.close()
    return [f"{prefix} {i}".encode() for i in range(n)]


def arrived_once(rx: Receiver, want: list[bytes], prefix: bytes) -> None:
    wait_for_events(want, lambda: bodies(rx.out, prefix), logs=[rx.agent])
    assert_exactly_once(want, bodies(rx.out, prefix), logs=[rx.agent])


@pytest.mark.parametrize("mode", ["plain", "tls+deflate"])
def test_avro_client_delivers_every_event_once(mode, rx):
    tls = mode != "plain"
    port = rx.tls_port if tls else rx.ports[0]
    settings = {"ssl": True, "truststore": str(rx.cert), "compression_type": "deflate"} if tls else {}
    want = [f"{mode} {i} é".encode() for i in range(3000)]
    with AvroClient("127.0.0.1", port, batch_size=250, **settings) as client:
        client.append(event(f"{mode} first", {"k": "v"}))
        client.append_batch(want)
    want.append(f"{mode} first".encode())
    wait_for_events(want, lambda: bodies(rx.out, mode.encode()), logs=[rx.agent])
    assert_exactly_once(want, bodies(rx.out, mode.encode()), logs=[rx.agent])
    assert f"{{k=v, src={'t0' if tls else 'r0'}}} {mode} first".encode() in rolled_lines(rx.out)


def test_tls_with_an_untrusted_certificate_is_refused(rx):
    client = AvroClient("127.0.0.1", rx.tls_port, ssl=True, compression_type="deflate", connect_timeout=5000)
    with pytest.raises(ClientError, match=r"1 events not delivered to 127.0.0.1:\d+: cannot connect .*CERTIFICATE"):
        client.append("x")  # the system's CAs do not know the agent's self-signed certificate
    client.close()


def test_failover_skips_a_host_that_is_down(rx, tmp_path):
    props = tmp_path / "client.properties"  # Flume's RPC client keys, as a Java application would write them
    props.write_text(f"client.type = default_failover\nhosts = h1 h2\nhosts.h1 = 127.0.0.1:{down_port()}\n"
                     f"hosts.h2 = 127.0.0.1:{rx.ports[0]}\nbatch-size = 100\nconnect-timeout = 2000\n")
    client = client_from_properties(props)
    assert isinstance(client, FailoverClient)
    want = [f"failover {i}".encode() for i in range(1000)]
    client.append_batch(want)
    client.close()
    wait_for_events(want, lambda: bodies(rx.out, b"failover "), logs=[rx.agent])
    assert_exactly_once(want, bodies(rx.out, b"failover "), logs=[rx.agent])


def test_load_balancing_spreads_and_backs_off(rx):
    p0, p1 = rx.ports
    client = LoadBalancingClient([f"127.0.0.1:{p0}", f"127.0.0.1:{down_port()}", f"127.0.0.1:{p1}"],
                                 backoff=True, batch_size=10)
    want = [f"lb {i}".encode() for i in range(1000)]
    client.append_batch(want)
    client.close()
    wait_for_events(want, lambda: bodies(rx.out, b"lb "), logs=[rx.agent])
    assert_exactly_once(want, bodies(rx.out, b"lb "), logs=[rx.agent])
    lines = [line for line in rolled_lines(rx.out) if b"} lb " in line]
    by_source = {src: sum(1 for line in lines if f"src={src}".encode() in line) for src in ("r0", "r1")}
    assert by_source["r0"] >= 300 and by_source["r1"] >= 300, by_source  # round robin over the two that answer


def test_handler_sends_every_record_once_with_log4j_headers(rx):
    handler = FlumeHandler("127.0.0.1", rx.ports[1], headers={"app": "shop"})
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
    wait_for_events(want, lambda: bodies(rx.out, b"order "), logs=[rx.agent])
    assert_exactly_once(want + [b"order failed"], bodies(rx.out, b"order "), logs=[rx.agent])
    assert handler.stats() == {"sent": 5001, "dropped": 0, "failures": 0, "buffered": 0}
    lines = rolled_lines(rx.out)
    first = next(line.decode() for line in lines if line.endswith(b"} order 0 paid"))
    headers = dict(kv.split("=", 1) for kv in first[1:first.index("} ")].split(", "))
    assert headers["flume.client.log4j.logger.name"] == "shop.orders"
    assert headers["flume.client.log4j.log.level"] == "20000"  # Log4j's INFO
    assert before <= int(headers["flume.client.log4j.timestamp"]) <= int(time.time() * 1000)
    assert headers["flume.client.log4j.address"] == socket.gethostbyname(socket.gethostname())
    assert headers["flume.client.log4j.message.encoding"] == "UTF8"
    assert headers["app"] == "shop"
    failed = lines.index(next(line for line in lines if line.endswith(b"} order failed")))
    assert b"flume.client.log4j.log.level=40000" in lines[failed]  # ERROR
    assert lines[failed + 1] == b"Traceback (most recent call last):"  # the body goes on with the traceback


def test_handler_never_blocks_the_application_when_the_source_is_gone(tmp_path, capfd):
    silent = socket.socket()  # a source that accepts connections and never answers: each call times out
    silent.bind(("127.0.0.1", 0))
    silent.listen(100)
    handler = FlumeHandler("127.0.0.1", silent.getsockname()[1], capacity=1000, batch_size=100,
                           request_timeout=5000, close_timeout=1)
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
    t = time.perf_counter()
    handler.flush()  # what logging.shutdown does at exit: flush, then close
    handler.close()
    exit_wait = time.perf_counter() - t
    silent.close()
    assert exit_wait < 2.5, exit_wait  # about close_timeout (1 s) in all, not once per step
    assert elapsed < 20 and slowest < 1.0, (elapsed, slowest)  # never the 5 s request timeout
    assert stats["sent"] == 0 and stats["buffered"] <= 1000 + 100
    assert stats["dropped"] + stats["buffered"] == 50_000  # each record is either waiting or counted as dropped
    assert handler.stats()["dropped"] == 50_000
    time.sleep(0.5)  # the sender's call in flight fails once close() closes the client: it must stay quiet
    err = capfd.readouterr().err
    assert re.search(r"closed with \d+ records not sent to AvroClient\(127.0.0.1:\d+\)", err), err
    assert "cannot send" not in err.split("closed with")[1], err  # nothing reported after close


def test_handler_block_policy_waits_only_as_told(rx, capfd):
    gone = FlumeHandler("127.0.0.1", down_port(), capacity=10, batch_size=5, when_full="block",
                        block_timeout=0.2, close_timeout=0.5)
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "x", None, None)
    for _ in range(15):  # 5 taken by the sender, 10 waiting
        gone.emit(record)
    t = time.perf_counter()
    gone.emit(record)  # the buffer is full: waits block_timeout, then drops it
    assert 0.15 < time.perf_counter() - t < 2
    assert gone.stats()["dropped"] == 1
    assert 1 <= gone.stats()["failures"] <= 4  # retries back off (0.1 s, 0.2 s …), not woken by each record
    gone.close()
    err = capfd.readouterr().err  # one line for the outage, not one per failure
    assert err.count("pyflume_client.FlumeHandler: cannot send to AvroClient(127.0.0.1:") == 1, err
    # with the source up, block loses nothing even through a tiny buffer
    handler = FlumeHandler("127.0.0.1", rx.ports[0], capacity=20, batch_size=10, when_full="block")
    arrived_once(rx, log_through(handler, "block", 3000), b"block ")
    assert handler.stats()["dropped"] == 0


def test_handler_in_a_forked_worker(rx):
    handler = FlumeHandler("127.0.0.1", rx.ports[0], batch_size=50)
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "%s %d", ("parent", 0), None)
    for i in range(500):  # the parent's connection is open when the worker is forked
        record.args = ("parent", i)
        handler.emit(record)
    assert handler.flush(timeout=30)
    pid = os.fork()
    if pid == 0:  # a pre-forking server's worker: its own sender thread and connection
        try:
            for i in range(500):
                handler.emit(logging.LogRecord("app", logging.INFO, __file__, 1, "%s %d", ("worker", i), None))
            os._exit(0 if handler.flush(timeout=30) and handler.stats()["sent"] == 500 else 1)
        finally:
            os._exit(2)
    for i in range(500, 1000):
        record.args = ("parent", i)
        handler.emit(record)
    assert os.waitpid(pid, 0)[1] == 0, "the worker did not send its 500 records"
    assert handler.flush(timeout=30)
    handler.close()
    want = [f"parent {i}".encode() for i in range(1000)] + [f"worker {i}".encode() for i in range(500)]
    got = wait_for_events(want, lambda: [b for b in bodies(rx.out) if b.startswith((b"parent ", b"worker "))],
                          logs=[rx.agent])
    assert_exactly_once(want, got, logs=[rx.agent])


class Chatty:
    """A sender that logs a warning for each batch, as a client does about a host that failed, around a real
    connection to the receiver."""

    def __init__(self, port: int):
        self.conn = RpcClient("127.0.0.1", port)

    def append_batch(self, events: list[Event]) -> None:
        logging.getLogger("pyflume_client.test").warning("sending %d records", len(events))
        self.conn.append_batch(events)

    def close(self) -> None:
        self.conn.close()


def test_block_policy_does_not_deadlock_with_the_clients_own_warnings(rx):
    """The sender thread logs (a client's warnings) while application threads wait for room under ``block``; with
    the handler on the root logger, that record must not wait for a lock the waiting application thread holds."""
    handler = FlumeHandler(client=FlumeClient(Chatty(rx.ports[0]), batch_size=5), capacity=5, batch_size=5,
                           when_full="block", block_timeout=2)
    arrived_once(rx, log_through(handler, "root", 200, logging.getLogger()), b"root ")
    assert handler.stats()["dropped"] == 0


def test_handler_from_dict_config(rx):
    import logging.config

    # what dictConfig does with a handler entry, without reconfiguring this process's logging
    config = logging.config.DictConfigurator({"version": 1})
    handler = config.configure_handler({"class": "pyflume_client.FlumeHandler", "host": "127.0.0.1",
                                        "port": rx.ports[1], "compression_type": "none", "headers": {"app": "dict"}})
    assert isinstance(handler, FlumeHandler)
    arrived_once(rx, log_through(handler, "dict", 100), b"dict ")
    assert all(b"app=dict" in line for line in rolled_lines(rx.out) if b"} dict " in line)
