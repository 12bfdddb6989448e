"""Apache HBase 2.6.1 standalone (master, region server and ZooKeeper in one JVM) plus its Thrift server.

The HBase sinks talk to HBase through the Thrift server (Python has no maintained client for HBase's native RPC),
so a test needs both processes. Both can be stopped and started again on the same root directory and ports, which
is what "HBase stopped and restarted mid-stream loses nothing" needs.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from xml.sax.saxutils import escape

from . import free_port, listening, maven, stop_group

__all__ = ["HBASE_VERSION", "HBase", "classpath"]

HBASE_VERSION = "2.6.1"
ARTIFACTS = [
    f"org.apache.hbase:hbase-server:{HBASE_VERSION}",
    f"org.apache.hbase:hbase-thrift:{HBASE_VERSION}",
    f"org.apache.hbase:hbase-zookeeper:{HBASE_VERSION}",
    "org.slf4j:slf4j-reload4j:1.7.36",
]
JVM_FLAGS = [
    "--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "--add-opens", "java.base/java.nio=ALL-UNNAMED", "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
]


def classpath() -> str:
    return str(maven.resolve(f"hbase-{HBASE_VERSION}", ARTIFACTS) / "lib" / "*")


class HBase:
    """HBase standalone on loopback: ``zk_quorum`` is ``127.0.0.1:<port>``, ``thrift`` the Thrift server's
    ``host:port``."""

    def __init__(self, workdir: Path, conf: dict[str, str] | None = None, jvm: list[str] | None = None):
        self.workdir = Path(workdir)
        self.extra_conf = dict(conf or {})  # added to (and overriding) hbase-site.xml's properties
        self.extra_jvm = list(jvm or [])
        self.zk_port = free_port()
        self.thrift_port = free_port()
        self.master: subprocess.Popen[bytes] | None = None
        self.thrift_proc: subprocess.Popen[bytes] | None = None

    @property
    def zk_quorum(self) -> str:
        return f"127.0.0.1:{self.zk_port}"

    @property
    def thrift(self) -> str:
        return f"127.0.0.1:{self.thrift_port}"

    def _write_conf(self) -> Path:
        conf = self.workdir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        props = {
            "hbase.rootdir": f"file://{self.workdir / 'root'}",
            "hbase.zookeeper.property.dataDir": str(self.workdir / "zk"),
            "hbase.cluster.distributed": "false",
            "hbase.unsafe.stream.capability.enforce": "false",
            "hbase.zookeeper.quorum": "127.0.0.1",
            "hbase.zookeeper.property.clientPort": str(self.zk_port),
            "hbase.master.port": "0",
            "hbase.regionserver.port": "0",
            "hbase.master.info.port": "-1",
            "hbase.regionserver.info.port": "-1",
            "hbase.thrift.info.port": "-1",
            "hbase.master.hostname": "127.0.0.1",
            "hbase.regionserver.hostname": "127.0.0.1",
            "hbase.tmp.dir": str(self.workdir / "tmp"),
            # a small machine: keep the background chores quiet
            "hbase.regionserver.handler.count": "10",
            "hbase.master.procedure.threads": "2",
            **self.extra_conf,
        }
        body = "".join(f"<property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
                       for k, v in props.items())
        (conf / "hbase-site.xml").write_text(f"<?xml version=\"1.0\"?>\n<configuration>\n{body}</configuration>\n")
        (conf / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=%d %p [%t] %c{2}: %m%n\n"
            "log4j.logger.org.apache.hadoop.hbase.master.HMaster=INFO\n"
            "log4j.logger.org.apache.hadoop.hbase.thrift=INFO\n")
        return conf

    def _java(self, heap: str, main: str, *args: str) -> list[str]:
        conf = self._write_conf()
        return ["java", f"-Xmx{heap}", *JVM_FLAGS, *self.extra_jvm, f"-Dlog4j.configuration=file:{conf / 'log4j.properties'}",
                f"-Dhbase.log.dir={self.workdir / 'logs'}", "-cp", f"{conf}:{classpath()}", main, *args]

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        with open(self.workdir / f"{name}.log", "ab") as log:
            return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self, name: str) -> str:
        try:
            return (self.workdir / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 180) -> HBase:
        """Start the master, wait until it serves (a Thrift call succeeds), as the sinks will need."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.master = self._spawn("master", self._java("1g", "org.apache.hadoop.hbase.master.HMaster", "start"))
        deadline = time.monotonic() + timeout
        while not listening(self.zk_port):
            self._check_alive(self.master, "master", deadline)
            time.sleep(0.3)
        self.thrift_proc = self._spawn("thrift", self._java(
            "512m", "org.apache.hadoop.hbase.thrift.ThriftServer", "-p", str(self.thrift_port), "start"))
        while True:
            self._check_alive(self.master, "master", deadline)
            self._check_alive(self.thrift_proc, "thrift", deadline)
            if listening(self.thrift_port) and self.ready():
                return self
            time.sleep(1)

    def ready(self) -> bool:
        """Does HBase serve? A table operation through the Thrift server proves the master has finished
        initialising (meta assigned)."""
        import happybase

        try:
            conn = happybase.Connection("127.0.0.1", self.thrift_port, timeout=20000)
            try:
                if b"pyflume_probe" not in conn.tables():
                    conn.create_table("pyflume_probe", {"f": {}})
                conn.table("pyflume_probe").put(b"r", {b"f:c": b"1"})
                return True
            finally:
                conn.close()
        except Exception:  # noqa: BLE001 - still starting: retry until the deadline
            return False

    def _check_alive(self, proc: subprocess.Popen[bytes] | None, name: str, deadline: float) -> None:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"HBase {name} exited with {proc.returncode}:\n{self.log(name)[-4000:]}")
        if time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"HBase did not start in time:\n{self.log('master')[-3000:]}\n"
                               f"{self.log('thrift')[-2000:]}")

    def connection(self):  # noqa: ANN201 - a happybase.Connection
        import happybase

        return happybase.Connection("127.0.0.1", self.thrift_port, timeout=60000)

    def create_table(self, name: str, *families: str) -> None:
        conn = self.connection()
        try:
            if name.encode() in conn.tables():
                conn.disable_table(name)
                conn.delete_table(name)
            conn.create_table(name, {f: {"max_versions": 1} for f in families})
        finally:
            conn.close()

    def scan(self, table: str) -> dict[bytes, dict[bytes, bytes]]:
        """Every row of ``table`` read back by a plain happybase scan."""
        conn = self.connection()
        try:
            return dict(conn.table(table).scan(batch_size=5000))
        finally:
            conn.close()

    def stop(self) -> None:
        stop_group(self.thrift_proc, 60)
        stop_group(self.master, 60)
