"""The test files of ``agent test``: TOML read with ``tomllib``, checked, and turned into :class:`Case` objects.

The format is described in :mod:`agent.config_test` and in docs/agent-test.md. Every problem is reported at once,
each as ``FILE:LINE: test 'name': message``; tomllib keeps no positions, so the line is found in the file's text
(the ``[[test]]`` table, or the line of the key inside it).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BadTestFile", "Expect", "Case", "load_cases", "toml_text"]

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
        problems.append(f"{where}: {label}{key} = {toml_text(value)}: expected {want}")
        return None
    return value


def _str_map(table: dict[str, Any], key: str, where: str, label: str, problems: list[str]) -> dict[str, str]:
    value = _typed(table, key, dict, where, label, problems) or {}
    bad = [k for k, v in value.items() if not isinstance(v, str)]
    if bad:
        problems.append(f"{where}: {label}{key}.{bad[0]} = {toml_text(value[bad[0]])}: header values are strings "
                        f"(write it in quotes)")
    return {k: v for k, v in value.items() if isinstance(v, str)}


def _names(table: dict[str, Any], key: str, where: str, label: str, problems: list[str]) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: {label}{key} = {toml_text(value)}: expected a list of names, like [\"c1\", \"c2\"]")
        return None
    return tuple(value)


def toml_text(value: Any) -> str:
    """A value written as in the test file (JSON's strings and lists are TOML's)."""
    return json.dumps(value, ensure_ascii=False)
