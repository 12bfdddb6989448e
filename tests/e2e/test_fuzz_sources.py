"""Fuzzing the network sources of a running agent: random and truncated Avro frames, random HTTP bodies and
random syslog bytes. The agent must not crash, must answer bad input clearly, and must keep serving good clients."""

from __future__ import annotations

import socket
import struct
import urllib.error
import urllib.request

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.core import Event
from agent.rpc import PROTOCOL_MD5, RpcClient, pack
from conftest import free_port

CONF = """\
a1.sources = avro http syslog
a1.channels = c1
a1.sinks = k1
a1.sources.avro.type = avro
a1.sources.avro.bind = 127.0.0.1
a1.sources.avro.port = {avro}
a1.sources.avro.channels = c1
a1.sources.http.type = http
a1.sources.http.bind = 127.0.0.1
a1.sources.http.port = {http}
a1.sources.http.channels = c1
a1.sources.syslog.type = syslogtcp
a1.sources.syslog.host = 127.0.0.1
a1.sources.syslog.port = {syslog}
a1.sources.syslog.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 10000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 1000
"""

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def _send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except OSError:
            pass  # the source may close on us: that is the point


_frames = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda serial, count, body: struct.pack(">ii", serial, count) + body,
              st.integers(-2**31, 2**31 - 1), st.integers(-5, 2**31 - 1), st.binary(max_size=64)),
    # a valid handshake prefix followed by garbage, possibly truncated
    st.builds(lambda cut, tail: pack(1, PROTOCOL_MD5 + b"\x00" + PROTOCOL_MD5 + b"\x02\x00" + tail)[:cut],
              st.integers(0, 80), st.binary(max_size=40)),
)


def test_fuzz_network_sources(run_agent) -> None:
    ports = {"avro": free_port(), "http": free_port(), "syslog": free_port()}
    agent = run_agent(CONF.format(**ports))
    for p in ports.values():
        agent.wait_for_port(p)

    @SETTINGS
    @given(frame=_frames)
    def avro(frame: bytes) -> None:
        _send(ports["avro"], frame)

    @SETTINGS
    @given(body=st.one_of(st.binary(max_size=200), st.text(max_size=100).map(str.encode),
                          st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                                       lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c,
                                                                                           max_size=4),
                                       max_leaves=10).map(lambda v: repr(v).encode())))
    def http(body: bytes) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{ports['http']}/", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                code = r.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        assert code in (200, 400, 500)

    @SETTINGS
    @given(data=st.binary(max_size=3000))
    def syslog(data: bytes) -> None:
        _send(ports["syslog"], data)

    avro()
    http()
    syslog()
    # the agent still serves good clients on every source
    client = RpcClient("127.0.0.1", ports["avro"])
    client.append_batch([Event(b"good", {"k": "v"})])
    client.close()
    req = urllib.request.Request(f"http://127.0.0.1:{ports['http']}/", data=b'[{"body": "good"}]', method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    assert agent.proc is not None and agent.proc.poll() is None
    assert "Traceback" not in agent.log()
    assert agent.terminate() == 0
