"""``python -m bench.client``: figures for pyflume_client (not CI).

1. ``FlumeHandler.emit`` while the source accepts connections but never answers (every call waits for its request
   timeout): emits per second and latency percentiles, the cost the application sees when the source is gone.
2. ``AvroClient.append_batch`` and ``FlumeHandler`` into a pyflume agent's avro source (memory channel, null sink)
   on loopback: events per second, every event counted by the agent's metrics.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cases import free_port, metrics, wait_port
from pyflume_client import AvroClient, FlumeHandler

AGENT = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = avro
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 1000
"""


def emit_when_silent(n: int = 100_000) -> str:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(100)
    handler = FlumeHandler("127.0.0.1", silent.getsockname()[1], capacity=1000, request_timeout=1000,
                           close_timeout=1)
    record = logging.LogRecord("app", logging.WARNING, __file__, 1, "event %d", (0,), None)
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        record.args = (i,)
        t = time.perf_counter()
        handler.emit(record)
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    handler.close()
    silent.close()
    latencies.sort()
    return (f"emit, source silent: {n / elapsed:,.0f} emits/s; p50 {latencies[n // 2] * 1e6:.1f} µs, "
            f"p99 {latencies[n * 99 // 100] * 1e6:.1f} µs, max {latencies[-1] * 1e3:.1f} ms")


def into_agent(n: int = 200_000) -> list[str]:
    port, mport = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "a.conf"
        conf.write_text(AGENT.format(port=port))
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        agent = subprocess.Popen([sys.executable, "-m", "agent", "-f", str(conf), "-n", "a1",
                                  "-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            wait_port(port, lambda: agent.poll() is None)
            wait_port(mport, lambda: agent.poll() is None)
            bodies = [f"event {i:08d} {'x' * 80}".encode() for i in range(n)]
            start = time.perf_counter()
            with AvroClient("127.0.0.1", port, batch_size=1000) as client:
                client.append_batch(bodies)
            client_rate = n / (time.perf_counter() - start)
            handler = FlumeHandler("127.0.0.1", port, batch_size=1000, capacity=n)
            record = logging.LogRecord("app", logging.INFO, __file__, 1, "event %d %s", (0, "x" * 80), None)
            start = time.perf_counter()
            for i in range(n):
                record.args = (i, "x" * 80)
                handler.emit(record)
            assert handler.flush(timeout=300)
            handler_rate = n / (time.perf_counter() - start)
            handler.close()
            got = int(metrics(mport)["SOURCE.r1"]["EventAcceptedCount"])
        finally:
            agent.terminate()
            agent.wait(30)
    assert got == 2 * n, f"the agent accepted {got} events, {2 * n} sent"
    return [f"AvroClient.append_batch (batches of 1000, ~100-byte bodies) into a pyflume avro source: "
            f"{client_rate:,.0f} events/s",
            f"FlumeHandler (emit to OK from the source, batches of 1000): {handler_rate:,.0f} records/s"]


def main() -> None:
    print(emit_when_silent())
    for line in into_agent():
        print(line)


if __name__ == "__main__":
    main()
