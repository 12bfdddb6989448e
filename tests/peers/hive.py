"""Apache Hive 4.0.1 as a real peer for the Hive sink: a standalone metastore (embedded Derby, warehouse on the
session's MiniDFS) and Hive's own query path (``HiveQuery.java``: Hive's Driver, the compiler, ACID snapshot and
fetch operator HiveServer2 runs, in one long-lived JVM) to create tables and read them back.

Hive 4.0.1 runs on this machine's OpenJDK 17 with the ``--add-opens`` flags of ``OPENS``. Four jars that Maven
brings along are left off the class path: ``hadoop-client-api`` (Hadoop's shaded client, which clashes with
hadoop-common 3.3.6), ``slf4j-reload4j`` (a second SLF4J binding), ``jline-3.9.0`` (an older copy of the
jline-reader classes that sqlline, run by schematool, needs in 3.12) and ``antlr-runtime-3.3`` (older than the
ANTLR runtime hive-exec bundles, which Hive's parser needs). The metastore's Derby schema script comes
from the metastore's binary distribution on Maven Central (``hive-standalone-metastore-server:4.0.1:tar.gz:bin``);
only its ``scripts/metastore/upgrade/derby`` directory is kept.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

from . import listening, maven, stop_group

__all__ = ["HIVE_VERSION", "OPENS", "STREAMING", "HiveMetastore", "HiveQuery", "home", "streaming_home"]

HIVE_VERSION = "4.0.1"
ARTIFACTS = [
    f"org.apache.hive:hive-standalone-metastore-server:{HIVE_VERSION}",
    f"org.apache.hive:hive-exec:{HIVE_VERSION}",
    "org.apache.hadoop:hadoop-common:3.3.6",
    "org.apache.hadoop:hadoop-hdfs-client:3.3.6",
    "org.apache.hadoop:hadoop-hdfs:3.3.6",
    "org.apache.hadoop:hadoop-mapreduce-client-core:3.3.6",
    # Hive's own writer (INSERT) runs a MapReduce job in-process (LocalJobRunner)
    "org.apache.hadoop:hadoop-mapreduce-client-jobclient:3.3.6",
    "org.apache.hadoop:hadoop-mapreduce-client-common:3.3.6",
]
_LEFT_OFF = ("hadoop-client-api-", "slf4j-reload4j-", "jline-3.9.", "antlr-runtime-3.3.")
_DIST = f"org.apache.hive:hive-standalone-metastore-server:{HIVE_VERSION}:tar.gz:bin"
OPENS = [f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in (
    "java.lang", "java.lang.reflect", "java.util", "java.util.concurrent", "java.util.concurrent.atomic",
    "java.util.regex", "java.net", "java.nio", "sun.nio.ch", "java.io", "java.text", "java.time")] + [
    "--add-opens=java.sql/java.sql=ALL-UNNAMED"]
_JAVA = Path(__file__).with_name("java") / "HiveQuery.java"
#: Hive's own streaming writer (the benchmark's comparison row). No 4.x hive-streaming is on Maven Central (Hive
#: 4.0.1 ships its jar only in the binary distribution), and the last published one, 3.1.3, does not link against
#: Hive 4.0.1 (``NoSuchFieldError: DYNAMICPARTITIONINGMODE``). So its source jar (from Maven Central) is compiled
#: against Hive 4.0.1's jars at run time, after the edits of ``_PORT``: configuration names Hive 4 renamed, the
#: serde's own ``initialize``, a shared-read lock for ``setShared``, and the partition (only made when missing) built
#: as a metastore ``Partition`` instead of through ``AddPartitionDesc``, which Hive 4 removed.
STREAMING = "org.apache.hive:hive-streaming:3.1.3"
_PORT: dict[str, list[tuple[str, str]]] = {
    "AbstractRecordWriter": [("ConfVars.DEFAULTPARTITIONNAME", "ConfVars.DEFAULT_PARTITION_NAME")],
    "StrictDelimitedInputWriter": [("SerDeUtils.initializeSerDe(serde, conf, tableProps, null)",
                                    "serde.initialize(conf, tableProps, null)")],
    "StrictJsonWriter": [("SerDeUtils.initializeSerDe(serde, conf, tableProps, null)",
                          "serde.initialize(conf, tableProps, null)")],
    "StrictRegexWriter": [("SerDeUtils.initializeSerDe(serde, conf, tableProps, null)",
                           "serde.initialize(conf, tableProps, null)")],
    "HiveStreamingConnection": [
        ("ConfVars.DYNAMICPARTITIONINGMODE", "ConfVars.DYNAMIC_PARTITIONING_MODE"),
        (".setShared()", ".setSharedRead()"),
        ("import org.apache.hadoop.hive.ql.plan.AddPartitionDesc;\n", ""),
        ("AddPartitionDesc addPartitionDesc = new AddPartitionDesc(database, table, true);", ""),
        ("addPartitionDesc.addPartition(partSpec, partLocation);",
         "org.apache.hadoop.hive.metastore.api.StorageDescriptor sd ="
         " new org.apache.hadoop.hive.metastore.api.StorageDescriptor(tableObject.getTTable().getSd());"
         " sd.setLocation(partLocation);"),
        ("Hive.convertAddSpecToMetaPartition(tableObject, addPartitionDesc.getPartition(0), conf)",
         "new Partition(partitionValues, database, table, 0, 0, sd, new java.util.HashMap<>())"),
        ("} catch (HiveException | TException e) {\n      throw new StreamingException(\"Unable to creation",
         "} catch (TException e) {\n      throw new StreamingException(\"Unable to creation"),
    ],
}
_STREAM_JAVA = _JAVA.with_name("HiveStreamWriter.java")


def home() -> Path:
    """The resolved jars (``lib``), the Derby schema scripts (``scripts``) and the compiled HiveQuery (``classes``)."""
    target = maven.resolve(f"hive-{HIVE_VERSION}", ARTIFACTS)
    scripts = target / "scripts"
    if not (scripts / ".complete").exists():
        dist = target / "dist"
        subprocess.run(["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={_DIST}", f"-DoutputDirectory={dist}"],
                       check=True, capture_output=True, timeout=900)
        archive = next(dist.glob("*.tar.gz"))
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if "/scripts/metastore/upgrade/derby/" in member.name and member.isfile():
                    member.name = "derby/" + member.name.rsplit("/", 1)[1]
                    tar.extract(member, scripts, filter="data")
        archive.unlink()
        (scripts / ".complete").write_text("")
    classes = target / "classes"
    stamp = classes / f".built-{int(_JAVA.stat().st_mtime)}"
    if not stamp.exists():
        classes.mkdir(exist_ok=True)
        subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", classpath(target), str(_JAVA)], check=True,
                       capture_output=True, timeout=300)
        stamp.write_text("")
    return target


def streaming_home() -> Path:
    """hive-streaming (3.1.3's source, ported by ``_PORT``) and HiveStreamWriter, compiled into ``classes``."""
    target = maven.cache_root() / f"hive-streaming-{STREAMING.rsplit(':', 1)[1]}-on-{HIVE_VERSION}"
    sources = target / "sources"
    if not (sources / ".complete").exists():
        subprocess.run(["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={STREAMING}:jar:sources",
                        f"-DoutputDirectory={sources}"], check=True, capture_output=True, timeout=900)
        (sources / ".complete").write_text("")
    classes = target / "classes"
    stamp = classes / f".built-{int(_STREAM_JAVA.stat().st_mtime)}-{int(Path(__file__).stat().st_mtime)}"
    if not stamp.exists():
        shutil.rmtree(classes, ignore_errors=True)
        src = target / "src"
        shutil.rmtree(src, ignore_errors=True)
        with zipfile.ZipFile(next(sources.glob("*-sources.jar"))) as jar:
            names = [n for n in jar.namelist() if n.startswith("org/apache/hive/streaming/") and n.endswith(".java")]
            jar.extractall(src, names)
        for cls, edits in _PORT.items():
            path = src / "org" / "apache" / "hive" / "streaming" / f"{cls}.java"
            text = path.read_text()
            for old, new in edits:
                if old not in text:
                    raise RuntimeError(f"porting {STREAMING} to Hive {HIVE_VERSION}: {old!r} not in {cls}.java")
                text = text.replace(old, new)
            path.write_text(text)
        classes.mkdir(parents=True)
        proc = subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", classpath(),
                               *(str(f) for f in sorted(src.rglob("*.java"))), str(_STREAM_JAVA)],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"javac HiveStreamWriter and {STREAMING}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        stamp.write_text("")
    return target


def classpath(target: Path | None = None) -> str:
    lib = (target or home()) / "lib"
    return os.pathsep.join(str(j) for j in sorted(lib.glob("*.jar")) if not j.name.startswith(_LEFT_OFF))


def _site(props: dict[str, str]) -> str:
    body = "".join(f"<property><name>{k}</name><value>{v}</value></property>\n" for k, v in props.items())
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


_LOG4J2 = """status = error
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


class HiveMetastore:
    """A standalone Hive metastore on a loopback port: Derby under ``workdir``, the warehouse on ``fs_uri``."""

    def __init__(self, workdir: Path, port: int, fs_uri: str):
        self.workdir = Path(workdir)
        self.port = port
        self.fs_uri = fs_uri
        self.conf = self.workdir / "conf"
        self.log_path = self.workdir / "metastore.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"thrift://127.0.0.1:{self.port}"

    def _configure(self) -> None:
        self.conf.mkdir(parents=True, exist_ok=True)
        common = {
            "fs.defaultFS": self.fs_uri,
            "metastore.warehouse.dir": f"{self.fs_uri}/warehouse",
            "hive.txn.manager": "org.apache.hadoop.hive.ql.lockmgr.DbTxnManager",
            "hive.support.concurrency": "true",
            "metastore.metadata.transformer.class": " ",  # no capability checks: tables are written as created
        }
        server = dict(common, **{
            "javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={self.workdir / 'metastore_db'};create=true",
            "javax.jdo.option.ConnectionDriverName": "org.apache.derby.jdbc.EmbeddedDriver",
            "metastore.thrift.port": str(self.port),
            "metastore.schema.verification": "false",
            "metastore.event.db.notification.api.auth": "false",
            "metastore.compactor.initiator.on": "false",
        })
        (self.conf / "metastore-site.xml").write_text(_site(server))
        client = self.workdir / "client-conf"
        client.mkdir(exist_ok=True)
        (client / "hive-site.xml").write_text(_site(dict(common, **{
            "hive.metastore.uris": self.uri,
            "hive.execution.engine": "mr",
            "hive.exec.scratchdir": str(self.workdir / "scratch"),
            "hive.exec.local.scratchdir": str(self.workdir / "local-scratch"),
            "hive.fetch.task.conversion": "more",
            "mapreduce.framework.name": "local",
            "hive.stats.autogather": "false",
            "hive.vectorized.execution.enabled": "false",
        })))
        for d in (self.conf, client):
            (d / "log4j2.properties").write_text(_LOG4J2)

    def _java(self, conf: Path, *args: str) -> list[str]:
        return ["java", "-Xmx768m", *OPENS, f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
                "-cp", f"{conf}{os.pathsep}{home() / 'classes'}{os.pathsep}{classpath()}", *args]

    def start(self, timeout: float = 240) -> HiveMetastore:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._configure()
        db = self.workdir / "metastore_db"
        template = home() / "derby-template"
        if not db.exists() and template.exists():
            shutil.copytree(template, db)  # an empty metastore schema made by schematool in an earlier session
        if not db.exists():
            self._init_schema(timeout)
            scratch = home() / f"derby-template.{os.getpid()}"
            shutil.copytree(db, scratch)
            try:
                scratch.rename(template)
            except OSError:  # another session made it first
                shutil.rmtree(scratch, ignore_errors=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._java(self.conf, "org.apache.hadoop.hive.metastore.HiveMetaStore", "-p",
                                                str(self.port)),
                                     cwd=str(self.workdir), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Hive metastore exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if listening(self.port, timeout=1):
                return self
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"Hive metastore not listening on {self.port} within {timeout} s")

    def _init_schema(self, timeout: float) -> None:
        """Hive's schematool creates the metastore's tables (transactions and locks included) in Derby."""
        env = dict(os.environ, METASTORE_HOME=str(home() / "scripts" / "_home"))
        upgrade = home() / "scripts" / "_home" / "scripts" / "metastore" / "upgrade"
        if not upgrade.exists():
            upgrade.mkdir(parents=True)
            (upgrade / "derby").symlink_to(home() / "scripts" / "derby")
        proc = subprocess.run(self._java(self.conf, "org.apache.hadoop.hive.metastore.tools.schematool."
                                         "MetastoreSchemaTool", "-initSchema", "-dbType", "derby"),
                              env=env, capture_output=True, timeout=timeout, cwd=str(self.workdir))
        if proc.returncode != 0:
            raise RuntimeError(f"Hive schematool failed: {proc.stderr.decode(errors='replace')[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_group(self.proc, 30)
        if self.proc is not None:
            self._log.close()
        self.proc = None

    def stream_writer(self, *args: str) -> subprocess.Popen[bytes]:
        """HiveStreamWriter (Hive's own streaming writer) started with ``args``; stdin and stdout piped, stderr to
        ``hive-stream.err`` in the workdir."""
        conf = self.workdir / "client-conf"
        command = ["java", "-Xmx768m", *OPENS, f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
                   "-cp", os.pathsep.join([str(conf), str(streaming_home() / "classes"), classpath()]),
                   "HiveStreamWriter", *args]
        with open(self.workdir / "hive-stream.err", "ab") as err:
            return subprocess.Popen(command, cwd=str(self.workdir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, start_new_session=True)

    def query_client(self) -> HiveQuery:
        return HiveQuery(self)


class HiveQuery:
    """One JVM running Hive's Driver against the metastore: ``run(sql)`` returns the result rows, each a list of
    column texts (NULL as ``NULL``); a statement Hive refuses raises RuntimeError with Hive's message."""

    def __init__(self, ms: HiveMetastore, timeout: float = 300):
        self.ms = ms
        self.timeout = timeout
        self.err_path = ms.workdir / "hive-query.err"
        self._err = open(self.err_path, "ab")
        conf = ms.workdir / "client-conf"
        self.proc = subprocess.Popen(ms._java(conf, "HiveQuery"), cwd=str(ms.workdir), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, start_new_session=True)
        self._expect("\x01READY")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"HiveQuery exited:\n{self.err_path.read_text(errors='replace')[-3000:]}")
        return line.decode("utf-8", "replace").rstrip("\n")

    def _expect(self, text: str) -> None:
        line = self._line()
        if line != text:
            raise RuntimeError(f"HiveQuery said {line!r}, expected {text!r}")

    def run(self, sql: str) -> list[list[str]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join(sql.split()).encode() + b"\n")
        self.proc.stdin.flush()
        rows = []
        while True:
            line = self._line()
            if line.startswith("\x01OK"):
                return rows
            if line.startswith("\x01ERR"):
                raise RuntimeError(f"Hive refused {sql!r}: {line[5:]}")
            rows.append(line.split("\t"))

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._err.close()
