"""``agent --check`` of the Flume user guide's spillable memory channel examples (the three of its section:
memory and overflow, overflow only, memory only) and of a mistake in one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, agent_command

pytestmark = pytest.mark.e2e

FLOW = """\
a1.sources = r1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 44444
a1.sources.r1.channels = c1
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
"""

# The user guide's examples, as it writes them.
GUIDE = {
    "memory and overflow": """\
a1.channels = c1
a1.channels.c1.type = SPILLABLEMEMORY
a1.channels.c1.memoryCapacity = 10000
a1.channels.c1.overflowCapacity = 1000000
a1.channels.c1.byteCapacity = 800000
a1.channels.c1.checkpointDir = /mnt/flume/checkpoint
a1.channels.c1.dataDirs = /mnt/flume/data
""",
    "overflow only": """\
a1.channels = c1
a1.channels.c1.type = SPILLABLEMEMORY
a1.channels.c1.memoryCapacity = 0
a1.channels.c1.overflowCapacity = 1000000
a1.channels.c1.checkpointDir = /mnt/flume/checkpoint
a1.channels.c1.dataDirs = /mnt/flume/data
""",
    "memory only": """\
a1.channels = c1
a1.channels.c1.type = SPILLABLEMEMORY
a1.channels.c1.memoryCapacity = 100000
a1.channels.c1.overflowCapacity = 0
""",
}


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "a1.conf"
    conf.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(agent_command() + ["--conf-file", str(conf), "--name", "a1", "--check", "--strict"],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=60)


@pytest.mark.parametrize("example", list(GUIDE))
def test_user_guide_examples_check_clean(tmp_path: Path, example: str) -> None:
    r = check(tmp_path, FLOW + GUIDE[example])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ""
    assert "would start 1 sources, 1 channels, 1 sinks" in r.stderr
    assert not Path("/mnt/flume").exists() or example == "memory only"  # --check creates no directories


def test_a_mistake_is_reported_with_its_line(tmp_path: Path) -> None:
    text = FLOW + GUIDE["memory and overflow"] + "a1.channels.c1.transactionCapacity = 2000000\n" \
        "a1.channels.c1.overflowTimeout = 3s\n"
    r = check(tmp_path, text)
    assert r.returncode == 1
    conf = tmp_path / "a1.conf"
    assert r.stdout.splitlines() == [
        f"{conf}:16: a1.channels.c1 (SPILLABLEMEMORY): transactionCapacity: transactionCapacity (2000000) must not "
        f"exceed overflowCapacity (1000000)",
        f"{conf}:17: a1.channels.c1 (SPILLABLEMEMORY): overflowTimeout: '3s' is not an integer",
    ]
