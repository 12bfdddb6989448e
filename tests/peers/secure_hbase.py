"""Apache HBase 2.6.1 standalone and its Thrift server in secure mode, against the session's MIT KDC.

Server side (``server_conf``): Kerberos authentication for Hadoop and HBase (``hadoop.security.authentication`` and
``hbase.security.authentication``; HBase's UserProvider logs in only when both say ``kerberos``, so core-site.xml says
it too), the master's, region server's and Thrift server's principal and keytab, and SASL/GSSAPI on the Thrift
transport (``hbase.thrift.security.qop``: auth, auth-int or auth-conf). The Thrift server runs each call as the
client's principal (its short name) through a proxy user of its own login, so the region server lets ``hbase``
impersonate (``hadoop.proxyuser.hbase.*``, read from core-site.xml by Hadoop's ProxyUsers). ZooKeeper stays
unauthenticated (no JAAS configuration), as HBase allows; authorization (the AccessController) stays off: the test
is about authentication.

One principal, ``hbase/<host>``, serves the three: HBase 2.6.1's Thrift server offers SASL as ``hbase@<host>``, where
``<host>`` is Java's canonical name of this machine (``DNS.getDefaultHost``), not the principal's host part, so the
principal must be that host's (``java_host``); a Thrift client asks for that service principal. The Thrift server's
is configured as ``hbase/_HOST@REALM``, so that a wrong guess of the host fails its login at start, by name.

Client side: ``KerberosClient`` is HBase's own Java client (``java/HBaseKerberosClient.java``) logged in from a keytab,
one JVM kept running for the session, that creates tables and reads them back.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
from pathlib import Path
from xml.sax.saxutils import escape

from . import stop_group
from .hbase import HBase, classpath
from .kdc import KDC

__all__ = ["KerberosClient", "SecureHBase", "java_host", "server_conf"]

QOPS = ("auth", "auth-int", "auth-conf")
_JAVA = Path(__file__).with_name("java") / "HBaseKerberosClient.java"


def java_host() -> str:
    """This machine's name as Java's ``InetAddress.getLocalHost().getCanonicalHostName()`` gives it (what Hadoop's
    ``DNS.getDefaultHost("default")`` returns): the reverse lookup of the host name's address."""
    try:
        ip = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "localhost"
    try:
        return socket.gethostbyaddr(ip)[0].rstrip(".").lower()
    except OSError:
        return ip


def jvm_flags(kdc: KDC) -> list[str]:
    """Java's Kerberos on the test realm; Hadoop 2.10's KerberosUtil reads sun.security.krb5's default realm."""
    return [f"-Djava.security.krb5.conf={kdc.krb5_conf}", "-Dsun.security.krb5.disableReferrals=true",
            "--add-exports", "java.security.jgss/sun.security.krb5=ALL-UNNAMED",
            "--add-opens", "java.security.jgss/sun.security.krb5=ALL-UNNAMED"]


def server_conf(principal: str, keytab: Path, qop: str) -> dict[str, str]:
    """hbase-site.xml properties of a secure standalone HBase whose services are ``principal`` (key in ``keytab``),
    its Thrift server requiring SASL with quality of protection ``qop``."""
    if qop not in QOPS:
        raise ValueError(f"qop {qop!r}: expected one of {', '.join(QOPS)}")
    conf = {
        "hadoop.security.authentication": "kerberos",
        "hbase.security.authentication": "kerberos",
        "hbase.master.kerberos.principal": principal,
        "hbase.master.keytab.file": str(keytab),
        "hbase.regionserver.kerberos.principal": principal,
        "hbase.regionserver.keytab.file": str(keytab),
        # _HOST: the Thrift server substitutes the host it also offers SASL on, so a wrong guess of java_host()
        # shows as a failed login (no such key in the keytab) instead of a SASL failure at the first client
        "hbase.thrift.kerberos.principal": f"{principal.split('/')[0]}/_HOST@{principal.rsplit('@', 1)[1]}",
        "hbase.thrift.keytab.file": str(keytab),
        "hbase.thrift.security.qop": qop,
        "hbase.regionserver.thrift.ipaddress": "127.0.0.1",  # loopback only (the default is every address)
    }
    conf.update(_proxy_user(principal))
    return conf


def _proxy_user(principal: str) -> dict[str, str]:
    short = principal.split("/", 1)[0].split("@", 1)[0]
    return {f"hadoop.proxyuser.{short}.hosts": "*", f"hadoop.proxyuser.{short}.groups": "*"}


def _site(props: dict[str, str]) -> str:
    body = "".join(f"<property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
                   for k, v in props.items())
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


class SecureHBase(HBase):
    """HBase standalone and its Thrift server on loopback, Kerberos everywhere, SASL (``qop``) on Thrift.

    ``principal`` is ``hbase/<java_host()>@REALM``, made in ``kdc`` with its keytab under ``workdir``."""

    def __init__(self, workdir: Path, kdc: KDC, qop: str = "auth-conf"):
        self.kdc = kdc
        self.host = java_host()
        self.principal = kdc.principal(f"hbase/{self.host}")
        self.keytab = Path(workdir) / "hbase.keytab"
        self.qop = qop
        super().__init__(workdir, conf=server_conf(self.principal, self.keytab, qop), jvm=jvm_flags(kdc))

    def _write_conf(self) -> Path:
        conf = super()._write_conf()
        core = {"hadoop.security.authentication": "kerberos", **_proxy_user(self.principal)}
        (conf / "core-site.xml").write_text(_site(core))
        with open(conf / "log4j.properties", "a") as f:  # the Thrift server's login and SASL peers, for the tests
            f.write("log4j.logger.org.apache.hadoop.security.UserGroupInformation=INFO\n")
        (conf / "client-log4j.properties").write_text(  # stdout is the client's answers
            "log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stderr.target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stderr.layout.ConversionPattern=%d %p [%t] %c{2}: %m%n\n"
            "log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR\n")
        return conf

    @property
    def conf_dir(self) -> Path:
        """The hbase-site.xml and core-site.xml of the servers (clients need the same security settings)."""
        return self.workdir / "conf"

    def start(self, timeout: float = 240) -> SecureHBase:
        if not self.keytab.exists():
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.kdc.add(self.principal.split("@")[0], self.keytab)
        super().start(timeout)
        return self

    def stop(self) -> None:
        """A throwaway cluster: SIGKILL after a short grace (its orderly shutdown waits ~45 s on its chores)."""
        stop_group(self.thrift_proc, 5)
        stop_group(self.master, 5)

    def ready(self) -> bool:
        """The master finished initialising (meta and namespace assigned: it logs so) and the Thrift server logged
        in; plain Thrift calls are refused now, so the Java client checks the rest (``KerberosClient``)."""
        if "Master has completed initialization" not in self.log("master"):
            return False
        thrift = self.log("thrift")
        if f"Login successful for user {self.principal}" in thrift:
            return True
        if "Login successful for user" in thrift or "Login failure" in thrift:
            raise RuntimeError(f"the Thrift server did not log in as {self.principal}, the principal this peer made "
                               f"for it: Java's canonical name of this host is not {self.host} (Python's reverse "
                               f"lookup of {socket.gethostname()}):\n{thrift[-3000:]}")
        return False


class KerberosClient:
    """HBase's Java client as ``principal`` (from ``keytab``), one JVM answering commands until ``close``."""

    def __init__(self, cluster: SecureHBase, principal: str, keytab: Path, workdir: Path):
        self.cluster = cluster
        self.principal = principal
        classes = _compiled()
        cmd = ["java", "-Xmx384m", *cluster.extra_jvm, "--add-opens", "java.base/java.lang=ALL-UNNAMED",
               "--add-opens", "java.base/java.nio=ALL-UNNAMED",
               f"-Dlog4j.configuration=file:{cluster.conf_dir / 'client-log4j.properties'}",
               "-cp", f"{cluster.conf_dir}{os.pathsep}{classes}{os.pathsep}{classpath()}", "HBaseKerberosClient",
               principal, str(keytab)]
        workdir.mkdir(parents=True, exist_ok=True)
        self._stderr_path = workdir / f"client-{principal.split('@')[0].replace('/', '_')}.log"
        self._stderr = open(self._stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     start_new_session=True)
        self._lock = threading.Lock()

    def command(self, line: str, timeout: float = 120) -> list[str]:
        """The lines answering ``line``; RuntimeError with HBase's error (and the client's log) when it failed."""
        with self._lock:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the HBase Java client exited with {self.proc.returncode}: {self.log()[-3000:]}")
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
            timer = threading.Timer(timeout, lambda: stop_group(self.proc, 5))
            timer.start()
            try:
                out = []
                for raw in self.proc.stdout:
                    text = raw.decode().rstrip("\n")
                    if text == "END":
                        return out
                    if text.startswith("ERROR "):
                        raise RuntimeError(f"HBase Java client: {line}: {text[6:]}")
                    out.append(text)
            finally:
                timer.cancel()
            raise RuntimeError(f"the HBase Java client stopped answering ({line}): {self.log()[-3000:]}")

    def log(self) -> str:
        return self._stderr_path.read_text(errors="replace")

    def create_table(self, name: str, *families: str) -> None:
        self.command(" ".join(("create", name, *families)))

    def scan(self, table: str) -> dict[bytes, dict[bytes, bytes]]:
        """Every row of ``table``: row key -> {family:qualifier -> value}."""
        rows: dict[bytes, dict[bytes, bytes]] = {}
        for text in self.command(f"scan {table}"):
            row, column, value = (base64.b64decode(x) for x in text.split(" "))
            rows.setdefault(row, {})[column] = value
        return rows

    def whoami(self) -> str:
        return self.command("whoami")[0]

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            stop_group(self.proc, 5)
        self._stderr.close()


def _compiled() -> Path:
    """HBaseKerberosClient compiled against HBase's jars, once per change of its source."""
    classes = Path(classpath()[:-len("/lib/*")]) / "classes"
    stamp = classes / f".built-{int(_JAVA.stat().st_mtime)}"
    if not stamp.exists():
        classes.mkdir(exist_ok=True)
        proc = subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", classpath(), str(_JAVA)],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"javac {_JAVA.name}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        stamp.write_text("")
    return classes

