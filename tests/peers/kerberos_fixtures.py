"""Session fixtures of the Kerberos tests (a pytest plugin of tests/conftest.py): one MIT KDC (a throwaway realm
on a loopback port, principals and keytabs made for this session) and one kerberized MiniDFSCluster using it.
Without MIT Kerberos' tools, java or mvn the tests skip with the reason (PYFLUME_REQUIRE_PEERS=1 makes that a
failure)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def require_kdc() -> None:
    from peers.kdc import missing_kdc_reason

    reason = missing_kdc_reason()
    if reason is None:
        return
    if os.environ.get("PYFLUME_REQUIRE_PEERS") == "1":
        pytest.fail(f"PYFLUME_REQUIRE_PEERS=1 but {reason}")
    pytest.skip(reason)


@dataclass
class Realm:
    """The session's KDC and the principals the tests use, each with its own keytab."""

    kdc: object  # peers.kdc.KDC
    services_keytab: Path  # hdfs/localhost and HTTP/localhost: the cluster's
    flume: str  # the agent's principal (the namenode lets it impersonate anyone: hadoop.proxyuser.flume.*)
    flume_keytab: Path
    short: str  # a principal whose tickets live 20 s (the renewal test)
    short_keytab: Path
    host_keytab: Path  # flume/<this host's canonical name>: what flume/_HOST@REALM means here

    def ccache_for(self, principal: str, keytab: Path, directory: Path) -> Path:
        """A fresh file ccache holding ``principal``'s TGT (for Java clients such as ``hdfs dfs``)."""
        cc = directory / f"cc-{principal.replace('/', '_')}"
        self.kdc.kinit(principal, keytab, cc)
        return cc


@pytest.fixture(scope="session")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    require_kdc()
    from peers.kdc import KDC

    kdc = KDC(tmp_path_factory.mktemp("kdc")).start()
    services = kdc.add("hdfs/localhost")
    kdc.add("HTTP/localhost", services)
    from agent.kerberos import resolve_principal

    flume = kdc.principal("flume/localhost")
    flume_keytab = kdc.add("flume/localhost")
    on_this_host = resolve_principal(f"flume/_HOST@{kdc.realm}")
    # a second ktadd of the same principal would change its key and make the first keytab stale
    host_keytab = flume_keytab if on_this_host == flume else kdc.add(on_this_host.split("@")[0],
                                                                      kdc.workdir / "flume-this-host.keytab")
    yield Realm(kdc, services, flume, flume_keytab, kdc.principal("renew/localhost"),
                kdc.add("renew/localhost", max_life="20s"), host_keytab)
    kdc.stop()


@dataclass
class SecureHDFS:
    """A kerberized MiniDFSCluster and the HADOOP_CONF_DIR of its clients."""

    cluster: object  # peers.hdfs.MiniDFS
    conf_dir: Path
    realm: Realm
    hdfs_ccache: Path  # hdfs/localhost's TGT: the superuser reading files back
    https_port: int  # the namenode's HTTPS (WebHDFS over TLS: swebhdfs://localhost:<port>)
    ca: Path  # the PEM certificate its HTTPS endpoints present (self-signed, for localhost and 127.0.0.1)
    _native: object = None  # an hdfs_native.Client as hdfs/localhost

    @property
    def uri(self) -> str:
        return f"hdfs://localhost:{self.cluster.rpc_port}"

    def closed_lines(self, path: str) -> list[str]:
        """The lines of the closed FlumeData files under ``path``, read in process as hdfs/localhost (hdfs-native;
        cheap enough to poll; the tests check the final state with Hadoop's own ``hdfs dfs``)."""
        from hdfs_native import Client

        if self._native is None:
            self._native = Client(self.uri, config_dir=str(self.conf_dir),
                                  kerberos_principal=self.realm.kdc.principal("hdfs/localhost"),
                                  kerberos_keytab=str(self.realm.services_keytab),
                                  kerberos_cache=f"FILE:{self.hdfs_ccache}.native")
        try:
            names = [st.path for st in self._native.list_status(path)]
        except FileNotFoundError:
            return []
        out: list[str] = []
        for name in sorted(names):
            base = name.rsplit("/", 1)[-1]
            if base.startswith("FlumeData") and not base.endswith(".tmp"):
                try:
                    out += self._native.read(f"{path}/{base}").read().decode().split()
                except FileNotFoundError:  # renamed since the listing: seen at the next poll
                    continue
        return out

    def dfs(self, *args: str, ccache: Path | None = None, check: bool = True):  # noqa: ANN201
        """``hdfs dfs <args>`` as the HDFS principal (or with the tickets in ``ccache``)."""
        from peers.secure_hdfs import hadoop_text_as

        return hadoop_text_as(self.realm.kdc, self.conf_dir, ccache or self.hdfs_ccache, *args, check=check)


@pytest.fixture(scope="session")
def secure_hdfs(realm: Realm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureHDFS]:
    from conftest import free_port, require_java_peers
    from peers import secure_hdfs as sh

    require_java_peers()
    from peers.certs import self_signed
    from peers.hdfs import MiniDFS

    work = tmp_path_factory.mktemp("secure-dfs")
    (work / "tls").mkdir()
    ca, _, p12 = self_signed(work / "tls")
    https_port = free_port()
    cluster = MiniDFS(work / "dfs", free_port(), free_port(),
                      conf=sh.server_conf(realm.kdc, realm.services_keytab, https_port), jvm=sh.jvm_flags(realm.kdc),
                      resources=sh.write_ssl_server(work / "resources", p12, "secret")).start()

    try:
        conf_dir = sh.write_client_conf(work / "client-conf", realm.kdc, f"hdfs://localhost:{cluster.rpc_port}")
        cc = realm.ccache_for("hdfs/localhost", realm.services_keytab, work)
        yield SecureHDFS(cluster, conf_dir, realm, cc, https_port, ca)
    finally:
        cluster.stop()


@pytest.fixture
def kerberos_client_env(realm: Realm, secure_hdfs: SecureHDFS, monkeypatch: pytest.MonkeyPatch,
                        tmp_path: Path) -> None:
    """The environment an agent on a kerberized cluster's edge node has: HADOOP_CONF_DIR and krb5.conf, and no
    tickets of the user's own (KRB5CCNAME points at an empty cache)."""
    monkeypatch.setenv("HADOOP_CONF_DIR", str(secure_hdfs.conf_dir))
    monkeypatch.setenv("KRB5_CONFIG", str(realm.kdc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-tickets'}")


@dataclass
class SecureHBaseFixture:
    """A secure HBase (Kerberos, SASL on its Thrift server) and HBase's Java client as its service principal."""

    cluster: object  # peers.secure_hbase.SecureHBase
    admin: object  # peers.secure_hbase.KerberosClient as hbase/<host>: creates tables, reads them back
    realm: Realm

    @property
    def thrift(self) -> str:
        """The Thrift server's address for a sink's `thrift` property (it listens on 127.0.0.1 only)."""
        return f"127.0.0.1:{self.cluster.thrift_port}"

    @property
    def thrift_principal(self) -> str:
        """The Thrift server's principal, hbase/<this host's Java canonical name>@REALM."""
        return self.cluster.principal

    def rows(self, table: str) -> dict[bytes, dict[bytes, bytes]]:
        return self.admin.scan(table)


@pytest.fixture(scope="session")
def secure_hbase(realm: Realm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureHBaseFixture]:
    """One secure HBase 2.6.1 standalone + Thrift server (hbase.thrift.security.qop = auth-conf) for the session;
    skips without java/mvn (and without the KDC's tools, through ``realm``)."""
    from conftest import require_java_peers

    require_java_peers()
    from peers.secure_hbase import KerberosClient, SecureHBase

    work = tmp_path_factory.mktemp("secure-hbase")
    cluster = SecureHBase(work / "hbase", realm.kdc, qop="auth-conf").start()
    admin = None
    try:
        admin = KerberosClient(cluster, cluster.principal, cluster.keytab, work / "clients")
        yield SecureHBaseFixture(cluster, admin, realm)
    finally:
        if admin is not None:
            admin.close()
        cluster.stop()


@pytest.fixture(scope="session")
def secure_kafka(realm: Realm, java_stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator:  # noqa: ANN001
    """A Kafka broker with GSSAPI listeners (SASL_PLAINTEXT, and SASL_SSL with the session's keytool JKS) in the
    session's realm (tests/peers/secure_kafka.py)."""
    from conftest import require_java_peers

    require_java_peers()
    from peers import secure_kafka

    kafka = secure_kafka.start(tmp_path_factory.mktemp("secure-kafka"), realm.kdc, java_stores.server_jks)
    try:
        yield kafka
    finally:
        kafka.stop()
