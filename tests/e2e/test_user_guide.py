"""Every configuration example of Flume's user guide passes ``agent --check``.

The examples are in ``user_guide_examples.txt``, one block per example, in the guide's order:

    === <n>: <section> (line <line of FlumeUserGuide.rst>)
    !skip <reason>        (optional) not an agent configuration (a shell session, a log4j.properties, a template)
    !refused <reason>     (optional) needs a Java class of the user's own or a component that cannot exist outside a
                          JVM: ``--check`` must refuse it (with its line), never accept it silently
    !pending <reason>     (optional) a component being built: expected to fail until then (strict: an example that
                          starts to pass fails the test, so whoever lands the component removes the marker)
    !env NAME=VALUE       (optional) an environment variable the example's text says to set
    <the example's lines, as the guide prints them>
    --- wiring
    <what the fragment leaves out: the channels, sinks and sources it does not declare>

The guide is flume-ng-doc/sphinx/FlumeUserGuide.rst of apache/flume as it was when 1.11.0 was cut (the file left the
repository in October 2022; the web site's copy is the same text). Each example is checked for every agent it
defines, through the ``agent --check`` entry point in this process (a subprocess per example would cost a minute).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent import cli, config

pytestmark = pytest.mark.e2e

DATA = Path(__file__).with_name("user_guide_examples.txt")
_HEADER = re.compile(r"^=== (\d+): (.*)$")


@dataclass
class Example:
    number: int
    title: str
    text: str
    skip: str | None = None
    refused: str | None = None
    pending: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def examples() -> list[Example]:
    out: list[Example] = []
    current: Example | None = None
    lines: list[str] = []
    for line in DATA.read_text().splitlines():
        m = _HEADER.match(line)
        if m:
            if current:
                current.text = "\n".join(lines).strip() + "\n"
                out.append(current)
            current, lines = Example(int(m.group(1)), m.group(2), ""), []
        elif current is None:
            continue  # the file's own header
        elif line.startswith("!skip ") and not lines:
            current.skip = line[6:]
        elif line.startswith("!refused ") and not lines:
            current.refused = line[9:]
        elif line.startswith("!pending ") and not lines:
            current.pending = line[9:]
        elif line.startswith("!env ") and not lines:
            name, _, value = line[5:].partition("=")
            current.env[name] = value
        elif line != "--- wiring":
            lines.append(line)
    if current:
        current.text = "\n".join(lines).strip() + "\n"
        out.append(current)
    return out


def _params() -> list:
    params = []
    for ex in examples():
        marks = []
        if ex.skip:
            marks.append(pytest.mark.skip(reason=ex.skip))
        if ex.pending:
            marks.append(pytest.mark.xfail(strict=True, reason=f"pending: {ex.pending}"))
        params.append(pytest.param(ex, id=f"{ex.number}", marks=marks))
    return params


def test_the_data_file_numbers_its_examples_in_order():
    assert [ex.number for ex in examples()] == list(range(1, len(examples()) + 1))


@pytest.mark.parametrize("example", _params())
def test_user_guide_example_passes_check(example: Example, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, value in example.env.items():
        monkeypatch.setenv(name, value)
    conf = tmp_path / "flume.conf"
    conf.write_text(example.text)
    agents = config.load([str(conf)]).agents()
    assert agents, f"example {example.number} ({example.title}) defines no agent"
    failed, refusals = [], []
    for name in agents:
        rc = cli.run(["--conf-file", str(conf), "--name", name, "--check"])
        out = capsys.readouterr()
        if rc != 0:
            failed.append(f"agent {name}:\n{out.out}{out.err}")
            refusals += [line for line in out.out.splitlines() if line.startswith(f"{conf}:")]
    if example.refused:
        # cannot run here: refused, each refusal pointing at a line of the file
        assert failed and refusals, f"example {example.number} ({example.title}) was accepted: {example.refused}"
        return
    assert not failed, f"example {example.number} ({example.title}):\n{example.text}\n" + "\n".join(failed)
