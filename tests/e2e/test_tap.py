"""``agent tap`` as a user runs it against a running agent: events after the interceptors, at a channel and at a
sink; the rate limit and the header filter; several taps at once; a tap that follows a hot reload; loopback-only
access; and no way to put an event in through the tap endpoint."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, AgentProcess, agent_command, free_port, send_lines, wait_for

pytestmark = pytest.mark.e2e

NETCAT = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.max-line-length = 4096
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = i1
a1.sources.r1.interceptors.i1.type = static
a1.sources.r1.interceptors.i1.key = dc
a1.sources.r1.interceptors.i1.value = {dc}
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"""

HTTP = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
"""


class Tap:
    """An ``agent tap`` process; its stdout lines are collected as they come."""

    def __init__(self, mport: int, *args: str, agent: AgentProcess | None = None):
        self.agent = agent  # whose state and log a failure shows
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen(agent_command() + ["tap", "--port", str(mport), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.err = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))

    def _read_err(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.err += line

    def wait_attached(self) -> None:
        wait_for(lambda: "watching" in self.err or self.proc.poll() is not None, 20, "agent tap to attach")
        if "watching" not in self.err:
            state = ""
            if self.agent is not None:
                code = self.agent.proc.poll() if self.agent.proc else None
                state = f"\nthe agent is {'running' if code is None else f'gone (exit {code})'}; its log:\n"
                state += self.agent.log()[-3000:]
            raise AssertionError(f"agent tap did not attach: {self.err}{state}")

    def finish(self, timeout: float = 20) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(5)
        self._err_reader.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
        self.finish()


def _start(run_agent, conf: str, *sysprops: str):  # noqa: ANN001, ANN202
    port, mport = free_port(), free_port()
    agent = run_agent(conf.format(port=port, dc="eu"),
                      args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}", *sysprops])
    agent.wait_for_port(port)
    # logged once the agent's own server listens there: a poll of the port could also meet another process
    agent.wait_for_log(f"Metrics served on http://0.0.0.0:{mport}/metrics")
    return agent, port, mport


def test_tap_shows_events_after_interceptors_at_channel_and_sink_with_several_taps(run_agent):
    agent, port, mport = _start(run_agent, NETCAT)
    source_tap = Tap(mport, "r1", "--count", "3", agent=agent)
    both = Tap(mport, "channel:c1", "sink:*", "--body", "hex", "--count", "6", agent=agent)
    source_tap.wait_attached()
    both.wait_attached()
    send_lines(port, [b"hello", b"w\x00rld", b"x" * 300])
    assert source_tap.finish() == 0, source_tap.err
    assert both.finish() == 0, both.err
    # the static interceptor ran before the tap point; control bytes are escaped; long bodies are cut at 200 bytes
    bodies = [line.split(" ", 3)[1:] for line in source_tap.lines]
    assert bodies[:2] == [["source:r1", "{dc=eu}", "hello"], ["source:r1", "{dc=eu}", "w\\x00rld"]]
    assert bodies[2][2] == "x" * 200 + " … (300 bytes)"
    assert [line.split(" ")[1] for line in both.lines] == ["channel:c1"] * 3 + ["sink:k1"] * 3, both.lines
    assert both.lines[0].endswith(" {dc=eu} 68 65 6c 6c 6f")
    assert "agent tap: 3 events shown" in source_tap.err
    unknown = Tap(mport, "sink:nope", agent=agent)
    assert unknown.finish() == 1
    assert "tap point 'sink:nope' matches nothing; this agent has source:r1, channel:c1, sink:k1" in unknown.err
    assert agent.terminate() == 0


def test_rate_limit_and_header_filter(run_agent):
    agent, port, mport = _start(run_agent, HTTP)
    limited = Tap(mport, "source:r1", "--rate", "5", "--duration", "3", agent=agent)
    filtered = Tap(mport, "sink:k1", "--header", "tenant=b*", "--header", "zone", "--json", "--count", "2", agent=agent)
    limited.wait_attached()
    filtered.wait_attached()
    events = [{"headers": {"tenant": ["alpha", "beta", "bravo"][i % 3], "n": str(i),
                           **({"zone": "z"} if i % 2 else {})}, "body": f"event {i}"} for i in range(600)]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", json.dumps(events).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    assert filtered.finish() == 0, filtered.err
    got = [json.loads(line) for line in filtered.lines]
    assert len(got) == 2
    for e in got:  # only beta/bravo with a zone header, body shown as text
        assert e["headers"]["tenant"] in ("beta", "bravo") and e["headers"]["zone"] == "z", e
        assert e["body"] == f"event {e['headers']['n']}" and e["point"] == "sink:k1"
    assert limited.finish() == 0, limited.err
    # 600 events in one batch: a burst of 5, then at most 5 a second for the rest of the 3 s
    assert 5 <= len(limited.lines) <= 5 + 5 * 4, limited.lines
    assert "600 passed source:r1" in limited.err, limited.err
    ns = [int(re.search(r"\bn=(\d+)", line).group(1)) for line in limited.lines[:5]]
    assert ns == [0, 120, 240, 360, 480], limited.lines  # the samples are spread over the batch
    assert agent.terminate() == 0


def test_tap_follows_a_hot_reload(run_agent, tmp_path: Path):
    agent, port, mport = _start(run_agent, NETCAT)
    tap = Tap(mport, "source:r1", "--count", "2", agent=agent)
    tap.wait_attached()
    send_lines(port, [b"before"])
    wait_for(lambda: len(tap.lines) == 1, 20, "the first event at the tap")
    agent.conf.write_text(NETCAT.format(port=port, dc="us"))  # the interceptor changes: the source restarts
    agent.wait_for_log("Configuration reloaded")
    time.sleep(1.5)  # the tap moves to the new source within a second
    agent.wait_for_port(port)
    send_lines(port, [b"after"])
    assert tap.finish() == 0, tap.err + agent.log()
    assert [line.split(" ", 2)[2] for line in tap.lines] == ["{dc=eu} before", "{dc=us} after"]


def test_tap_is_for_loopback_unless_allowed_and_never_takes_events(run_agent):
    agent, port, mport = _start(run_agent, NETCAT, "-Dpyflume.tap.allow=10.0.0.0/8")
    refused = Tap(mport, "r1", agent=agent)
    assert refused.finish() == 1
    assert "agent tap is not open to 127.0.0.1: taps are served to loopback clients only, unless the agent runs " \
           "with -Dpyflume.tap.allow=CIDR[,CIDR...]" in refused.err
    for method in ("POST", "PUT"):
        req = urllib.request.Request(f"http://127.0.0.1:{mport}/tap?point=r1", b'[{"body": "injected"}]',
                                     method=method)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code == 501
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as resp:
        assert json.loads(resp.read())["CHANNEL.c1"]["EventPutAttemptCount"] == "0"
    assert agent.terminate() == 0


def test_tap_without_a_monitoring_port_says_how_to_get_one():
    tap = Tap(free_port(), "r1")
    assert tap.finish() == 1
    assert "is it running with -Dflume.monitoring.type=http -Dflume.monitoring.port=N" in tap.err
