"""Hadoop's MiniDFSCluster (HDFS 3.3.6, WebHDFS on) as a real peer, plus Hadoop's own readers for round trips."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import maven, stop_group

__all__ = ["HADOOP_VERSION", "classpath", "MiniDFS", "hadoop_text"]

HADOOP_VERSION = "3.3.6"
ARTIFACTS = [
    f"org.apache.hadoop:hadoop-minicluster:{HADOOP_VERSION}",
    f"org.apache.hadoop:hadoop-hdfs:{HADOOP_VERSION}:test-jar",
    "junit:junit:4.13.2",
    "org.hamcrest:hamcrest-core:1.3",
    "org.mockito:mockito-core:2.28.2",
    "net.bytebuddy:byte-buddy:1.9.10",
    "net.bytebuddy:byte-buddy-agent:1.9.10",
    "org.objenesis:objenesis:2.6",
    "org.lz4:lz4-java:1.8.0",  # Hadoop's Lz4Codec needs it at run time
]
_OPENS = ["--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens", "java.base/java.util=ALL-UNNAMED"]


def home() -> Path:
    return maven.resolve(f"hadoop-minidfs-{HADOOP_VERSION}", ARTIFACTS)


def classpath() -> str:
    return str(home() / "lib" / "*")


class MiniDFS:
    """One MiniDFSCluster process: namenode RPC and HTTP (WebHDFS) on loopback ports, data under ``workdir``."""

    def __init__(self, workdir: Path, rpc_port: int, http_port: int, datanodes: int = 1,
                 conf: dict[str, str] | None = None, jvm: list[str] | None = None, resources: Path | None = None):
        """``conf``: more Hadoop properties (-D); ``jvm``: more JVM flags (a secure cluster's krb5.conf);
        ``resources``: a directory put first on the classpath (ssl-server.xml)."""
        self.resources = resources
        self.workdir = Path(workdir)
        self.conf = dict(conf or {})
        self.jvm = list(jvm or [])
        self.secure = self.conf.get("hadoop.security.authentication") == "kerberos"
        self.rpc_port = rpc_port
        self.http_port = http_port
        self.datanodes = datanodes
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "minidfs.log"

    @property
    def webhdfs(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, format: bool = True, timeout: float = 120) -> MiniDFS:
        self.workdir.mkdir(parents=True, exist_ok=True)
        details = self.workdir / "details.json"
        details.unlink(missing_ok=True)
        cp = f"{self.resources}{os.pathsep}{classpath()}" if self.resources else classpath()
        cmd = ["java", "-Xmx1g", *_OPENS, *self.jvm, "-cp", cp, "org.apache.hadoop.test.MiniDFSClusterManager",
               "-nnport", str(self.rpc_port), "-httpport", str(self.http_port), "-writeDetails", str(details),
               "-datanodes", str(self.datanodes), "-D", "dfs.webhdfs.enabled=true",
               "-D", "dfs.permissions.enabled=false", "-D", "dfs.replication=1",
               "-D", "dfs.client.block.write.locateFollowingBlock.initial.delay.ms=10"]
        for key, value in self.conf.items():
            cmd += ["-D", f"{key}={value}"]
        if format:
            cmd.insert(cmd.index("-nnport"), "-format")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=str(self.workdir), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"MiniDFSCluster exited with {self.proc.returncode}:\n"
                                   f"{self.log_path.read_text(errors='replace')[-4000:]}")
            if details.exists():
                try:
                    with urllib.request.urlopen(f"{self.webhdfs}/webhdfs/v1/?op=LISTSTATUS", timeout=5) as r:
                        if r.status == 200:
                            json.loads(r.read())
                            return self
                except urllib.error.HTTPError:
                    if self.secure:  # up, and refusing a client without SPNEGO
                        return self
                except OSError:
                    pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"MiniDFSCluster not ready within {timeout} s")

    def stop(self) -> None:
        stop_group(self.proc, 30)
        if self.proc is not None:
            self._log.close()
        self.proc = None


def _client_conf_dir() -> Path:
    """A directory with an empty core-site.xml: FsShell insists on finding one on the classpath."""
    conf = home() / "client-conf"
    conf.mkdir(parents=True, exist_ok=True)
    for name in ("core-site.xml", "hdfs-site.xml"):
        if not (conf / name).exists():
            (conf / name).write_text('<?xml version="1.0"?>\n<configuration></configuration>\n')
    (conf / "log4j.properties").write_text(
        "log4j.rootLogger=ERROR,stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stderr.target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.stderr.layout.ConversionPattern=%p %c: %m%n\n")
    return conf


def hadoop_text(fs_uri: str, path: str, timeout: float = 120) -> bytes:
    """``hadoop fs -text <path>``: Hadoop's own decoding of SequenceFiles and compressed files."""
    cp = f"{_client_conf_dir()}{os.pathsep}{classpath()}"
    cmd = ["java", "-Xmx512m", *_OPENS, "-cp", cp, "org.apache.hadoop.fs.FsShell",
           "-D", f"fs.defaultFS={fs_uri}", "-text", path]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"hadoop fs -text {path} failed: {proc.stderr.decode(errors='replace')[-3000:]}")
    return proc.stdout
