"""RFC 6587 octet counting on the real ``agent``'s syslog TCP sources, sent by util-linux ``logger --octet-count``:
every message arrives once, parsed, on syslogtcp and multiport_syslogtcp; a connection with a bad length loses
nothing sent before it and is reported, while a newline-framed connection beside it goes on as in Flume."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess

import pytest

from tests.conftest import assert_exactly_once, free_port
from tests.e2e.test_syslog_sources import SINK, read_lines

pytestmark = pytest.mark.e2e


def _logger_with_octet_count() -> str:
    """util-linux logger; without it the test skips, or fails under PYFLUME_REQUIRE_PEERS=1 (CI)."""
    path = shutil.which("logger")
    reason = "util-linux logger is not installed (apt-get install bsdutils)" if path is None else None
    if path is not None and "--octet-count" not in subprocess.run([path, "--help"], capture_output=True,
                                                                   text=True).stdout:
        reason = f"{path} has no --octet-count (util-linux >= 2.26 has)"
    if reason is not None:
        if os.environ.get("PYFLUME_REQUIRE_PEERS") == "1":
            pytest.fail(f"PYFLUME_REQUIRE_PEERS=1 but {reason}")
        pytest.skip(reason)
    return path  # type: ignore[return-value]


def test_logger_octet_count_on_both_tcp_sources(run_agent, tmp_path):
    logger = _logger_with_octet_count()
    tcp, multi = free_port(), free_port()
    out = tmp_path / "out"
    agent = run_agent(f"""\
a1.sources = r1 r2
a1.sources.r1.type = syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {tcp}
a1.sources.r1.channels = c1
a1.sources.r2.type = multiport_syslogtcp
a1.sources.r2.host = 127.0.0.1
a1.sources.r2.ports = {multi}
a1.sources.r2.portHeader = port
a1.sources.r2.channels = c1
""" + SINK.format(out=out))
    agent.wait_for_port(tcp)
    agent.wait_for_port(multi)
    sent = []
    for port in (tcp, multi):
        lines = [f"msg-{port}-{i}" for i in range(200)]
        sent += lines
        subprocess.run([logger, "--server", "127.0.0.1", "--port", str(port), "--tcp", "--octet-count",
                        "-t", "myapp"], input="\n".join(lines) + "\n", text=True, check=True, timeout=30)
    lines = read_lines(out, len(sent))
    got = [m.group(1) for line in lines if (m := re.search(rb" (msg-\d+-\d+)$", line))]
    assert_exactly_once([s.encode() for s in sent], got, [agent])
    # parsed, not one long Invalid line: logger's host name is the host header, the tag starts the body
    first = lines[0].decode()
    assert f"host={socket.gethostname()}" in first and "} myapp - - " in first and "flume.syslog.status" not in first
    assert agent.terminate() == 0


@pytest.mark.parametrize("source", ["syslogtcp", "multiport_syslogtcp"])
def test_a_bad_length_closes_only_its_connection(run_agent, tmp_path, source):
    port = free_port()
    out = tmp_path / "out"
    ports = f"port = {port}" if source == "syslogtcp" else f"ports = {port}"
    agent = run_agent(f"""\
a1.sources = r1
a1.sources.r1.type = {source}
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.{ports}
a1.sources.r1.eventSize = 30
a1.sources.r1.channels = c1
""" + SINK.format(out=out))
    agent.wait_for_port(port)
    good = frame(b"<13>Feb  5 17:32:18 h2 a") + frame(b"<13>Feb  5 17:32:18 h2 this message is cut")
    with socket.create_connection(("127.0.0.1", port)) as lines, \
            socket.create_connection(("127.0.0.1", port)) as counted:
        lines.sendall(b"<13>Feb  5 17:32:18 h1 one\n")
        counted.sendall(good + b"12x <13>Feb  5 17:32:18 h2 garbage")
        counted.settimeout(20)
        assert counted.recv(1) == b"", "the agent closes the connection with the bad length"
        lines.sendall(b"<13>Feb  5 17:32:18 h1 two\n")
    got = read_lines(out, 5)
    events = sorted((line.split(b"} ", 1)[1], b"status=Incomplete" in line, b"status=Invalid" in line)
                    for line in got)
    # eventSize 30 cuts the long message: its first 30 bytes parsed and flagged Incomplete, the rest Invalid
    assert events == [(b"a", False, False), (b"one", False, False),
                      (b"ssage is cut", False, True), (b"this me", True, False), (b"two", False, False)], got
    agent.wait_for_log(f"bad octet-counting length b'12x' at byte {len(good)} (expected 1-8 digits")
    assert "syslog client 127.0.0.1:" in agent.log()
    assert agent.terminate() == 0


def frame(message: bytes) -> bytes:
    return b"%d %s" % (len(message), message)
