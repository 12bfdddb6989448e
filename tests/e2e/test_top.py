"""``agent top`` in a pseudo-terminal, read back as the screen a user sees (pyte emulates the terminal): live rates,
a channel filling up in red with the source's failures counting, sorting keys, quitting; against a pyflume agent
and against Apache Flume 1.11's own HTTP metrics."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

from tests.conftest import ROOT, agent_command, free_port  # noqa: E402

pytestmark = pytest.mark.e2e

CONF = """\
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1
a1.sources.r2.type = netcat
a1.sources.r2.bind = 127.0.0.1
a1.sources.r2.port = {port2}
a1.sources.r2.channels = c1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1 c2
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.channels.c2.capacity = 200
a1.channels.c2.transactionCapacity = 20
a1.channels.c2.keep-alive = 0
a1.sinks.k1.type = file_roll
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.channel = c1
"""


class Screen:
    """``agent top`` running in a pseudo-terminal of ``rows`` x ``cols``, its output fed to a terminal emulator."""

    def __init__(self, args: list[str], rows: int = 24, cols: int = 100):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   TERM="xterm-256color")
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        cmd = agent_command() + ["top", *args]
        self.child = pexpect.spawn(cmd[0], cmd[1:], dimensions=(rows, cols), env=env)
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)

    def _pump(self) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout=0.2)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            time.sleep(0.1)
            return
        self.stream.feed(data)

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def row(self, kind: str, name: str) -> list[str] | None:
        for line in self.lines():
            cells = line.split()
            if cells[:2] == [kind, name]:
                return cells
        return None

    def wait(self, cond, timeout: float = 30, what: str = "the screen") -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._pump()
            if cond():
                return
        raise AssertionError(f"timed out waiting for {what}; the screen:\n" + "\n".join(self.lines()))

    def style_of(self, text: str) -> tuple[str, bool]:
        """(foreground colour, bold) of the first cell of ``text`` on the screen."""
        for y, line in enumerate(self.screen.display):
            x = line.find(text)
            if x >= 0:
                char = self.screen.buffer[y][x]
                return char.fg, char.bold
        raise AssertionError(f"{text!r} not on the screen:\n" + "\n".join(self.lines()))

    def press(self, key: str) -> None:
        self.child.send(key)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def _number(cell: str) -> float:
    m = re.fullmatch(r"([\d.]+)([kMG]?)", cell)
    assert m, cell
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]


def _post_forever(port: int, stop: threading.Event, per_post: int = 10, pause: float = 0.1) -> None:
    n = 0
    while not stop.is_set():
        events = [{"headers": {}, "body": f"e{n + i}"} for i in range(per_post)]
        n += per_post
        req = urllib.request.Request(f"http://127.0.0.1:{port}/", json.dumps(events).encode())
        try:
            urllib.request.urlopen(req, timeout=5).close()
        except OSError:  # 503 once channel c2 is full: the source refuses and counts it
            pass
        stop.wait(pause)


def test_top_shows_rates_a_filling_channel_and_sorts(run_agent, tmp_path: Path):
    port, mport = free_port(), free_port()
    agent = run_agent(CONF.format(port=port, port2=free_port(), out=tmp_path / "out"),
                      args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
    (tmp_path / "out").mkdir()
    agent.wait_for_port(mport)
    stop = threading.Event()
    feeder = threading.Thread(target=_post_forever, args=(port, stop), daemon=True)
    feeder.start()
    top = Screen(["--port", str(mport), "--interval", "0.5"])
    try:
        top.wait(lambda: (r := top.row("SINK", "k1")) is not None and _number(r[3]) > 0, what="k1 delivering")
        assert "a1 @ 127.0.0.1:" in top.lines()[0] and "· UP ·" in top.lines()[0]
        # c2 has no sink: it fills to its capacity, shown in red, while the source's refusals count in ERRORS
        top.wait(lambda: (r := top.row("CHANNEL", "c2")) is not None and "200/200" in r, what="c2 full")
        assert top.style_of("100.0%") == ("red", True)
        top.wait(lambda: (r := top.row("SOURCE", "r1")) is not None and int(r[5]) > 0,
                 what="r1's channel write failures")
        # every component, also the netcat source that Flume's JSON /metrics leaves out
        kinds = [line.split()[:2] for line in top.lines() if line.split()[:1] and line.split()[0] in
                 ("SOURCE", "CHANNEL", "SINK")]
        assert kinds == [["SOURCE", "r1"], ["SOURCE", "r2"], ["CHANNEL", "c1"], ["CHANNEL", "c2"], ["SINK", "k1"]]
        top.press("n")  # by name
        top.wait(lambda: [c[1] for c in map(str.split, top.lines()[2:7])] == ["c1", "c2", "k1", "r1", "r2"],
                 10, "sorted by name")
        assert "NAME▲" in top.lines()[1]
        top.press("n")  # again: reversed
        top.wait(lambda: [c[1] for c in map(str.split, top.lines()[2:7])] == ["r2", "r1", "k1", "c2", "c1"],
                 10, "sorted by name, reversed")
        top.press("f")  # by fill, fullest first
        top.wait(lambda: top.lines()[2].split()[:2] == ["CHANNEL", "c2"] and "FILL▼" in top.lines()[1],
                 10, "sorted by fill")
        top.press("q")
        top.child.expect(pexpect.EOF, timeout=10)
        top.child.close()
        assert top.child.exitstatus == 0
    finally:
        stop.set()
        top.close()
    assert agent.terminate() == 0


def test_top_says_when_the_agent_is_unreachable_and_recovers(run_agent, tmp_path: Path):
    mport, port = free_port(), free_port()
    top = Screen(["--port", str(mport), "--interval", "0.5"])
    try:
        top.wait(lambda: "cannot read" in top.lines()[0], 20, "the unreachable agent reported")
        (tmp_path / "out").mkdir()
        agent = run_agent(CONF.format(port=port, port2=free_port(), out=tmp_path / "out"),
                          args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
        top.wait(lambda: top.row("CHANNEL", "c1") is not None and "cannot read" not in top.lines()[0], 30,
                 "the agent's rows")
    finally:
        top.close()
    assert agent.terminate() == 0


FLUME_CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.sinks.k1.type = file_roll
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.channel = c1
"""


@pytest.mark.peer
def test_top_watches_apache_flume(flume_classpath, tmp_path: Path):
    from peers.flume import FlumeAgent

    port, mport = free_port(), free_port()
    (tmp_path / "out").mkdir()
    conf = tmp_path / "flume.conf"
    conf.write_text(FLUME_CONF.format(port=port, out=tmp_path / "out"))
    flume = FlumeAgent(conf, sysprops={"flume.monitoring.type": "http", "flume.monitoring.port": str(mport)})
    stop = threading.Event()
    top = None
    with flume:
        flume.wait_for_log("Component type: SOURCE, name: r1 started")
        feeder = threading.Thread(target=_post_forever, args=(port, stop), daemon=True)
        feeder.start()
        try:
            top = Screen(["--port", str(mport), "--interval", "0.5"])
            top.wait(lambda: all((r := top.row(k, n)) is not None and _number(r[3]) > 0
                                 for k, n in (("SOURCE", "r1"), ("CHANNEL", "c1"), ("SINK", "k1"))),
                     60, "Flume's components with events flowing")
            assert "127.0.0.1:" in top.lines()[0] and "3 components" in top.lines()[0]
            top.press("q")
            top.child.expect(pexpect.EOF, timeout=10)
            # agent tap needs pyflume: Flume's monitoring server has no /tap, and the user is told so
            tap = subprocess.run(agent_command() + ["tap", "--port", str(mport)], capture_output=True, text=True,
                                 timeout=30, env=dict(os.environ, PYTHONPATH=str(ROOT)))
            assert tap.returncode == 1
            assert f"http://127.0.0.1:{mport} serves no /tap: this agent does not offer taps (Apache Flume" in tap.stderr
        finally:
            stop.set()
            if top is not None:
                top.close()
