"""``agent test`` in process: what it says when a test names no source or a wrong one, when an interceptor
raises, and where the problems of a test file are (tomllib keeps no line numbers; the file's text is searched)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config_test import BadTestFile, load_cases, main

CONF = """\
a1.sources = r1 r2
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = ts
a1.sources.r1.interceptors.ts.type = timestamp
a1.sources.r2.type = seq
a1.sources.r2.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"""


def run(tmp_path: Path, tests: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "a.conf").write_text(CONF)
    (tmp_path / "t.toml").write_text('conf = "a.conf"\nname = "a1"\n' + tests)
    code = main([str(tmp_path / "t.toml")])
    return code, capsys.readouterr().out


def test_the_source_must_be_named_when_there_are_several(tmp_path, capsys):
    code, out = run(tmp_path, """\
[[test]]
name = "which source?"
input = { body = "x" }

[[test]]
name = "a source of another agent"
source = "r9"
input = { body = "x" }

[[test]]
name = "timestamp"
source = "r1"
input = { body = "x" }
expect = { headers_match = { timestamp = '\\d{13}' }, channels = ["c1"], no_other_headers = true }
""", capsys)
    assert code == 1
    assert f"test which source? ... ERROR\n  {tmp_path}/t.toml:3: 'source' is required: this agent has several " \
           "(sources: r1, r2)" in out
    assert f"  {tmp_path}/t.toml:7: source 'r9' is not a source of this agent (sources: r1, r2)" in out
    assert "test timestamp ... passed" in out
    assert out.endswith("3 tests: 1 passed, 2 failed\n")


def test_an_interceptor_that_raises_fails_its_test(tmp_path, capsys, monkeypatch):
    from interceptors.headers import TimestampInterceptor

    def broken(self, events):  # noqa: ANN001, ANN202
        raise RuntimeError("boom")

    monkeypatch.setattr(TimestampInterceptor, "intercept", broken)
    code, out = run(tmp_path, '[[test]]\nname = "t"\nsource = "r1"\ninput = { body = "x" }\n', capsys)
    assert code == 1
    assert f"test t ... ERROR\n  {tmp_path}/t.toml:3: source r1: RuntimeError: boom" in out


@pytest.mark.parametrize("name, text, problem", [
    ("not toml", "[[test]\n", "t.toml:1: not valid TOML"),
    ("no tests", 'conf = "x"\n', "t.toml: no tests: add [[test]] tables"),
    ("unknown top key", 'confs = "x"\n[[test]]\nname = "a"\ninput = {}\n', "t.toml:1: unknown key 'confs'; "
                                                                           "did you mean 'conf'?"),
    ("misspelt tables", '[[tests]]\nname = "a"\n', "t.toml:1: unknown key 'tests'; did you mean 'test'?"),
    ("no input", '[[test]]\nname = "a"\n', "t.toml:1: test 'a': 'input' is required"),
    ("bad regex", '[[test]]\nname = "a"\ninput = {}\n[test.expect]\nheaders_match = { h = "(" }\n',
     "t.toml:4: test 'a': expect: headers_match.h: '(' is not a regular expression"),
    ("contradiction", '[[test]]\nname = "a"\ninput = {}\nexpect = { dropped = true, channels = ["c1"] }\n',
     "t.toml:4: test 'a': expect: dropped = true and channels = ['c1'] contradict each other"),
    ("channels not a list", '[[test]]\nname = "a"\ninput = {}\nexpect = { channels = "c1" }\n',
     "t.toml:4: test 'a': expect: channels = \"c1\": expected a list of names"),
])
def test_test_file_problems_name_their_line(tmp_path, name, text, problem):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(BadTestFile) as e:
        load_cases(path)
    assert any(p.startswith(f"{tmp_path}/{problem}") for p in e.value.problems), (name, e.value.problems)
