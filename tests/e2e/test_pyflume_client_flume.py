"""pyflume_client against Apache Flume 1.11's own avro source (with deflate) and thrift source: the avro client, the
failover client past a host that is down, the logging handler and the thrift client each deliver every event
exactly once, with Log4jAppender's headers as Flume writes them."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from peers.flume import FlumeAgent
from pyflume_client import AvroClient, FailoverClient, FlumeHandler, ThriftClient
from tests.conftest import assert_exactly_once, free_port, rolled_lines, wait_for_events
from tests.e2e.test_avro_flume_interop import wait_port

pytestmark = pytest.mark.peer

FLUME = """\
fl.sources = zipped th
fl.sources.th.type = thrift
fl.sources.th.bind = 127.0.0.1
fl.sources.th.port = {thrift}
fl.sources.th.channels = c1
fl.channels = c1
fl.sinks = k1
fl.sources.zipped.type = avro
fl.sources.zipped.bind = 127.0.0.1
fl.sources.zipped.port = {zipped}
fl.sources.zipped.compression-type = deflate
fl.sources.zipped.channels = c1
fl.channels.c1.type = memory
fl.channels.c1.capacity = 100000
fl.channels.c1.transactionCapacity = 1000
fl.sinks.k1.type = file_roll
fl.sinks.k1.channel = c1
fl.sinks.k1.sink.directory = {out}
fl.sinks.k1.sink.rollInterval = 0
fl.sinks.k1.sink.batchSize = 1000
fl.sinks.k1.sink.serializer = header_and_text
"""


def test_clients_and_handler_into_flumes_avro_source(tmp_path, flume_classpath):
    port, thrift_port, out = free_port(), free_port(), tmp_path / "out"
    out.mkdir()
    conf = tmp_path / "flume.conf"
    conf.write_text(FLUME.format(zipped=port, thrift=thrift_port, out=out))

    def bodies() -> list[bytes]:
        return [line.split(b"} ", 1)[1] for line in rolled_lines(out) if b"} " in line]

    with FlumeAgent(conf, "fl", log_path=tmp_path / "flume.log") as flume:
        wait_port(port)
        single = [f"single {i} é".encode() for i in range(2000)]
        with AvroClient("127.0.0.1", port, compression_type="deflate", batch_size=300) as client:
            client.append_batch(single)
        failover = [f"failover {i}".encode() for i in range(1000)]
        with FailoverClient([f"127.0.0.1:{free_port()}", f"127.0.0.1:{port}"], compression_type="deflate") as client:
            client.append_batch(failover)
        handler = FlumeHandler("127.0.0.1", port, compression_type="deflate")
        logger = logging.getLogger("flume.interop")
        logger.addHandler(handler)
        logger.propagate = False
        try:
            for i in range(2000):
                logger.warning("logged %d", i)
            assert handler.flush(timeout=60)
        finally:
            logger.removeHandler(handler)
            handler.close()
        logged = [f"logged {i}".encode() for i in range(2000)]
        wait_port(thrift_port)
        thrift = [f"thrift {i} é".encode() for i in range(1500)]
        with ThriftClient("127.0.0.1", thrift_port, batch_size=400) as client:  # compact, Flume's default
            client.append_batch(thrift)
        want = single + failover + logged + thrift
        wait_for_events(want, bodies, logs=[flume])
        # everything is written; Flume's graceful stop of an avro source takes seconds
        assert flume.proc is not None
        os.killpg(flume.proc.pid, signal.SIGKILL)
        flume.proc.wait(30)
    assert_exactly_once(want, bodies(), logs=[flume])
    line = next(line.decode() for line in rolled_lines(out) if line.endswith(b"} logged 0"))
    for header in ("flume.client.log4j.logger.name=flume.interop", "flume.client.log4j.log.level=30000",
                   "flume.client.log4j.message.encoding=UTF8", "flume.client.log4j.timestamp="):
        assert header in line, line
