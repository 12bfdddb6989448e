"""A kerberized MiniDFSCluster, set up the way Hadoop's own secure HDFS tests set it up, and Hadoop's own
``hdfs dfs -text`` run as a Kerberos principal.

Server side (``server_conf``): ``hadoop.security.authentication = kerberos``, the namenode, datanode and SPNEGO
principals (``hdfs/localhost``, ``HTTP/localhost``), block access tokens on (a secure datanode refuses to start
without them) and SASL on the data transfer protocol (``dfs.data.transfer.protection = authentication``) in place of
privileged ports (``ignore.secure.ports.for.testing``, as Hadoop's tests do without root). Client side
(``write_client_conf``): the ``HADOOP_CONF_DIR`` a client of that cluster needs: the same authentication, the
namenode's principal pattern and the data transfer protection.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

from . import hdfs
from .kdc import KDC

__all__ = ["server_conf", "write_client_conf", "hadoop_text_as", "SERVICE_PRINCIPALS"]

SERVICE_PRINCIPALS = ("hdfs/localhost", "HTTP/localhost")


def server_conf(kdc: KDC, keytab: Path, https_port: int) -> dict[str, str]:
    """Hadoop properties of a secure MiniDFSCluster whose services' keys are in ``keytab``; HTTP and HTTPS (namenode
    on ``https_port``; ``write_ssl_server`` makes the key store)."""
    hdfs_p, http_p = (kdc.principal(p) for p in SERVICE_PRINCIPALS)  # the datanode's _HOST would be 127.0.0.1
    return {
        "hadoop.security.authentication": "kerberos",
        "hadoop.security.authorization": "true",
        "dfs.namenode.kerberos.principal": hdfs_p,
        "dfs.namenode.keytab.file": str(keytab),
        "dfs.datanode.kerberos.principal": hdfs_p,
        "dfs.datanode.keytab.file": str(keytab),
        "dfs.web.authentication.kerberos.principal": http_p,
        "dfs.web.authentication.kerberos.keytab": str(keytab),
        "dfs.namenode.kerberos.internal.spnego.principal": http_p,
        "hadoop.http.authentication.type": "kerberos",
        "hadoop.http.authentication.kerberos.principal": http_p,
        "hadoop.http.authentication.kerberos.keytab": str(keytab),
        "hadoop.http.authentication.simple.anonymous.allowed": "false",
        "dfs.block.access.token.enable": "true",
        "dfs.data.transfer.protection": "authentication",
        "ignore.secure.ports.for.testing": "true",
        "dfs.http.policy": "HTTP_AND_HTTPS",
        "dfs.namenode.https-address": f"localhost:{https_port}",
        "dfs.datanode.https.address": "localhost:0",
        # the namenode drops a client connection idle for 4 s, so a client that pauses must authenticate again
        # (with tickets it renewed, once the first ones expired)
        "ipc.client.connection.maxidletime": "2000",
        "ipc.client.connection.idle-scan-interval.ms": "1000",
        "hadoop.proxyuser.flume.hosts": "*",
        "hadoop.proxyuser.flume.groups": "*",
        "hadoop.proxyuser.flume.users": "*",
    }


def write_ssl_server(directory: Path, keystore: Path, password: str) -> Path:
    """A resources directory with the ssl-server.xml of the cluster's HTTPS endpoints (a PKCS12 key store)."""
    directory.mkdir(parents=True, exist_ok=True)
    props = {"ssl.server.keystore.location": str(keystore), "ssl.server.keystore.password": password,
             "ssl.server.keystore.keypassword": password, "ssl.server.keystore.type": "pkcs12"}
    body = "".join(f"<property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
                   for k, v in props.items())
    (directory / "ssl-server.xml").write_text(f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n')
    return directory


def jvm_flags(kdc: KDC) -> list[str]:
    return [f"-Djava.security.krb5.conf={kdc.krb5_conf}", "-Dsun.security.krb5.disableReferrals=true"]


def write_client_conf(directory: Path, kdc: KDC, fs_uri: str) -> Path:
    """A HADOOP_CONF_DIR for clients of the secure cluster at ``fs_uri``; returns ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    core = {"fs.defaultFS": fs_uri, "hadoop.security.authentication": "kerberos"}
    site = {"dfs.namenode.kerberos.principal": f"hdfs/_HOST@{kdc.realm}",
            "dfs.data.transfer.protection": "authentication", "dfs.block.access.token.enable": "true",
            "dfs.replication": "1"}  # one datanode (else Flume rolls at every batch: "Block Under-replication")
    for name, props in (("core-site.xml", core), ("hdfs-site.xml", site)):
        body = "".join(f"<property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
                       for k, v in props.items())
        (directory / name).write_text(f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n')
    (directory / "log4j.properties").write_text(
        "log4j.rootLogger=ERROR,stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stderr.target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.stderr.layout.ConversionPattern=%p %c: %m%n\n")
    return directory


def hadoop_text_as(kdc: KDC, conf_dir: Path, ccache: Path, *args: str, timeout: float = 120,
                   check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """``hdfs dfs <args>`` (FsShell) with the client configuration ``conf_dir`` and the Kerberos tickets in
    ``ccache`` (``kdc.kinit`` makes them; an empty or missing ccache means no credentials)."""
    cp = f"{conf_dir}{os.pathsep}{hdfs.classpath()}"
    cmd = ["java", "-Xmx512m", *hdfs._OPENS, *jvm_flags(kdc), "-cp", cp, "org.apache.hadoop.fs.FsShell", *args]
    env = dict(os.environ, KRB5CCNAME=f"FILE:{ccache}", **kdc.env)
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise RuntimeError(f"hdfs dfs {' '.join(args)} failed: {proc.stderr.decode(errors='replace')[-3000:]}")
    return proc
