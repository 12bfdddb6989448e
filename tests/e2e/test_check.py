"""``agent --check``: every problem at once as FILE:LINE: component: property: message, exit 0 or 1."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, agent_command

pytestmark = pytest.mark.e2e


def check(tmp_path: Path, text: str, *args: str, name: str = "a1") -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "a1.conf"
    conf.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(agent_command() + ["--conf-file", str(conf), "--name", name, "--check", *args],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=60)


GOOD = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 44444
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
"""


def test_good_config_exits_0_and_starts_nothing(tmp_path):
    r = check(tmp_path, GOOD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "would start 1 sources, 1 channels, 1 sinks" in r.stderr
    assert r.stdout == ""


BAD = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 4444x
a1.sources.r1.channels = c1 c9
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100 # one hundred
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.rollIntervl = 10
a1.sinks.k2.type = org.example.flume.MySink
a1.sinks.k2.channel = c1
"""


def test_bad_config_reports_every_problem_with_file_and_line(tmp_path):
    r = check(tmp_path, BAD)
    assert r.returncode == 1
    conf = str(tmp_path / "a1.conf")
    lines = r.stdout.splitlines()
    expected = [
        f"{conf}:6: a1.sources.r1 (netcat): port: '4444x' is not an integer",
        f"{conf}:7: a1.sources.r1 (netcat): channels: channel 'c9' is not defined; a1.channels lists c1",
        f"{conf}:9: a1.channels.c1 (memory): capacity: '100 # one hundred' is not an integer (a '#' after a value "
        f"is part of the value in Java properties; put comments on their own line)",
        f"{conf}:11: a1.sinks.k1 (file_roll): sink.directory: required property is missing",
        f"{conf}:13: a1.sinks.k1 (file_roll): warning: unknown property 'sink.rollIntervl'; did you mean "
        f"'sink.rollInterval'?",
        f"{conf}:14: a1.sinks.k2 (org.example.flume.MySink): type: 'org.example.flume.MySink' looks like a Java "
        f"class; Java plugins cannot run in pyflume.",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), f"missing {want!r} in:\n{r.stdout}"
    assert "would NOT start" in r.stderr


def test_unknown_agent_name_lists_defined_agents(tmp_path):
    r = check(tmp_path, GOOD + GOOD.replace("a1.", "a2."), name="agent7")
    assert r.returncode == 1
    assert "agent 'agent7' is not defined in this file; agents defined: a1, a2" in r.stdout


def test_strict_makes_warnings_fatal(tmp_path):
    text = GOOD + "a1.sinks.k1.maxBytesToLogg = 3\n"
    assert check(tmp_path, text).returncode == 0
    r = check(tmp_path, text, "--strict")
    assert r.returncode == 1
    assert "did you mean 'maxBytesToLog'?" in r.stdout


def test_every_example_in_conf_checks_clean(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for conf in sorted((ROOT / "conf").glob("*.conf")):
        # the agent is the one whose sources the file lists (a1 in most examples)
        name = next(line.split(".", 1)[0] for line in conf.read_text().splitlines()
                    if ".sources =" in line and not line.startswith("#"))
        r = subprocess.run(agent_command() + ["--conf-file", str(conf), "--name", name, "--check"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, f"{conf}:\n{r.stdout}{r.stderr}"
