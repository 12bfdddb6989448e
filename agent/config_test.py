"""``agent test``: unit tests for a configuration's interceptors and selectors, like ``vector test``.

A TOML file of cases; each puts one event (body, headers) in at a named source and says what should come out of
that source's interceptor chain and channel selector. Nothing is started: the agent is built as ``--check`` builds
it (the whole file is validated), then each source's interceptors and selector run on the test event in this
process. Sinks, channels and the sources themselves never run, so no port is opened and no file is written.

    agent test [--conf-file F] [--name N] [-Dkey=value ...] [--show] TESTS.toml ...

The file::

    conf = "routing.conf"   # the properties file, relative to this file (--conf-file overrides)
    name = "a1"             # the agent (--name overrides)

    [[test]]
    name = "an event from the west goes to the west channel"
    source = "r1"           # may be left out when the agent has one source
    input = { body = "hello", headers = { datacenter = "west" } }

    [test.expect]
    body = "hello"                                  # the body, exactly
    headers = { datacenter = "west" }               # these headers with these values (others may be there)
    headers_match = { timestamp = '\\d{13}' }       # these headers, each value matching a regular expression
    headers_absent = ["password"]                   # these headers not there
    no_other_headers = false                        # true: no headers but those named above
    channels = ["west"]                             # the required channels, in any order
    optional_channels = []                          # the optional channels
    dropped = false                                 # true: no channel gets the event (an interceptor dropped
                                                    # it, or the selector routes it nowhere)

Every ``expect`` key is optional; an empty ``expect`` only checks that the event passes without error. Exit status:
0 every test passed, 1 a test failed (each failure printed as a diff: ``-`` expected, ``+`` got), 2 the test
file or the configuration is invalid (each problem with its file and line).
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import re
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.core import Event, Source

__all__ = ["Case", "Expect", "Outcome", "load_cases", "run_case", "diff", "main"]

_TOP_KEYS = ("conf", "name", "test")
_TEST_KEYS = ("name", "source", "input", "expect")
_INPUT_KEYS = ("body", "headers")
_EXPECT_KEYS = ("body", "headers", "headers_match", "headers_absent", "no_other_headers", "channels",
                "optional_channels", "dropped")


class BadTestFile(Exception):
    """Problems in a test file, each ``FILE:LINE: message``."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Expect:
    """What a case expects; None (or empty) means not checked."""

    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    headers_match: dict[str, re.Pattern[str]] = field(default_factory=dict)
    headers_absent: tuple[str, ...] = ()
    no_other_headers: bool = False
    channels: tuple[str, ...] | None = None
    optional_channels: tuple[str, ...] | None = None
    dropped: bool | None = None


@dataclass(frozen=True)
class Case:
    name: str
    where: str  # FILE:LINE of its [[test]]
    source: str | None
    body: bytes
    headers: dict[str, str]
    expect: Expect


@dataclass
class Outcome:
    """What came out of the source's chain for one input event."""

    events: list[Event]
    dropped_by: str | None = None  # "interceptor f (regex_filter)" when an interceptor returned no events
    channels: list[list[str]] = field(default_factory=list)  # required channel names, per output event
    optional: list[list[str]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
# The test file


def load_cases(path: Path) -> tuple[dict[str, Any], list[Case]]:
    """The file's top-level settings (``conf``, ``name``) and its cases; BadTestFile listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadTestFile([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise BadTestFile([f"{path}:{line.group(1) if line else 0}: not valid TOML: {exc}"]) from None
    lines = _Lines(path, text)
    problems: list[str] = []
    for key in doc:
        _unknown({key: None}, _TOP_KEYS, lines.top(key), "", problems)
    tests = doc.get("test", [])
    if not isinstance(tests, list) or not tests:
        problems.append(f"{path}: no tests: add [[test]] tables (see `agent test --help`)")
        tests = []
    cases = []
    for i, table in enumerate(tests):
        case = _case(table, i, lines, problems)
        if case is not None:
            cases.append(case)
    if problems:
        raise BadTestFile(problems)
    return {k: doc[k] for k in ("conf", "name") if k in doc}, cases


class _Lines:
    """Where each ``[[test]]`` table starts, and the line of a key inside it (tomllib keeps no positions)."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.text = text.splitlines()
        self.starts = [n for n, line in enumerate(self.text, 1) if re.match(r"\s*\[\[\s*test\s*\]\]", line)]

    def top(self, key: str) -> str:
        """Where a top-level key is set: ``key =`` before the first table, or a ``[key]`` / ``[[key]]`` table."""
        assignment = re.compile(rf"\s*{re.escape(key)}\s*=")
        table = re.compile(rf"\s*\[\[?\s*{re.escape(key)}\s*\]")
        in_tables = False
        for n, line in enumerate(self.text, 1):
            in_tables = in_tables or line.lstrip().startswith("[")
            if table.match(line) or (not in_tables and assignment.match(line)):
                return f"{self.path}:{n}"
        return str(self.path)

    def where(self, index: int, key: str) -> str:
        start = self.starts[index] if index < len(self.starts) else 0
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.text) + 1
        if key:
            pattern = re.compile(rf"\s*(\[\s*test\.{re.escape(key)}\s*\]|{re.escape(key)}\s*=)")
            for n in range(start or 1, end):
                if pattern.match(self.text[n - 1]):
                    return f"{self.path}:{n}"
        return f"{self.path}:{start}" if start else str(self.path)


def _unknown(table: dict[str, Any], known: Sequence[str], where: str, what: str, problems: list[str]) -> None:
    for key in table:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; expected {', '.join(known)}"
            problems.append(f"{where}: {what}unknown key '{key}'{hint}")


def _case(table: Any, i: int, lines: _Lines, problems: list[str]) -> Case | None:
    where = lines.where(i, "")
    if not isinstance(table, dict):
        problems.append(f"{where}: test {i + 1} is not a table")
        return None
    name = table.get("name")
    label = f"test {name!r}: " if isinstance(name, str) else f"test {i + 1}: "
    before = len(problems)
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: {label}'name' is required (a string saying what the test checks)")
    _unknown(table, _TEST_KEYS, where, label, problems)
    source = _typed(table, "source", str, lines.where(i, "source"), label, problems)
    given = _typed(table, "input", dict, lines.where(i, "input"), label, problems) or {}
    if "input" not in table:
        problems.append(f"{where}: {label}'input' is required (input = {{ body = \"...\", headers = {{ ... }} }})")
    _unknown(given, _INPUT_KEYS, lines.where(i, "input"), label + "input: ", problems)
    body = _typed(given, "body", str, lines.where(i, "input"), label + "input: ", problems) or ""
    headers = _str_map(given, "headers", lines.where(i, "input"), label + "input: ", problems)
    expect = _expect(table.get("expect", {}), lines.where(i, "expect"), label, problems)
    if len(problems) > before:
        return None
    return Case(name, where, source, body.encode("utf-8"), headers, expect)


def _expect(table: Any, where: str, label: str, problems: list[str]) -> Expect:
    if not isinstance(table, dict):
        problems.append(f"{where}: {label}'expect' must be a table")
        return Expect()
    label += "expect: "
    _unknown(table, _EXPECT_KEYS, where, label, problems)
    body = _typed(table, "body", str, where, label, problems)
    patterns: dict[str, re.Pattern[str]] = {}
    for key, text in _str_map(table, "headers_match", where, label, problems).items():
        try:
            patterns[key] = re.compile(text)
        except re.error as exc:
            problems.append(f"{where}: {label}headers_match.{key}: {text!r} is not a regular expression: {exc}")
    dropped = _typed(table, "dropped", bool, where, label, problems)
    channels = _names(table, "channels", where, label, problems)
    if dropped and channels:
        problems.append(f"{where}: {label}dropped = true and channels = {list(channels)} contradict each other")
    return Expect(body=None if body is None else body.encode("utf-8"),
                  headers=_str_map(table, "headers", where, label, problems), headers_match=patterns,
                  headers_absent=_names(table, "headers_absent", where, label, problems) or (),
                  no_other_headers=bool(_typed(table, "no_other_headers", bool, where, label, problems)),
                  channels=channels, optional_channels=_names(table, "optional_channels", where, label, problems),
                  dropped=dropped)


def _typed(table: dict[str, Any], key: str, kind: type, where: str, label: str, problems: list[str]) -> Any:
    value = table.get(key)
    if value is not None and not isinstance(value, kind):
        want = {str: "a string", dict: "a table", bool: "true or false"}[kind]
        problems.append(f"{where}: {label}{key} = {_toml(value)}: expected {want}")
        return None
    return value


def _str_map(table: dict[str, Any], key: str, where: str, label: str, problems: list[str]) -> dict[str, str]:
    value = _typed(table, key, dict, where, label, problems) or {}
    bad = [k for k, v in value.items() if not isinstance(v, str)]
    if bad:
        problems.append(f"{where}: {label}{key}.{bad[0]} = {_toml(value[bad[0]])}: header values are strings "
                        f"(write it in quotes)")
    return {k: v for k, v in value.items() if isinstance(v, str)}


def _names(table: dict[str, Any], key: str, where: str, label: str, problems: list[str]) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: {label}{key} = {_toml(value)}: expected a list of names, like [\"c1\", \"c2\"]")
        return None
    return tuple(value)


# ----------------------------------------------------------------------------------------------------------------
# Running a case


def run_case(source: Source, case: Case) -> Outcome:
    """The case's event through ``source``'s interceptors and selector, exactly as the channel processor runs
    them, without putting it into any channel."""
    processor = source.channel_processor
    events = [Event(case.body, dict(case.headers))]
    outcome = Outcome(events)
    for interceptor in processor.interceptors:
        events = interceptor.intercept(events)
        if not events:
            outcome.events = []
            outcome.dropped_by = f"interceptor {interceptor.name} ({_alias(interceptor)})"
            return outcome
    outcome.events = events
    required, optional = processor.selector.route(events)
    for event in events:
        outcome.channels.append(sorted(ch.name for ch, batch in required if any(e is event for e in batch)))
        outcome.optional.append(sorted(ch.name for ch, batch in optional if any(e is event for e in batch)))
    return outcome


def _alias(component: object) -> str:
    return getattr(component, "alias", None) or type(component).__name__


def diff(expect: Expect, outcome: Outcome) -> list[str]:
    """The differences between what was expected and what came out, as ``- expected`` / ``+ got`` lines."""
    out: list[str] = []
    dropped = _dropped(outcome)
    if expect.dropped is not None and expect.dropped != dropped:
        got = f"dropped by {outcome.dropped_by}" if outcome.dropped_by else (
            "dropped: the selector routed it to no channel" if dropped else "not dropped")
        out += [f"- dropped = {_toml(expect.dropped)}", f"+ dropped = {_toml(dropped)}  # {got}"]
    if not outcome.events:
        checks = (expect.body is not None or expect.headers or expect.headers_match or expect.channels
                  or expect.optional_channels)
        if checks and expect.dropped is not True:
            out += ["- an event", f"+ no event: dropped by {outcome.dropped_by}"]
        return out
    if len(outcome.events) != 1:
        out += ["- 1 event after the interceptors", f"+ {len(outcome.events)} events"]
        return out
    event = outcome.events[0]
    if expect.body is not None and event.body != expect.body:
        out += [f"- body = {_text(expect.body)}", f"+ body = {_text(event.body)}"]
    out += _header_diff(expect, event.headers)
    for key, want, got in (("channels", expect.channels, outcome.channels[0]),
                           ("optional_channels", expect.optional_channels, outcome.optional[0])):
        if want is not None and sorted(want) != got:
            out += [f"- {key} = {_toml(sorted(want))}", f"+ {key} = {_toml(got)}"]
    return out


def _dropped(outcome: Outcome) -> bool:
    """No channel, required or optional, gets any of the events."""
    return not any(c or o for c, o in zip(outcome.channels, outcome.optional, strict=True))


def _header_diff(expect: Expect, headers: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, want in expect.headers.items():
        if headers.get(key) != want:
            out += [f"- headers.{key} = {_toml(want)}", f"+ headers.{key} = {_got(headers, key)}"]
    for key, pattern in expect.headers_match.items():
        if key not in headers or not pattern.fullmatch(headers[key]):
            out += [f"- headers.{key} matching {_toml(pattern.pattern)}", f"+ headers.{key} = {_got(headers, key)}"]
    for key in expect.headers_absent:
        if key in headers:
            out += [f"- no header {key}", f"+ headers.{key} = {_toml(headers[key])}"]
    if expect.no_other_headers:
        named = set(expect.headers) | set(expect.headers_match)
        for key in sorted(set(headers) - named):
            out += [f"- no header {key} (no_other_headers = true)", f"+ headers.{key} = {_toml(headers[key])}"]
    return out


def _got(headers: dict[str, str], key: str) -> str:
    return _toml(headers[key]) if key in headers else "(not set)"


def _toml(value: Any) -> str:
    """A value written as in the test file (JSON's strings and lists are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def _text(body: bytes) -> str:
    return _toml(body.decode("utf-8", "backslashreplace"))


def show(outcome: Outcome) -> list[str]:
    """What came out, written as an ``expect`` table (to paste into a test once checked)."""
    if _dropped(outcome):
        how = f"by {outcome.dropped_by}" if outcome.dropped_by else "routed to no channel"
        return ["[test.expect]", f"dropped = true  # {how}"]
    lines = []
    for n, event in enumerate(outcome.events):
        lines += ["[test.expect]" if n == 0 else "# and another event:", f"body = {_text(event.body)}",
                  "headers = { " + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in event.headers.items()) + " }",
                  f"channels = {_toml(outcome.channels[n])}"]
        if outcome.optional[n]:
            lines.append(f"optional_channels = {_toml(outcome.optional[n])}")
    return lines


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml(key)


# ----------------------------------------------------------------------------------------------------------------
# The command


class _Captured(logging.Handler):
    """Keeps what the components log during one case, printed under it only when it fails."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Run a configuration's unit tests: events through each source's interceptors and "
                               "selector, checked against what each test expects. Nothing is started.",
        epilog="The test file format is described in docs/agent-test.md (and in this module's docstring).")
    p.add_argument("tests", nargs="+", metavar="TESTS.toml", help="test files")
    p.add_argument("-f", "--conf-file", action="append", default=[], metavar="FILE",
                   help="the Flume properties file (default: the test file's 'conf', relative to it)")
    p.add_argument("-n", "--name", help="the agent (default: the test file's 'name')")
    p.add_argument("--show", action="store_true", help="print what came out of every test, as an expect table")
    return p


def main(argv: Sequence[str], prog: str = "agent test") -> int:
    from agent.cli import _split_sysprops

    rest, sysprops, _ignored = _split_sysprops(argv)
    args = _parser(prog).parse_args(rest)
    status = 0
    for test_file in args.tests:
        status = max(status, _run_file(Path(test_file), args, sysprops))
    return status


def _run_file(path: Path, args: argparse.Namespace, sysprops: dict[str, str]) -> int:
    try:
        settings, cases = load_cases(path)
    except BadTestFile as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    files = args.conf_file or ([str(path.parent / settings["conf"])] if "conf" in settings else [])
    name = args.name or settings.get("name")
    if not files or not name:
        missing = "--conf-file (or conf = \"x.conf\" in the test file)" if not files else \
            "--name (or name = \"a1\" in the test file)"
        print(f"{path}: which configuration to test? give {missing}", file=sys.stderr)
        return 2
    from agent import config

    topo, problems = config.check(files, name, sysprops)
    if topo is None:
        print("\n".join(str(p) for p in problems if p.severity == "error"), file=sys.stderr)
        print(f"{path}: not run: the configuration has errors (agent --check -f {' '.join(files)} -n {name})",
              file=sys.stderr)
        return 2
    print(f"Running {path} against {' '.join(files)} (agent {name})")
    for source in topo.sources.values():
        source.channel_processor.start()
    try:
        failed = sum(not _run_one(case, topo.sources, args.show, path) for case in cases)
    finally:
        for source in topo.sources.values():
            source.channel_processor.stop()
    print(f"{len(cases)} tests: {len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _run_one(case: Case, sources: dict[str, Source], show_outcome: bool, path: Path) -> bool:
    name = case.source or (next(iter(sources)) if len(sources) == 1 else None)
    source = sources.get(name) if name else None
    if source is None:
        why = (f"source {name!r} is not a source of this agent" if name
               else "'source' is required: this agent has several")
        print(f"test {case.name} ... ERROR\n  {case.where}: {why} (sources: {', '.join(sources) or 'none'})")
        return False
    captured = _Captured()
    pyflume = logging.getLogger("pyflume")
    pyflume.addHandler(captured)
    propagate, pyflume.propagate = pyflume.propagate, False
    try:
        outcome = run_case(source, case)
    except Exception as exc:  # noqa: BLE001 - an interceptor's bug fails its test and says why
        print(f"test {case.name} ... ERROR\n  {case.where}: source {name}: {type(exc).__name__}: {exc}")
        return False
    finally:
        pyflume.removeHandler(captured)
        pyflume.propagate = propagate
    problems = diff(case.expect, outcome)
    print(f"test {case.name} ... {'FAILED' if problems else 'passed'}")
    if problems:
        print(f"  {case.where}: source {name}")
        print("\n".join("  " + line for line in problems))
        for line in captured.lines:
            print("  log: " + line)
    if show_outcome:
        print("\n".join("    " + line for line in show(outcome)))
    return not problems
