"""Apache Flume 1.11.0 as a real peer: its agent and its Avro client, run from jars resolved from Maven Central."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from . import maven

__all__ = ["FLUME_VERSION", "classpath", "module_classpath", "FlumeAgent", "avro_client"]

FLUME_VERSION = "1.11.0"
ARTIFACTS = [
    f"org.apache.flume:flume-ng-node:{FLUME_VERSION}",
    f"org.apache.flume.flume-ng-sources:flume-taildir-source:{FLUME_VERSION}",
    "org.apache.logging.log4j:log4j-core:2.20.0",
    "org.apache.logging.log4j:log4j-slf4j-impl:2.20.0",
]

# Flume's Kafka source and sink, and its HDFS sink (with Hadoop's client), live in separate modules; each is
# resolved into its own directory so the core Flume cache stays valid, and put after it on the classpath.
MODULES = {
    "kafka": [f"org.apache.flume.flume-ng-sources:flume-kafka-source:{FLUME_VERSION}",
              f"org.apache.flume.flume-ng-sinks:flume-ng-kafka-sink:{FLUME_VERSION}"],
    "hdfs": [f"org.apache.flume.flume-ng-sinks:flume-hdfs-sink:{FLUME_VERSION}", "org.apache.hadoop:hadoop-client:3.3.6"],
    "hbase2": [f"org.apache.flume.flume-ng-sinks:flume-ng-hbase2-sink:{FLUME_VERSION}",
               "org.apache.hbase:hbase-client:2.6.1"],
    "http": [f"org.apache.flume.flume-ng-sinks:flume-http-sink:{FLUME_VERSION}"],
    "scribe": [f"org.apache.flume.flume-ng-sources:flume-scribe-source:{FLUME_VERSION}"],
}

_LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders><Console name="console" target="SYSTEM_OUT">
    <PatternLayout pattern="%d{ISO8601} %-5p [%t] %c{1}: %m%n"/></Console></Appenders>
  <Loggers><Root level="${sys:flume.log.level:-INFO}"><AppenderRef ref="console"/></Root></Loggers>
</Configuration>
"""


def classpath() -> str:
    """The classpath of Flume 1.11 (downloaded on first use)."""
    return str(_home() / "lib" / "*")


def module_classpath(*modules: str) -> str:
    """Flume 1.11 plus optional modules ("kafka", "hdfs", "hbase2", "http", "scribe")."""
    parts = [classpath()]
    for m in modules:
        parts.append(str(maven.resolve(f"flume-{m}-{FLUME_VERSION}", MODULES[m]) / "lib" / "*"))
    return os.pathsep.join(parts)


def modules_for(conf_text: str) -> tuple[str, ...]:
    """The optional modules a properties text needs."""
    found = []
    if "org.apache.flume.source.kafka" in conf_text or "org.apache.flume.sink.kafka" in conf_text \
            or "org.apache.flume.channel.kafka" in conf_text:
        found.append("kafka")
    if re.search(r"^\s*\S+\.sinks\.\S+\.type\s*[=:]\s*(hdfs|org\.apache\.flume\.sink\.hdfs\.HDFSEventSink)\s*$",
                 conf_text, re.M):
        found.append("hdfs")
    if re.search(r"^\s*\S+\.sinks\.\S+\.type\s*[=:]\s*(hbase2|org\.apache\.flume\.sink\.hbase2\.HBase2Sink)\s*$",
                 conf_text, re.M):
        found.append("hbase2")
    if re.search(r"^\s*\S+\.sinks\.\S+\.type\s*[=:]\s*(http|org\.apache\.flume\.sink\.http\.HttpSink)\s*$",
                 conf_text, re.M):
        found.append("http")
    return tuple(found)


def _home() -> Path:
    return maven.resolve(f"flume-{FLUME_VERSION}", ARTIFACTS)


def _log4j_config() -> Path:
    path = _home() / "log4j2.xml"
    if not path.exists() or path.read_text() != _LOG4J2:
        path.write_text(_LOG4J2)
    return path


def java_command(main: str, args: list[str], heap: str = "512m", log_level: str = "INFO",
                 cp: str | None = None) -> list[str]:
    return [
        "java", f"-Xmx{heap}", f"-Dlog4j.configurationFile={_log4j_config()}", f"-Dflume.log.level={log_level}",
        "-cp", cp or classpath(), main, *args,
    ]


class FlumeAgent:
    """One Apache Flume agent process running a properties file, in its own process group."""

    def __init__(self, conf: Path, name: str = "a1", log_path: Path | None = None, heap: str = "512m",
                 sysprops: dict[str, str] | None = None, log_level: str = "INFO",
                 modules: tuple[str, ...] | None = None):
        self.conf = Path(conf)
        self.modules = modules  # optional Flume modules on the classpath; None: what the file needs
        self.name = name
        self.log_path = log_path or self.conf.with_suffix(".flume.log")
        self.heap = heap
        self.sysprops = sysprops or {}
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        mods = self.modules if self.modules is not None else modules_for(self.conf.read_text())
        cmd = java_command("org.apache.flume.node.Application", ["-f", str(self.conf), "-n", self.name],
                           heap=self.heap, log_level=self.log_level,
                           cp=module_classpath(*mods) if mods else None)
        props = [f"-D{k}={v}" for k, v in self.sysprops.items()]
        return cmd[:1] + props + cmd[1:]

    def start(self) -> FlumeAgent:
        cmd = self.command()
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=str(self.conf.parent),
                                     start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        """Wait until Flume's log contains ``text`` (e.g. "Component type: SOURCE, name: r1 started")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"Flume exited with {self.proc.returncode} before logging {text!r}:\n"
                                   f"{self.log()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"Flume did not log {text!r} within {timeout} s:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 20) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        self._log.close()
        self.proc = None

    def __enter__(self) -> FlumeAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def avro_client(host: str, port: int, data: Path, header_file: Path | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Flume's own ``flume-ng avro-client``: sends each line of ``data`` as one event."""
    args = ["-H", host, "-p", str(port), "-F", str(data)]
    if header_file is not None:
        args += ["-R", str(header_file)]
    return subprocess.run(java_command("org.apache.flume.client.avro.AvroCLIClient", args, heap="256m"),
                          capture_output=True, text=True, timeout=timeout)
