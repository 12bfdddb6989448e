"""``agent test`` as a user runs it: the shipped example tests pass, a failing test prints a diff and exits 1, a
broken test file or configuration exits 2 naming file and line, and nothing is started (a source's port stays
free for whoever holds it)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, agent_command

pytestmark = pytest.mark.e2e

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def agent_test(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(agent_command() + ["test", *map(str, args)], capture_output=True, text=True, env=ENV,
                          timeout=60)


def test_the_shipped_examples_pass():
    r = agent_test(*sorted((ROOT / "conf").glob("*.test.toml")))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 tests: 3 passed, 0 failed" in r.stdout  # routing.test.toml (multiplexing)
    assert "test an ERROR line gets its level, component and time, and goes to the errors channel ... passed" \
        in r.stdout
    assert "4 tests: 4 passed, 0 failed" in r.stdout  # search-replace.test.toml


def test_show_prints_what_came_out_as_an_expect_table():
    r = agent_test("--show", ROOT / "conf" / "routing.test.toml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert """\
test an unmapped datacenter goes to the default channel ... passed
    [test.expect]
    body = "3"
    headers = { datacenter = "north" }
    channels = ["east"]
""" in r.stdout


def test_a_failing_test_prints_a_diff_and_exits_1(tmp_path):
    held = socket.socket()  # the agent's netcat port, held here: `agent test` must not try to listen on it
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    (tmp_path / "a.conf").write_text(f"""\
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1 c2
a1.sources.r1.interceptors = mask
a1.sources.r1.interceptors.mask.type = search_replace
a1.sources.r1.interceptors.mask.searchPattern = \\\\d
a1.sources.r1.interceptors.mask.replaceString = #
a1.sources.r1.selector.type = multiplexing
a1.sources.r1.selector.header = kind
a1.sources.r1.selector.mapping.a = c1
a1.sources.r1.selector.optional.a = c2
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channel = c2
""")
    (tmp_path / "a.test.toml").write_text("""\
conf = "a.conf"
name = "a1"

[[test]]
name = "digits are masked and kind a goes to c1"
input = { body = "pin 1234", headers = { kind = "a" } }
expect = { body = "pin ####", channels = ["c1"], optional_channels = ["c2"] }

[[test]]
name = "wrong on purpose"
input = { body = "pin 1234", headers = { kind = "b" } }

[test.expect]
body = "pin 1234"
headers = { kind = "a" }
channels = ["c1"]

[[test]]
name = "no mapping and no default: routed nowhere"
input = { body = "x", headers = { kind = "zzz" } }
expect = { dropped = true }
""")
    r = agent_test(tmp_path / "a.test.toml")
    held.close()
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout == f"""\
Running {tmp_path}/a.test.toml against {tmp_path}/a.conf (agent a1)
test digits are masked and kind a goes to c1 ... passed
test wrong on purpose ... FAILED
  {tmp_path}/a.test.toml:9: source r1
  - body = "pin 1234"
  + body = "pin ####"
  - headers.kind = "a"
  + headers.kind = "b"
  - channels = ["c1"]
  + channels = []
  log: WARNING pyflume.selector: selector of source r1: 1 events so far matched no mapping and there is no \
selector.default; they were dropped
test no mapping and no default: routed nowhere ... passed
3 tests: 2 passed, 1 failed
"""


def test_a_broken_test_file_names_its_lines(tmp_path):
    (tmp_path / "t.toml").write_text(f"""\
conf = "{ROOT}/conf/search-replace.conf"
name = "a1"

[[test]]
name = "typos"
input = {{ body = "x", headrs = {{ a = "b" }} }}

[test.expect]
chanels = ["c1"]
dropped = "yes"

[[test]]
input = {{ body = "x", headers = {{ n = 1 }} }}
""")
    r = agent_test(tmp_path / "t.toml")
    assert r.returncode == 2
    t = tmp_path / "t.toml"
    assert r.stderr.splitlines() == [
        f"{t}:6: test 'typos': input: unknown key 'headrs'; did you mean 'headers'?",
        f"{t}:8: test 'typos': expect: unknown key 'chanels'; did you mean 'channels'?",
        f"{t}:8: test 'typos': expect: dropped = \"yes\": expected true or false",
        f"{t}:12: test 2: 'name' is required (a string saying what the test checks)",
        f"{t}:13: test 2: input: headers.n = 1: header values are strings (write it in quotes)",
    ]


def test_a_broken_configuration_is_not_tested(tmp_path):
    conf = tmp_path / "x.conf"
    conf.write_text((ROOT / "conf" / "search-replace.conf").read_text().replace(
        "secrets.searchPattern = ", "secrets.searchPattern = (unclosed", 1))
    test = tmp_path / "x.test.toml"
    test.write_text('conf = "x.conf"\nname = "a1"\n[[test]]\nname = "t"\ninput = { body = "x" }\n')
    r = agent_test(test)
    assert r.returncode == 2
    line = next(n for n, text in enumerate(conf.read_text().splitlines(), 1) if "searchPattern = (unclosed" in text)
    assert r.stderr.startswith(f"{conf}:{line}: a1.sources.r1 (netcat): interceptors.secrets.searchPattern: ")
    assert f"{test}: not run: the configuration has errors" in r.stderr
