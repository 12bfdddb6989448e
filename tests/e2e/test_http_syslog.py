"""HTTP and syslog sources with the real ``agent``: Flume's status codes (200/400/503 and the retry that then
succeeds), JSON and blob handlers, syslog over TCP/UDP/multiport with Flume's headers."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

from conftest import free_port, wait_for

HTTP = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
{extra}
a1.channels.c1.type = memory
a1.channels.c1.capacity = {capacity}
a1.channels.c1.transactionCapacity = {capacity}
a1.channels.c1.keep-alive = 0
a1.sinks.k1.type = gate_sink.GateSink
a1.sinks.k1.channel = c1
a1.sinks.k1.gate = {tmp}/gate
a1.sinks.k1.path = {tmp}/got
a1.sinks.k1.batchSize = {capacity}
"""


def post(port: int, data: bytes, content_type: str = "application/json", path: str = "/") -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def got(tmp: Path) -> list[bytes]:
    p = tmp / "got"
    return p.read_bytes().split(b"\n")[:-1] if p.exists() else []


def test_http_json_statuses_and_retry_after_503(run_agent, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "gate").touch()
    agent = run_agent(HTTP.format(port=port, tmp=tmp_path, extra="", capacity=10))
    agent.wait_for_port(port)
    batch = [{"headers": {"n": str(i)}, "body": f"event {i} é"} for i in range(10)]
    assert post(port, json.dumps(batch[:1]).encode("utf-16"), "application/json; charset=UTF-16") == 200
    assert post(port, json.dumps(batch[1:]).encode(), "application/json; charset=UTF-8") == 200
    assert post(port, b'[{"body": "x"') == 400  # malformed: nothing written
    assert post(port, b'{"body": "not an array"}') == 400
    second = [{"body": f"second {i}"} for i in range(5)]
    assert post(port, json.dumps(second).encode(), path="/any/path") == 503  # the channel is full
    (tmp_path / "gate").unlink()  # the sink drains the channel
    wait_for(lambda: len(got(tmp_path)) == 10)
    assert post(port, json.dumps(second).encode()) == 200  # the client's retry succeeds
    wait_for(lambda: len(got(tmp_path)) == 15)
    # bodies are in the request's charset, as Flume makes them (Java's UTF-16: big-endian with a BOM)
    assert got(tmp_path)[0] == b"\xfe\xff" + "event 0 é".encode("utf-16-be")
    assert got(tmp_path)[1:] == [f"event {i} é".encode() for i in range(1, 10)] + [f"second {i}".encode()
                                                                                   for i in range(5)]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", method="TRACE")
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("TRACE accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403  # as Flume (its TestHTTPSource.testTrace)
    assert agent.terminate() == 0


def test_http_blob_handler(run_agent, tmp_path: Path) -> None:
    port = free_port()
    agent = run_agent(HTTP.format(port=port, tmp=tmp_path, capacity=100,
                                  extra="a1.sources.r1.handler = org.apache.flume.sink.solr.morphline.BlobHandler"))
    agent.wait_for_port(port)
    assert post(port, b"line one\x00binary", "application/octet-stream", "/?host=web1") == 200
    wait_for(lambda: got(tmp_path) == [b"line one\x00binary"])
    assert agent.terminate() == 0


SYSLOG = """\
a1.sources = tcp udp multi
a1.channels = c1
a1.sinks = k1
a1.sources.tcp.type = syslogtcp
a1.sources.tcp.host = 127.0.0.1
a1.sources.tcp.port = {tcp}
a1.sources.tcp.eventSize = 100
a1.sources.tcp.clientIPHeader = ip
a1.sources.tcp.channels = c1
a1.sources.udp.type = syslogudp
a1.sources.udp.host = 127.0.0.1
a1.sources.udp.port = {udp}
a1.sources.udp.keepFields = all
a1.sources.udp.channels = c1
a1.sources.multi.type = multiport_syslogtcp
a1.sources.multi.host = 127.0.0.1
a1.sources.multi.ports = {m1} {m2}
a1.sources.multi.portHeader = port
a1.sources.multi.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = header_and_text
"""


def test_syslog_sources_parse_like_flume(run_agent, tmp_path: Path) -> None:
    tcp, udp, m1, m2 = free_port(), free_port(), free_port(), free_port()
    out = tmp_path / "out"
    out.mkdir()
    agent = run_agent(SYSLOG.format(tcp=tcp, udp=udp, m1=m1, m2=m2, out=out))
    for p in (tcp, m1, m2):
        agent.wait_for_port(p)
    with socket.create_connection(("127.0.0.1", tcp)) as s:
        s.sendall(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed\n"
                  b"not syslog at all\n" + b"<13>" + b"x" * 150 + b"\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!\n", ("127.0.0.1", udp))
    with socket.create_connection(("127.0.0.1", m2)) as s:
        s.sendall(b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time\n")

    def lines() -> list[bytes]:
        data = b"".join(p.read_bytes() for p in out.iterdir())
        return data.split(b"\n")[:-1]

    wait_for(lambda: len(lines()) >= 6)
    text = b"\n".join(lines()).decode()
    assert ("{Facility=4, Severity=2, priority=34, version=1, timestamp=1065910455003, host=mymachine.example.com, "
            "ip=127.0.0.1} su - ID47 - 'su root' failed") in text
    assert "{Facility=0, Severity=0, flume.syslog.status=Invalid, ip=127.0.0.1} not syslog at all" in text
    assert "flume.syslog.status=Incomplete" in text  # 154 bytes > eventSize 100: cut, the rest is the next event
    assert "host=10.0.0.99} <13>Feb  5 17:32:18 10.0.0.99 Use the BFG!" in text  # keepFields = all
    assert (f"{{Facility=20, Severity=5, Priority=165, Version=1, timestamp=1061727255000, host=192.0.2.1, "
            f"port={m2}}} myproc 8710 - - %% It's time") in text
    assert agent.terminate() == 0
