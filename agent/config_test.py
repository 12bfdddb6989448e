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
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.config_test_file import BadTestFile, Case, Expect, load_cases, toml_text
from agent.core import Event, Source

__all__ = ["Case", "Expect", "Outcome", "BadTestFile", "load_cases", "run_case", "diff", "main"]


@dataclass
class Outcome:
    """What came out of the source's chain for one input event."""

    events: list[Event]
    dropped_by: str | None = None  # "interceptor f (regex_filter)" when an interceptor returned no events
    channels: list[list[str]] = field(default_factory=list)  # required channel names, per output event
    optional: list[list[str]] = field(default_factory=list)


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
        out += [f"- dropped = {toml_text(expect.dropped)}", f"+ dropped = {toml_text(dropped)}  # {got}"]
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
            out += [f"- {key} = {toml_text(sorted(want))}", f"+ {key} = {toml_text(got)}"]
    return out


def _dropped(outcome: Outcome) -> bool:
    """No channel, required or optional, gets any of the events."""
    return not any(c or o for c, o in zip(outcome.channels, outcome.optional, strict=True))


def _header_diff(expect: Expect, headers: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, want in expect.headers.items():
        if headers.get(key) != want:
            out += [f"- headers.{key} = {toml_text(want)}", f"+ headers.{key} = {_got(headers, key)}"]
    for key, pattern in expect.headers_match.items():
        if key not in headers or not pattern.fullmatch(headers[key]):
            out += [f"- headers.{key} matching {toml_text(pattern.pattern)}", f"+ headers.{key} = {_got(headers, key)}"]
    for key in expect.headers_absent:
        if key in headers:
            out += [f"- no header {key}", f"+ headers.{key} = {toml_text(headers[key])}"]
    if expect.no_other_headers:
        named = set(expect.headers) | set(expect.headers_match)
        for key in sorted(set(headers) - named):
            out += [f"- no header {key} (no_other_headers = true)", f"+ headers.{key} = {toml_text(headers[key])}"]
    return out


def _got(headers: dict[str, str], key: str) -> str:
    return toml_text(headers[key]) if key in headers else "(not set)"


def _text(body: bytes) -> str:
    return toml_text(body.decode("utf-8", "backslashreplace"))


def show(outcome: Outcome) -> list[str]:
    """What came out, written as an ``expect`` table (to paste into a test once checked)."""
    if _dropped(outcome):
        how = f"by {outcome.dropped_by}" if outcome.dropped_by else "routed to no channel"
        return ["[test.expect]", f"dropped = true  # {how}"]
    lines = []
    for n, event in enumerate(outcome.events):
        lines += ["[test.expect]" if n == 0 else "# and another event:", f"body = {_text(event.body)}",
                  "headers = { " + ", ".join(f"{_key(k)} = {toml_text(v)}" for k, v in event.headers.items()) + " }",
                  f"channels = {toml_text(outcome.channels[n])}"]
        if outcome.optional[n]:
            lines.append(f"optional_channels = {toml_text(outcome.optional[n])}")
    return lines


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_text(key)


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
        failed = sum(not _run_one(case, topo.sources, args.show) for case in cases)
    finally:
        for source in topo.sources.values():
            source.channel_processor.stop()
    print(f"{len(cases)} tests: {len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _run_one(case: Case, sources: dict[str, Source], show_outcome: bool) -> bool:
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
