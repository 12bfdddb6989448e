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

from tests.conftest import AgentProcess, assert_exactly_once, free_port, rolled_lines, wait_for
from tests.e2e.test_syslog_sources import SINK

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


class Syslog:
    """One agent for the module: syslogtcp and multiport_syslogtcp with the default eventSize (``tcp``, ``multi``)
    and with eventSize 30 (``small``: source name → port); each source stamps src=<its name>."""

    def __init__(self, tmp):  # noqa: ANN001
        self.out = tmp / "out"
        self.tcp, self.multi = free_port(), free_port()
        self.small = {"s_tcp": free_port(), "s_multi": free_port()}
        sources = [("tcp", "syslogtcp", self.tcp, ""), ("multi", "multiport_syslogtcp", self.multi, ""),
                   ("s_tcp", "syslogtcp", self.small["s_tcp"], "30"),
                   ("s_multi", "multiport_syslogtcp", self.small["s_multi"], "30")]
        text = f"a1.sources = {' '.join(name for name, *_ in sources)}\n"
        for name, kind, port, size in sources:
            text += (f"a1.sources.{name}.type = {kind}\na1.sources.{name}.host = 127.0.0.1\n"
                     f"a1.sources.{name}.{'port' if kind == 'syslogtcp' else 'ports'} = {port}\n"
                     f"a1.sources.{name}.channels = c1\na1.sources.{name}.interceptors = src\n"
                     f"a1.sources.{name}.interceptors.src.type = static\n"
                     f"a1.sources.{name}.interceptors.src.key = src\n"
                     f"a1.sources.{name}.interceptors.src.value = {name}\n")
            if size:
                text += f"a1.sources.{name}.eventSize = {size}\n"
        self.agent = AgentProcess(text + SINK.format(out=self.out), tmp).start()
        for port in (self.tcp, self.multi, *self.small.values()):
            self.agent.wait_for_port(port)

    def lines(self, src: str) -> list[bytes]:
        return [line for line in rolled_lines(self.out) if f"src={src}}}".encode() in line]


@pytest.fixture(scope="module")
def syslog(tmp_path_factory: pytest.TempPathFactory):
    s = Syslog(tmp_path_factory.mktemp("syslog"))
    yield s
    assert s.agent.terminate() == 0


def test_logger_octet_count_on_both_tcp_sources(syslog):
    logger = _logger_with_octet_count()
    sent = []
    for port in (syslog.tcp, syslog.multi):
        lines = [f"msg-{port}-{i}" for i in range(200)]
        sent += lines
        subprocess.run([logger, "--server", "127.0.0.1", "--port", str(port), "--tcp", "--octet-count",
                        "-t", "myapp"], input="\n".join(lines) + "\n", text=True, check=True, timeout=30)
    want = [s.encode() for s in sent]

    def got() -> list[bytes]:
        lines = syslog.lines("tcp") + syslog.lines("multi")
        return [m.group(1) for line in lines if (m := re.search(rb" (msg-\d+-\d+)$", line))]

    wait_for(lambda: set(want) <= set(got()), timeout=30, what="logger's messages")
    assert_exactly_once(want, got(), [syslog.agent])
    # parsed, not one long Invalid line: logger's host name is the host header, the tag starts the body
    for src in ("tcp", "multi"):
        first = syslog.lines(src)[0].decode()
        assert f"host={socket.gethostname()}" in first and "} myapp - - " in first, first
        assert "flume.syslog.status" not in first, first


@pytest.mark.parametrize("source", ["s_tcp", "s_multi"])
def test_a_bad_length_closes_only_its_connection(syslog, source):
    port = syslog.small[source]
    good = frame(b"<13>Feb  5 17:32:18 h2 a") + frame(b"<13>Feb  5 17:32:18 h2 this message is cut")
    with socket.create_connection(("127.0.0.1", port)) as lines, \
            socket.create_connection(("127.0.0.1", port)) as counted:
        lines.sendall(b"<13>Feb  5 17:32:18 h1 one\n")
        counted.sendall(good + b"12x <13>Feb  5 17:32:18 h2 garbage")
        counted.settimeout(20)
        assert counted.recv(1) == b"", "the agent closes the connection with the bad length"
        lines.sendall(b"<13>Feb  5 17:32:18 h1 two\n")
    wait_for(lambda: len(syslog.lines(source)) >= 5, timeout=30, what="5 events")
    got = syslog.lines(source)
    events = sorted((line.split(b"} ", 1)[1], b"status=Incomplete" in line, b"status=Invalid" in line)
                    for line in got)
    # eventSize 30 cuts the long message: its first 30 bytes parsed and flagged Incomplete, the rest Invalid
    assert events == [(b"a", False, False), (b"one", False, False), (b"ssage is cut", False, True),
                      (b"this me", True, False), (b"two", False, False)], got
    syslog.agent.wait_for_log(f"Source {source}: syslog client 127.0.0.1:")
    syslog.agent.wait_for_log(f"bad octet-counting length b'12x' at byte {len(good)} (expected 1-8 digits")


def frame(message: bytes) -> bytes:
    return b"%d %s" % (len(message), message)
