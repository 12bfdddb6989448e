"""The exec source with the real ``agent``: lines of a real command, restart, stderr, process group killed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import rolled_lines, wait_for

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = exec
a1.sources.r1.channels = c1
{extra}
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
"""


def test_every_line_of_the_command_once(run_agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    agent = run_agent(CONF.format(out=out, extra="a1.sources.r1.command = seq 1 50000\n"
                                                  "a1.sources.r1.batchSize = 1000"))
    wait_for(lambda: len(rolled_lines(out)) == 50000)
    assert rolled_lines(out) == [str(i).encode() for i in range(1, 50001)]
    wait_for(lambda: "command exited with code 0" in agent.log())
    assert agent.terminate() == 0


def test_shell_restart_stderr_and_partial_batch_timeout(run_agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    extra = """a1.sources.r1.shell = /bin/bash -c
a1.sources.r1.command = echo one; echo two | tr a-z A-Z; echo oops >&2; exit 3
a1.sources.r1.restart = true
a1.sources.r1.restartThrottle = 300
a1.sources.r1.logStdErr = true
a1.sources.r1.batchSize = 100
a1.sources.r1.batchTimeout = 200"""
    agent = run_agent(CONF.format(out=out, extra=extra))
    wait_for(lambda: rolled_lines(out).count(b"TWO") >= 3)
    log = agent.log()
    assert "stderr: oops" in log and "command exited with code 3" in log and "restarting" in log
    assert rolled_lines(out)[:2] == [b"one", b"TWO"]
    assert agent.terminate() == 0


def test_child_process_group_is_killed_on_stop(run_agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    pidfile = tmp_path / "child.pid"
    extra = f"""a1.sources.r1.shell = /bin/sh -c
a1.sources.r1.command = sleep 600 & echo $! > {pidfile}; while true; do echo tick; sleep 0.1; done
a1.sources.r1.batchSize = 1
a1.sources.r1.batchTimeout = 100"""
    agent = run_agent(CONF.format(out=out, extra=extra))
    wait_for(lambda: len(rolled_lines(out)) >= 3 and pidfile.exists() and pidfile.read_text().strip())
    child = int(pidfile.read_text())
    assert agent.terminate() == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError("the command's child survived the agent")
