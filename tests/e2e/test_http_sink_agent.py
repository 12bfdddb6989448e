"""The http sink in the real ``agent``: a seq source's events POSTed to a real HTTP server on loopback, every one
exactly once although the server answers some with 503 (rolled back and sent again) and drops idle connections;
and beside Apache Flume 1.11's HttpSink, the same requests and counters for the same answers."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from peers.http_endpoint import HttpEndpoint
from tests.conftest import assert_exactly_once, free_port, wait_for, wait_for_events

pytestmark = pytest.mark.e2e

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 50
a1.sources.r1.totalEvents = 300
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.keep-alive = 1
a1.sinks.k1.type = http
a1.sinks.k1.channel = c1
a1.sinks.k1.endpoint = {url}
a1.sinks.k1.contentTypeHeader = text/plain; charset=UTF-8
a1.sinks.k1.rollback.2XX = false
a1.sinks.k1.backoff.2XX = false
a1.sinks.k1.rollback.503 = true
a1.sinks.k1.backoff.503 = false
"""


def test_every_event_arrives_once_through_503s_and_dropped_connections(run_agent):
    server = HttpEndpoint(close_after=40, script=[200] * 100 + [503, 503, 200, 503]).start()
    try:
        agent = run_agent(CONF.format(url=server.url))
        expected = [b"%d" % i for i in range(300)]
        wait_for_events(expected, lambda: [r.body for r in server.requests if r.status == 200],
                        logs=[agent.log()])
        assert agent.terminate() == 0
        accepted = [r.body for r in server.requests if r.status == 200]
        assert_exactly_once(expected, accepted, logs=[agent.log()])
        assert accepted == expected  # one event per request, in the channel's order, retries in place
        assert [r.status for r in server.requests].count(503) == 3
    finally:
        server.stop()


PARITY = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {spool}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = http
a1.sinks.k1.channel = c1
a1.sinks.k1.endpoint = {url}
a1.sinks.k1.defaultBackoff = false
a1.sinks.k1.rollback.2XX = false
a1.sinks.k1.rollback.3XX = false
a1.sinks.k1.rollback.4XX = false
a1.sinks.k1.rollback.5XX = false
a1.sinks.k1.rollback.503 = true
a1.sinks.k1.incrementMetrics.2XX = true
a1.sinks.k1.incrementMetrics.201 = false
a1.sinks.k1.incrementMetrics.5XX = TRUE
a1.sinks.k1.incrementMetrics.503 = no
a1.sinks.k1.incrementMetrics.4xx = true
"""
#: the endpoint's answers, request by request: 503 is rolled back (sent again), the rest committed
SCRIPT = [200, 503, 503, 200, 404, 200, 500, 201, 302, 418, 200, 200]
LINES = [b"line-%d" % i for i in range(10)]


def _run_parity(start, tmp_path, name: str) -> tuple[list[tuple[bytes, int]], dict]:  # noqa: ANN001
    spool = tmp_path / f"{name}-spool"
    spool.mkdir()
    (spool / "events.log").write_bytes(b"\n".join(LINES) + b"\n")
    server = HttpEndpoint(script=list(SCRIPT)).start()
    mport = free_port()
    conf = tmp_path / f"{name}.conf"
    conf.write_text(PARITY.format(spool=spool, url=server.url))
    agent = start(conf, mport)
    try:
        wait_for(lambda: len(server.requests) >= len(SCRIPT), 60, f"{name}: the requests")
        time.sleep(0.5)  # nothing more may come

        def sink_metrics() -> dict:
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
                return json.loads(r.read())["SINK.k1"]

        wait_for(lambda: sink_metrics().get("EventDrainAttemptCount") == str(len(SCRIPT)), 20, f"{name}: metrics")
        m = sink_metrics()
        return [(r.body, r.status) for r in server.requests], {
            k: m[k] for k in ("EventDrainAttemptCount", "EventDrainSuccessCount", "EventWriteFail")}
    finally:
        agent()
        server.stop()


@pytest.mark.peer
def test_flumes_http_sink_decides_every_status_the_same_way(tmp_path, flume_classpath, run_agent):
    from peers.flume import FlumeAgent

    def flume(conf, mport):  # noqa: ANN001, ANN202
        f = FlumeAgent(conf, log_path=tmp_path / "flume.log",
                       sysprops={"flume.monitoring.type": "http", "flume.monitoring.port": str(mport)}).start()
        return f.stop

    def ours(conf, mport):  # noqa: ANN001, ANN202
        a = run_agent(conf.read_text(), args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
        return a.terminate

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:  # side by side: Flume's start-up is most of the time
        flume_run = pool.submit(_run_parity, flume, tmp_path, "flume")
        our_run = pool.submit(_run_parity, ours, tmp_path, "pyflume")
        theirs, mine = flume_run.result(), our_run.result()
    assert mine == theirs
    requests, counters = mine
    assert [b for b, _ in requests] == [LINES[0], LINES[1], LINES[1], LINES[1], *LINES[2:]]
    # incrementMetrics: 200 (2XX) and 500 (5XX, TRUE) count; 201, 503 ("no"), 404 (4xx never matches), 302, 418 not
    assert counters == {"EventDrainAttemptCount": "12", "EventDrainSuccessCount": "6", "EventWriteFail": "0"}
