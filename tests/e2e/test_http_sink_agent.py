"""The http sink in the real ``agent``: a seq source's events POSTed to a real HTTP server on loopback, every one
exactly once although the server answers some with 503 (rolled back and sent again) and drops idle connections."""

from __future__ import annotations

import pytest

from peers.http_endpoint import HttpEndpoint
from tests.conftest import assert_exactly_once, wait_for_events

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
