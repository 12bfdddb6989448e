"""Command line: ``agent`` and a drop-in ``flume-ng``.

    agent --conf-file F --name N [--conf DIR] [-Dkey=value ...] [--check]
    flume-ng agent -n N -f F [-c DIR] [-Dkey=value ...]
    flume-ng version | help

``--check`` parses, validates and builds the whole topology without starting anything, prints every problem as
``FILE:LINE: component: property: message`` and exits 0 when the agent would start, 1 when not.
"""

from __future__ import annotations

import argparse
import gc
import logging
import logging.config as logging_config
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from agent import __version__

__all__ = ["main", "flume_ng_main"]

log = logging.getLogger("pyflume")

_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
           "WARNING": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL, "OFF": logging.CRITICAL + 10}

# Flume's single-dash long options, rewritten to double-dash before argparse sees them.
_FLUME_LONG_SINGLE = {"-prov": "--conf-provider", "-user": "--conf-user", "-pwd": "--conf-password"}


def _split_sysprops(argv: Sequence[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """Take ``-Dkey=value`` (and JVM-only ``-X...`` flags) out of argv."""
    rest: list[str] = []
    props: dict[str, str] = {}
    ignored: list[str] = []
    for a in argv:
        if a.startswith("-D") and len(a) > 2:
            k, _, v = a[2:].partition("=")
            props[k] = v
        elif a.startswith(("-X", "-agentlib", "-javaagent")):
            ignored.append(a)
        else:
            rest.append(_FLUME_LONG_SINGLE.get(a, a))
    return rest, props, ignored


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run an Apache Flume agent configuration with pyflume.",
        epilog="Java system properties are given as -Dkey=value (e.g. -Dflume.monitoring.type=http "
               "-Dflume.monitoring.port=34545 -Dflume.root.logger=DEBUG,console).",
    )
    p.add_argument("-f", "--conf-file", action="append", default=[], metavar="FILE",
                   help="a Flume properties file (repeatable; later files override earlier keys)")
    p.add_argument("-u", "--conf-uri", action="append", default=[], metavar="URI",
                   help="a configuration URI (file: URIs only)")
    p.add_argument("-n", "--name", help="the agent to run (the <agent> prefix of the keys)")
    p.add_argument("-c", "--conf", metavar="DIR", help="configuration directory (logging.conf / log4j2.xml level)")
    p.add_argument("--check", action="store_true",
                   help="validate the configuration and build the topology without starting anything")
    p.add_argument("--strict", action="store_true", help="with --check: treat warnings as errors")
    p.add_argument("--no-reload-conf", "--no-reload", action="store_true", dest="no_reload",
                   help="do not watch the configuration file for changes")
    p.add_argument("-i", "--poll-interval", type=int, metavar="SEC",
                   help="how often to re-read the configuration when the filesystem sends no change "
                        "notifications (default 30)")
    p.add_argument("-b", "--backup-directory", help="accepted for Flume compatibility")
    p.add_argument("--conf-provider", "--conf-user", "--conf-password", dest="_ignored", action="append",
                   help=argparse.SUPPRESS)
    p.add_argument("-C", "--classpath", "--plugins-path", dest="_classpath", action="append",
                   help="accepted and ignored: Java plugins cannot run in pyflume")
    p.add_argument("--version", action="version", version=f"pyflume {__version__}")
    return p


def _log4j_level(conf_dir: Path) -> str | None:
    """The root level a Flume conf directory's log4j2.xml or log4j.properties sets (Flume ships both kinds)."""
    xml = conf_dir / "log4j2.xml"
    if xml.is_file():
        import xml.etree.ElementTree as ET

        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError:
            return None
        for el in root.iter():
            if el.tag.rsplit("}", 1)[-1] in ("Root", "root") and el.get("level"):
                level = el.get("level", "")
                if level.startswith("${"):  # ${sys:flume.root.logger:-INFO} and the like: the default after :-
                    level = level.rsplit(":-", 1)[-1].rstrip("}") if ":-" in level else ""
                return level or None
        return None
    props = conf_dir / "log4j.properties"
    if props.is_file():
        from agent.properties import PropertiesError, load_properties

        try:
            keys = {e.key: e.value for e in load_properties(props)}
        except PropertiesError:
            return None
        spec = keys.get("flume.root.logger") or keys.get("log4j.rootLogger")
        return spec.split(",")[0].strip() if spec else None
    return None


def _setup_logging(sysprops: dict[str, str], conf_dir: str | None) -> None:
    level = logging.INFO
    spec = sysprops.get("flume.root.logger")
    if conf_dir and not spec:
        cfg = Path(conf_dir) / "logging.conf"
        if cfg.is_file():
            logging_config.fileConfig(cfg, disable_existing_loggers=False)
            return
        spec = _log4j_level(Path(conf_dir))
    if spec:
        name = spec.split(",")[0].strip().upper()
        level = _LEVELS.get(name, logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-5s [%(threadName)s] %(name)s: %(message)s")


def _conf_files(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    files = list(args.conf_file)
    for uri in args.conf_uri:
        if uri.startswith("file:"):
            files.append(uri[5:].lstrip("/") and "/" + uri[5:].lstrip("/"))
        else:
            parser.error(f"--conf-uri {uri}: only file: URIs are supported")
    return files


def run(argv: Sequence[str], prog: str = "agent") -> int:
    rest, sysprops, ignored = _split_sysprops(argv)
    parser = _parser(prog)
    args = parser.parse_args(rest)
    files = _conf_files(args, parser)
    if not files:
        parser.error("--conf-file is required (the Flume properties file to run)")
    from agent import config

    if not args.name:
        cf = config.load(files, sysprops)
        agents = ", ".join(cf.agents()) or "none"
        parser.error(f"--name is required; agents defined in {', '.join(files)}: {agents}")
    if args.check:
        return _check(files, args.name, sysprops, strict=args.strict)
    _setup_logging(sysprops, args.conf)
    if ignored:
        log.info("Ignoring JVM options %s", " ".join(ignored))
    watcher = None
    if not args.no_reload:
        from agent.reload import ConfigWatcher

        watcher = ConfigWatcher(files, lambda: on_change(), poll_interval=args.poll_interval or 30)
    topo, problems = config.check(files, args.name, sysprops)
    for p in problems:
        (log.error if p.severity == "error" else log.warning)("%s", p)
    if topo is None:
        log.error("Agent %s not started: %d configuration errors", args.name,
                  sum(p.severity == "error" for p in problems))
        return 1
    from agent.runners import Agent

    # The hot path allocates an Event (two slots and a dict) per line; with the default gen-0 threshold (700)
    # the collector would run every few hundred events and cost about as much as the events themselves.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    agent = Agent(topo)
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("Received %s, shutting down", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    def on_change() -> None:
        new, problems = config.check(files, args.name, sysprops, reuse=agent.topo)
        for p in problems:
            (log.error if p.severity == "error" else log.warning)("%s", p)
        if new is None:
            log.error("Configuration reload refused: %d errors; the running agent is unchanged",
                      sum(p.severity == "error" for p in problems))
            return
        agent.reload(new)

    agent.start()
    if watcher is not None:
        watcher.start()
    try:
        while not done.wait(1.0):
            pass
    finally:
        if watcher is not None:
            watcher.stop()
        agent.stop()
    return 0


def _check(files: list[str], name: str, sysprops: dict[str, str], strict: bool) -> int:
    from agent import config

    cf = config.load(files, sysprops)
    phases: list[tuple[str, int, int]] = []
    n_parse = len(cf.problems)
    ap = config.plan(cf, name, sysprops)
    topo = None
    problems = ap.problems
    if name in cf.agents():
        topo, problems = config.build(ap)
    # Every problem, in file order, then one line per phase.
    for p in sorted(problems, key=lambda p: (p.path, p.line)):
        print(p)
    parse_p = problems[:n_parse]
    rest = problems[n_parse:]
    phases.append(("parse", sum(p.severity == "error" for p in parse_p), sum(p.severity != "error" for p in parse_p)))
    phases.append(("components and graph", sum(p.severity == "error" for p in rest),
                   sum(p.severity != "error" for p in rest)))
    errors = sum(e for _, e, _ in phases)
    warnings = sum(w for _, _, w in phases)
    for phase, e, w in phases:
        state = "ok" if not e else "FAILED"
        print(f"{phase}: {state} ({e} errors, {w} warnings)", file=sys.stderr)
    ok = errors == 0 and topo is not None and not (strict and warnings)
    if ok:
        print(f"agent {name}: would start {len(topo.sources)} sources, {len(topo.channels)} channels, "  # type: ignore[union-attr]
              f"{len(topo.sinks)} sinks", file=sys.stderr)
    else:
        print(f"agent {name}: would NOT start ({errors} errors, {warnings} warnings)", file=sys.stderr)
    return 0 if ok else 1


def file_channel_main(argv: Sequence[str], prog: str = "agent file-channel") -> int:
    """Inspect a stopped (or running) file channel's directories: queue depth, segments, age, checksums."""
    from agent.file_channel_cli import main as file_channel

    return file_channel(argv, prog)


def avro_client_main(argv: Sequence[str], prog: str = "agent avro-client") -> int:
    from agent.avro_client import main as avro_client

    return avro_client(argv, prog)


def graph_main(argv: Sequence[str], prog: str = "agent graph") -> int:
    from agent.graph import main as graph

    return graph(argv, prog)


SUBCOMMANDS = {"file-channel": file_channel_main, "avro-client": avro_client_main, "graph": graph_main}


def tap_main(argv: Sequence[str], prog: str = "agent tap") -> int:
    """Watch a sample of the events passing points of a running agent (agent/tap_client.py)."""
    from agent.tap_client import main as tap

    return tap(argv, prog)


SUBCOMMANDS["tap"] = tap_main


def top_main(argv: Sequence[str], prog: str = "agent top") -> int:
    """A live terminal view of a running agent's components, from its JSON metrics (agent/top.py)."""
    from agent.top import main as top

    return top(argv, prog)


SUBCOMMANDS["top"] = top_main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:], f"agent {argv[0]}")
    return run(argv, "agent")


_FLUME_USAGE = """Usage: flume-ng <command> [options]...

commands:
  help                      display this help text
  agent                     run a Flume agent
  version                   show Flume version info
  avro-client               run an avro Flume client
  file-channel              inspect a file channel's directories (pyflume)

agent options:
  --name,-n <name>          the name of this agent (required)
  --conf-file,-f <file>     specify a config file (required)
  --conf,-c <conf>          use configs in <conf> directory
  --no-reload-conf          do not reload config file if changed
  -Dproperty=value          sets a Java system property value
"""


def flume_ng_main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(_FLUME_USAGE)
        return 0 if argv else 1
    cmd, rest = argv[0], argv[1:]
    if cmd in ("agent", "node"):
        return run(rest, "flume-ng agent")
    if cmd in SUBCOMMANDS:
        return SUBCOMMANDS[cmd](rest, f"flume-ng {cmd}")
    if cmd == "version":
        print(f"Flume 1.11.0 (pyflume {__version__}, Python {sys.version.split()[0]})")
        return 0
    print(f"flume-ng: unknown command '{cmd}'\n", file=sys.stderr)
    print(_FLUME_USAGE, file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    os._exit(main())
