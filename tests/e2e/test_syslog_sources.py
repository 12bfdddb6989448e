"""The syslog sources with the real ``agent``: syslogtcp, syslogudp and multiport_syslogtcp write Flume's headers
and bodies (checked byte for byte through file_roll's header_and_text serializer), keep unparseable lines with
``flume.syslog.status``, and push back on the sender instead of dropping when the channel is full."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from peers.certs import trusting_client
from tests.conftest import ROOT, agent_command, free_port, self_signed

pytestmark = pytest.mark.e2e

SINK = """\
a1.channels = c1
a1.sinks = k1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
# an idle sink waits at most 1 s for events (the default 3 s only makes the agent slower to stop)
a1.channels.c1.keep-alive = 1
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
a1.sinks.k1.sink.serializer = header_and_text
"""


@pytest.fixture(autouse=True)
def utc_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")  # Flume reads zone-less syslog times in the local zone; make it UTC


def read_lines(out: Path, n: int, timeout: float = 30) -> list[bytes]:
    deadline = time.monotonic() + timeout
    lines: list[bytes] = []
    while time.monotonic() < deadline:
        data = b"".join(p.read_bytes() for p in sorted(out.iterdir())) if out.exists() else b""
        lines = data.split(b"\n")[:-1]
        if len(lines) >= n:
            break
        time.sleep(0.05)
    return lines


def send_tcp(port: int, *pieces: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        for p in pieces:
            s.sendall(p)
            time.sleep(0.02)  # separate reads on the agent's side: messages cut across reads


def test_syslogtcp_writes_flumes_headers_and_keeps_bad_lines(run_agent, tmp_path):
    port = free_port()
    out = tmp_path / "out"
    agent = run_agent(f"""\
a1.sources = r1
a1.sources.r1.type = syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.eventSize = 100
a1.sources.r1.clientIPHeader = clientIP
a1.sources.r1.clientHostnameHeader = clientHost
a1.sources.r1.channels = c1
""" + SINK.format(out=out))
    agent.wait_for_port(port)
    send_tcp(port,
             b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed\n<13>Feb  5 1",
             b"7:32:18 10.0.0.99 Use the BFG!\n\nnot syslog at all\n<13>1 2012-04-13T11:11:11Z h1 " + b"x" * 81
             + b"\n<10>1 2012-04-13T11:11:11.5+08:00 - ",
             b"no host, fraction\n<13>the last line has no newline")
    ip = "clientIP=127.0.0.1, clientHost=" + socket.gethostbyaddr("127.0.0.1")[0]
    lines = read_lines(out, 7)
    assert [line.decode() for line in lines] == [
        # RFC 5424 with milliseconds: Flume ignores the zone and reads the local time (UTC here)
        f"{{Facility=4, Severity=2, priority=34, version=1, timestamp=1065910455003, host=mymachine.example.com, "
        f"{ip}}} su - ID47 - 'su root' failed",
        # RFC 3164: this year
        f"{{Facility=1, Severity=5, priority=13, timestamp={_rfc3164_this_year('Feb 5 17:32:18')}, host=10.0.0.99, "
        f"{ip}}} Use the BFG!",
        f"{{Facility=0, Severity=0, flume.syslog.status=Invalid, {ip}}} not syslog at all",
        # eventSize 100 cuts the line; the rest is the next event, which does not start with '<'
        f"{{Facility=1, Severity=5, priority=13, version=1, timestamp=1334315471000, host=h1, "
        f"flume.syslog.status=Incomplete, {ip}}} " + "x" * 70,
        f"{{Facility=0, Severity=0, flume.syslog.status=Invalid, {ip}}} " + "x" * 11,
        f"{{Facility=1, Severity=2, priority=10, version=1, timestamp=1334315471005, {ip}}} no host, fraction",
        f"{{Facility=1, Severity=5, {ip}}} <13>the last line has no newline",
    ]
    assert agent.terminate() == 0


def _rfc3164_this_year(stamp: str) -> int:
    import calendar

    t = time.strptime(f"{time.gmtime().tm_year} {stamp}", "%Y %b %d %H:%M:%S")
    ms = calendar.timegm(t) * 1000
    now = time.time() * 1000
    if ms > now + 31 * 86400_000:  # Flume's window: at most a month ahead, else last year
        ms = calendar.timegm(time.strptime(f"{time.gmtime().tm_year - 1} {stamp}", "%Y %b %d %H:%M:%S")) * 1000
    return ms


def test_syslogudp_one_event_per_datagram(run_agent, tmp_path):
    port = free_port()
    out = tmp_path / "out"
    agent = run_agent(f"""\
a1.sources = r1
a1.sources.r1.type = syslogudp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.keepFields = timestamp hostname
a1.sources.r1.clientIPHeader = ip
a1.sources.r1.channels = c1
""" + SINK.format(out=out))
    agent.wait_for_log("listening for syslog on udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for datagram in (b"<13>1 2012-04-13T11:11:11Z web1 first\nthe rest of the datagram is not read",
                         b"", b"\n", b"<165>1 - - no time, no host", b"bad datagram"):
            u.sendto(datagram, ("127.0.0.1", port))
            time.sleep(0.05)  # keep the order
    lines = read_lines(out, 3)
    assert lines == [
        b"{Facility=1, Severity=5, priority=13, version=1, timestamp=1334315471000, host=web1, ip=127.0.0.1} "
        b"2012-04-13T11:11:11Z web1 first",
        b"{Facility=20, Severity=5, priority=165, version=1, ip=127.0.0.1} null null no time, no host",
        b"{Facility=0, Severity=0, flume.syslog.status=Invalid, ip=127.0.0.1} bad datagram",
    ]
    assert agent.terminate() == 0


def test_multiport_ports_charsets_and_volume(run_agent, tmp_path):
    p1, p2 = free_port(), free_port()
    out = tmp_path / "out"
    agent = run_agent(f"""\
a1.sources = r1
a1.sources.r1.type = multiport_syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.ports = {p1} {p2}
a1.sources.r1.portHeader = port
a1.sources.r1.eventSize = 100
a1.sources.r1.charset.port.{p2} = ISO-8859-1
a1.sources.r1.batchSize = 100
a1.sources.r1.readBufferSize = 4096
a1.sources.r1.channels = c1
""" + SINK.format(out=out))
    agent.wait_for_port(p1)
    agent.wait_for_port(p2)
    send_tcp(p1, b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time\n"
                 b"<13>bad \xff utf-8\n<13>- h1 " + b"y" * 100 + b"\n")
    lines = read_lines(out, 4)
    assert lines[0] == (b"{Facility=20, Severity=5, Priority=165, Version=1, timestamp=1061727255000, "
                        b"host=192.0.2.1, port=%d} myproc 8710 - - %%%% It's time" % p1)
    assert lines[1] == b"{flume.syslog.status=Invalid, port=%d} <13>bad \xff utf-8" % p1  # raw bytes
    assert lines[2].startswith(b"{Facility=1, Severity=5, Priority=13, timestamp=")
    assert lines[2].endswith(b", host=h1, flume.syslog.status=Incomplete, port=%d} " % p1 + b"y" * 91)
    assert lines[3] == b"{flume.syslog.status=Invalid, port=%d} " % p1 + b"y" * 9
    # ISO-8859-1 on the second port: the body keeps that charset, as Flume's does
    send_tcp(p2, b"<13>Feb  5 17:32:18 host caf\xe9\n")
    lines = read_lines(out, 5)
    assert lines[4].endswith(b", host=host, port=%d} caf\xe9" % p2)
    # 20,000 messages on one connection: every one arrives once, in order
    n = 20_000
    payload = b"".join(b"<13>1 2012-04-13T11:11:11Z h%d msg %06d\n" % (i % 7, i) for i in range(n))
    with socket.create_connection(("127.0.0.1", p1)) as s:
        s.sendall(payload)
    lines = read_lines(out, 5 + n)
    assert [line.rsplit(b"} ", 1)[1] for line in lines[5:]] == [b"msg %06d" % i for i in range(n)]
    assert agent.terminate() == 0


def test_a_full_channel_slows_the_sender_and_loses_nothing(run_agent, tmp_path):
    port = free_port()
    gate = tmp_path / "gate"
    gate.touch()
    agent = run_agent(f"""\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 20
a1.channels.c1.transactionCapacity = 20
a1.channels.c1.keep-alive = 0
# holds its batch while the gate file exists: the channel really fills up
a1.sinks.k1.type = gate_sink.GateSink
a1.sinks.k1.channel = c1
a1.sinks.k1.gate = {gate}
a1.sinks.k1.path = {tmp_path}/got
a1.sinks.k1.batchSize = 20
""")
    agent.wait_for_port(port)
    n = 400
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"".join(b"<13>1 - h msg %04d\n" % i for i in range(n)))
        time.sleep(0.5)  # the source is now retrying a batch the full channel refuses
        gate.unlink()
    got = tmp_path / "got"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not got.exists() or got.read_bytes().count(b"\n") < n):
        time.sleep(0.05)
    assert got.read_bytes().split(b"\n")[:-1] == [b"msg %04d" % i for i in range(n)]
    assert "channel refused a batch" in agent.log()
    assert agent.terminate() == 0


def test_unsupported_settings_are_refused(tmp_path):
    conf = tmp_path / "check.conf"
    conf.write_text(f"""\
a1.sources = r1 r2
a1.sources.r1.type = syslogtcp
a1.sources.r1.port = {free_port()}
a1.sources.r1.ssl = true
a1.sources.r1.keepFields = host
a1.sources.r1.format.regex = (.*)
a1.sources.r1.channels = c1
a1.sources.r1.keystore = /etc/flume/keystore.jks
a1.sources.r2.type = multiport_syslogtcp
a1.sources.r2.ports = 5140 51x41
a1.sources.r2.charset.default = no-such-charset
a1.sources.r2.channels = c1
""" + SINK.format(out=tmp_path / "out"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(agent_command() + ["--conf-file", str(conf), "--name", "a1", "--check"],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=60)
    text = r.stdout + r.stderr
    assert r.returncode == 1, text
    # TLS is served from a JKS key store that this machine does not have (yet): a warning
    assert ("check.conf:8: a1.sources.r1 (syslogtcp): keystore: warning: /etc/flume/keystore.jks is not a file here"
            in text)
    assert ("check.conf:5: a1.sources.r1 (syslogtcp): keepFields: warning: keepFields = 'host': 'host' not "
            "recognised; expected none, all, or any of priority version timestamp hostname") in text
    assert "check.conf:6: a1.sources.r1 (syslogtcp): format.regex: format.* (an extra syslog format) is not " \
           "supported yet" in text
    assert "check.conf:10: a1.sources.r2 (multiport_syslogtcp): ports: '51x41' is not a port number" in text
    assert "check.conf:11: a1.sources.r2 (multiport_syslogtcp): charset.default: unknown character set " \
           "'no-such-charset'" in text


def test_syslog_over_tls_on_both_tcp_sources(run_agent, tmp_path):
    """syslogtcp with a PEM key store (Flume's default keystore-type left as is) and multiport_syslogtcp with a
    PKCS12 one, as Flume 1.11 serves them: the same line framing and headers as plain TCP, inside TLS. A client
    that does not speak TLS is refused without disturbing the next one."""
    _, _, p12 = self_signed(tmp_path)
    p1, p2 = free_port(), free_port()
    out = tmp_path / "out"
    agent = run_agent(f"""\
a1.sources = r1 r2
a1.sources.r1.type = syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {p1}
a1.sources.r1.ssl = true
a1.sources.r1.keystore = {tmp_path / "both.pem"}
a1.sources.r1.channels = c1
a1.sources.r2.type = multiport_syslogtcp
a1.sources.r2.host = 127.0.0.1
a1.sources.r2.ports = {p2}
a1.sources.r2.portHeader = port
a1.sources.r2.ssl = true
a1.sources.r2.keystore = {p12}
a1.sources.r2.keystore-type = PKCS12
a1.sources.r2.keystore-password = secret
a1.sources.r2.include-protocols = TLSv1.3
a1.sources.r2.channels = c1
""" + SINK.format(out=out))
    agent.wait_for_port(p1)
    agent.wait_for_port(p2)
    with socket.create_connection(("127.0.0.1", p1)) as plain:  # no TLS: the handshake fails, the agent goes on
        plain.sendall(b"<13>1 2012-04-13T11:11:11Z h0 plain text\n")
        plain.settimeout(10)
        try:
            while plain.recv(100):  # at most a TLS alert record, then the source closes the connection
                pass
        except ConnectionResetError:
            pass
    client = trusting_client()
    for port, host in ((p1, b"h1"), (p2, b"h2")):
        with client.wrap_socket(socket.create_connection(("127.0.0.1", port))) as s:
            if port == p2:
                assert s.version() == "TLSv1.3"
            for i in range(500):
                s.sendall(b"<13>1 2012-04-13T11:11:11Z %s m%03d\n" % (host, i))
    lines = read_lines(out, 1000)
    want = {b"{Facility=1, Severity=5, priority=13, version=1, timestamp=1334315471000, host=h1} m%03d" % i
            for i in range(500)}
    # multiport_syslogtcp uses Flume's SyslogParser, which names two of its headers differently
    want |= {b"{Facility=1, Severity=5, Priority=13, Version=1, timestamp=1334315471000, host=h2, port=%d} m%03d"
             % (p2, i) for i in range(500)}
    assert len(lines) == 1000 and set(lines) == want
    assert "TLS handshake with 127.0.0.1 failed" in agent.log()
    assert agent.terminate() == 0


def test_tls_key_store_from_flumes_global_settings(run_agent, tmp_path, monkeypatch):
    """Only `ssl = true` in the file: the key store comes from -Djavax.net.ssl.* on the command line (as Flume's
    flume-ng passes them), the protocol list from FLUME_SSL_INCLUDE_PROTOCOLS (commas allowed, as in Flume)."""
    _, _, p12 = self_signed(tmp_path)
    monkeypatch.setenv("FLUME_SSL_INCLUDE_PROTOCOLS", "TLSv1.2,TLSv1.1")
    port = free_port()
    out = tmp_path / "out"
    agent = run_agent(f"""\
a1.sources = r1
a1.sources.r1.type = syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ssl = true
a1.sources.r1.channels = c1
""" + SINK.format(out=out), args=[f"-Djavax.net.ssl.keyStore={p12}", "-Djavax.net.ssl.keyStorePassword=secret",
                                  "-Djavax.net.ssl.keyStoreType=PKCS12"])
    agent.wait_for_port(port)
    client = trusting_client()
    with client.wrap_socket(socket.create_connection(("127.0.0.1", port))) as s:
        assert s.version() == "TLSv1.2"
        s.sendall(b"<13>1 2012-04-13T11:11:11Z h1 over tls\n")
    assert read_lines(out, 1) == [
        b"{Facility=1, Severity=5, priority=13, version=1, timestamp=1334315471000, host=h1} over tls"]
    assert agent.terminate() == 0
