"""The http sink against a real HTTP/1.1 server on loopback (tests/peers/http_endpoint.py): Flume's per-status
decisions (rollback, backoff, incrementMetrics; code beats class beats default), keep-alive, a connection the
server dropped, refused connections and timeouts, and the --check messages."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent import config
from agent.core import Event, Status
from peers.http_endpoint import HttpEndpoint
from sinks.http import StatusRules
from tests.conftest import free_port, self_signed, started_sink
from tests.conftest import put_events as put

BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.keep-alive = 0
a1.sinks.k1.type = http
a1.sinks.k1.channel = c1
a1.sinks.k1.endpoint = {endpoint}
"""
WORKING = """\
a1.sinks.k1.rollback.2XX = false
a1.sinks.k1.backoff.2XX = false
a1.sinks.k1.incrementMetrics.2XX = true
"""


@pytest.fixture(scope="module")
def server():
    s = HttpEndpoint().start()
    yield s
    s.stop()


@pytest.fixture
def endpoint(server):
    server.requests.clear()
    server.script.clear()
    server.default, server.delay, server.close_after = 200, 0.0, 0
    return server


def check(tmp_path: Path, extra: str, endpoint: str = "http://127.0.0.1:9/x"):
    p = tmp_path / "a1.conf"
    p.write_text(BASE.format(endpoint=endpoint) + extra)
    topo, problems = config.check([str(p)], "a1")
    return topo, problems, p


def sink(tmp_path: Path, endpoint: HttpEndpoint | str, extra: str = WORKING):
    p = tmp_path / "a1.conf"
    p.write_text(BASE.format(endpoint=endpoint if isinstance(endpoint, str) else endpoint.url) + extra)
    return started_sink(p)


def put_events(ch, bodies: list[bytes]) -> None:  # noqa: ANN001
    put(ch, [Event(b) for b in bodies])


def left(ch) -> list[bytes]:  # noqa: ANN001
    with ch.transaction() as tx:
        got = tx.take_batch(ch.transaction_capacity)
        tx.rollback()
    return [e.body for e in got]


def counts(k) -> dict[str, str]:  # noqa: ANN001
    m = k.metrics()
    return {key: m[key] for key in ("EventDrainAttemptCount", "EventDrainSuccessCount", "EventWriteFail")}


@pytest.mark.parametrize("default, overrides, code, expected", [
    pytest.param(True, {}, 200, True, id="no override: the default, 200 too"),
    pytest.param(True, {"2XX": "false"}, 204, False, id="the class"),
    pytest.param(True, {"2XX": "false", "201": "true"}, 201, True, id="the code beats its class"),
    pytest.param(False, {"5XX": "true"}, 503, True, id="5XX"),
    pytest.param(False, {"5XX": "true"}, 404, False, id="another class: the default"),
    pytest.param(False, {"5xx": "true"}, 503, False, id="lower-case xx never matches, as in Flume"),
    pytest.param(False, {"503": "TRUE"}, 503, True, id="Boolean.valueOf ignores case"),
    pytest.param(True, {"503": "yes"}, 503, False, id="anything but true is false"),
])
def test_status_rules_decide_as_flume(default, overrides, code, expected):
    assert StatusRules(default, overrides)(code) is expected


def test_each_event_is_posted_once_on_one_kept_alive_connection(tmp_path, endpoint):
    k, ch = sink(tmp_path, endpoint, WORKING + "a1.sinks.k1.contentTypeHeader = application/json\n")
    bodies = [b'{"n": %d}' % i for i in range(20)]
    put_events(ch, bodies)
    assert [k.process() for _ in range(21)] == [Status.READY] * 20 + [Status.BACKOFF]
    assert endpoint.bodies() == bodies and left(ch) == []
    assert len({r.connection for r in endpoint.requests}) == 1
    r = endpoint.requests[0]
    assert (r.headers["Content-Type"], r.headers["Accept"]) == ("application/json", "text/plain")
    assert counts(k) == {"EventDrainAttemptCount": "20", "EventDrainSuccessCount": "20", "EventWriteFail": "0"}
    k.stop()


def test_flumes_defaults_roll_back_and_back_off_even_on_200(tmp_path, endpoint):
    k, ch = sink(tmp_path, endpoint, "")
    put_events(ch, [b"a", b"b"])
    assert k.process() is Status.BACKOFF
    assert endpoint.bodies() == [b"a"] and left(ch) == [b"a", b"b"]  # sent, and still first in the channel
    assert counts(k) == {"EventDrainAttemptCount": "1", "EventDrainSuccessCount": "0", "EventWriteFail": "0"}
    k.stop()


def test_a_rolled_back_event_is_sent_again_until_it_is_accepted(tmp_path, endpoint):
    k, ch = sink(tmp_path, endpoint, WORKING + "a1.sinks.k1.rollback.503 = true\na1.sinks.k1.backoff.5XX = true\n")
    endpoint.script[:] = [503, 503]
    put_events(ch, [b"x", b"y"])
    assert [k.process() for _ in range(4)] == [Status.BACKOFF, Status.BACKOFF, Status.READY, Status.READY]
    assert endpoint.bodies() == [b"x", b"x", b"x", b"y"] and left(ch) == []
    assert counts(k)["EventDrainSuccessCount"] == "2"  # incrementMetrics only for 2XX


def test_a_committed_error_drops_the_event_and_goes_on(tmp_path, endpoint):
    k, ch = sink(tmp_path, endpoint, WORKING + "a1.sinks.k1.rollback.4XX = false\na1.sinks.k1.backoff.4XX = false\n"
                                               "a1.sinks.k1.incrementMetrics.400 = true\n")
    put_events(ch, [b"404:gone", b"400:bad", b"ok"])
    assert [k.process() for _ in range(3)] == [Status.READY] * 3
    assert left(ch) == [] and [r.status for r in endpoint.requests] == [404, 400, 200]
    assert counts(k)["EventDrainSuccessCount"] == "2"  # 400 (its code) and 200 (2XX), not 404


def test_a_connection_the_server_dropped_is_replaced_and_nothing_is_lost(tmp_path, endpoint):
    endpoint.close_after = 1  # the server closes each connection after one answer, without saying so
    k, ch = sink(tmp_path, endpoint)
    put_events(ch, [b"%d" % i for i in range(5)])
    assert [k.process() for _ in range(5)] == [Status.READY] * 5
    assert endpoint.bodies() == [b"%d" % i for i in range(5)] and left(ch) == []
    assert len({r.connection for r in endpoint.requests}) == 5
    assert counts(k)["EventWriteFail"] == "0"


def test_refused_connection_and_timeout_roll_back_and_count_a_write_failure(tmp_path, endpoint):
    k, ch = sink(tmp_path, f"http://127.0.0.1:{free_port()}/x", WORKING + "a1.sinks.k1.connectTimeout = 500\n")
    put_events(ch, [b"kept"])
    assert k.process() is Status.BACKOFF and left(ch) == [b"kept"]
    assert counts(k) == {"EventDrainAttemptCount": "1", "EventDrainSuccessCount": "0", "EventWriteFail": "1"}

    endpoint.delay = 0.5
    k2, ch2 = sink(tmp_path, endpoint, WORKING + "a1.sinks.k1.requestTimeout = 100\n")
    put_events(ch2, [b"slow"])
    assert k2.process() is Status.BACKOFF and left(ch2) == [b"slow"]
    assert counts(k2)["EventWriteFail"] == "1"
    endpoint.delay = 0
    assert k2.process() is Status.READY and left(ch2) == []


def test_an_empty_body_is_dropped_without_a_request(tmp_path, endpoint):
    k, ch = sink(tmp_path, endpoint)
    put_events(ch, [b"", b"after"])
    assert k.process() is Status.BACKOFF and endpoint.bodies() == []
    assert k.process() is Status.READY and endpoint.bodies() == [b"after"]


def test_check_explains_what_flume_would_silently_ignore(tmp_path):
    topo, problems, p = check(tmp_path, "a1.sinks.k1.rollback.2xx = false\na1.sinks.k1.backoff.200 = no\n")
    assert topo is not None
    assert [str(x) for x in problems] == [
        f"{p}:11: a1.sinks.k1 (http): rollback.2xx: warning: '2xx' is neither a status code (503) nor a class of "
        f"codes (5XX, upper-case XX), so Flume never applies it; did you mean rollback.2XX?",
        f"{p}:12: a1.sinks.k1 (http): backoff.200: warning: 'no' is read as false (only true, in any case, is "
        f"true)",
        f"{p}:8: a1.sinks.k1 (http): defaultRollback: warning: 200 OK rolls the event back (defaultRollback = true "
        f"and no rollback.200 or rollback.2XX), so every event is sent again forever, as in Flume; set "
        f"rollback.2XX = false",
    ]


@pytest.mark.parametrize("extra, expected", [
    ("", "endpoint: 'ftp://h/x' is not an http:// or https:// URL"),
    ("a1.sinks.k1.connectTimeout = 0\n", "connectTimeout: 0 is too small; the minimum is 1"),
])
def test_check_refuses_what_cannot_work(tmp_path, extra, expected):
    topo, problems, _ = check(tmp_path, WORKING + extra, "ftp://h/x" if not extra else "http://h/x")
    assert topo is None and any(expected in str(x) for x in problems), [str(x) for x in problems]


def test_a_real_server_socket_is_what_answers(endpoint):
    # the endpoint is a real socket server, not a stand-in inside the sink
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=5) as s:
        s.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n418:ping")
        assert s.recv(100).startswith(b"HTTP/1.1 418")


def _raw_server(answers: list[bytes]) -> tuple[int, list[bytes]]:
    """A one-connection server that answers each request with the next raw answer, then closes: for the answer
    framings http.server does not produce (chunked, HTTP/1.0 without a length)."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            reader = conn.makefile("rb")
            for answer in answers:
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                got.append(reader.read(length))
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], got


def test_chunked_and_unframed_answers_are_read_whole(tmp_path):
    port, got = _raw_server([
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nabcd",
        b"HTTP/1.0 202 Accepted\r\n\r\nthe rest until the close",
    ])
    k, ch = sink(tmp_path, f"http://127.0.0.1:{port}/x")
    put_events(ch, [b"one", b"two", b"three"])
    assert [k.process() for _ in range(3)] == [Status.READY] * 3
    assert got == [b"one", b"two", b"three"] and left(ch) == []  # all three on the one connection


def test_https_with_flumes_global_trust_store(tmp_path, monkeypatch):
    cert, key, _ = self_signed(tmp_path)
    server = HttpEndpoint().start(tls=(str(cert), str(key)))
    try:
        monkeypatch.setenv("FLUME_SSL_TRUSTSTORE_PATH", str(cert))  # Flume's global trust store setting
        k, ch = sink(tmp_path, server)
        put_events(ch, [b"secret"])
        assert k.process() is Status.READY and server.bodies() == [b"secret"]
        k.stop()
        monkeypatch.delenv("FLUME_SSL_TRUSTSTORE_PATH")
        k, ch = sink(tmp_path, server)  # without it the self-signed certificate is not trusted
        put_events(ch, [b"refused"])
        assert k.process() is Status.BACKOFF and left(ch) == [b"refused"] and counts(k)["EventWriteFail"] == "1"
        k.stop()
    finally:
        server.stop()
