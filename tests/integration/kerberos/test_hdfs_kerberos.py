"""The hdfs sink on a kerberized HDFS (a secure MiniDFSCluster, set up as Hadoop's own secure tests set it up:
Kerberos RPC, block access tokens, SASL on data transfer, SPNEGO on WebHDFS), logged in from a keytab with
``hdfs.kerberosPrincipal`` / ``hdfs.kerberosKeytab``; files read back by Hadoop's own ``hdfs dfs -text`` as the HDFS
principal. Each transport's test also shows that the cluster refuses a client without Kerberos credentials."""

# ruff: noqa: F811 - the session fixtures are imported by name, then named as test parameters
from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from kerberos_fixtures import kerberos_client_env, realm, secure_hdfs  # noqa: F401 - fixtures

from conftest import wait_for_events

pytestmark = pytest.mark.peer

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = {n}
a1.sources.r1.batchSize = 200
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = {path}
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.batchSize = 200
a1.sinks.k1.hdfs.rollInterval = 0
a1.sinks.k1.hdfs.rollSize = 0
a1.sinks.k1.hdfs.rollCount = {roll}
a1.sinks.k1.hdfs.kerberosPrincipal = {principal}
a1.sinks.k1.hdfs.kerberosKeytab = {keytab}
"""


def _lines(secure_hdfs, path: str) -> list[str]:
    """Every line of the closed files under ``path``, read by Hadoop's FsShell as hdfs/localhost."""
    listing = secure_hdfs.dfs("-ls", path, check=False)
    if listing.returncode != 0 or b".tmp" in listing.stdout or b"FlumeData" not in listing.stdout:
        return []
    return secure_hdfs.dfs("-text", f"{path}/FlumeData.*").stdout.decode().split()


def test_rpc_writes_as_the_keytab_principal(run_agent, realm, secure_hdfs, kerberos_client_env) -> None:
    n = 3000
    path = "/flume/kerberos-rpc"
    agent = run_agent(CONF.format(n=n, path=f"{secure_hdfs.uri}{path}", roll=1000, principal=realm.flume,
                                  keytab=realm.flume_keytab))
    expected = [str(i) for i in range(n)]
    wait_for_events(expected, lambda: _lines(secure_hdfs, path), timeout=90, logs=[agent], every=2)
    assert sorted(_lines(secure_hdfs, path), key=int) == expected
    owner = secure_hdfs.dfs("-ls", path).stdout.decode()
    assert " flume " in owner, owner  # written as the principal's short name, not as the OS user
    assert "Kerberos login as flume/localhost@" in agent.log()
    assert agent.terminate() == 0


def test_webhdfs_with_spnego_writes_as_the_keytab_principal(run_agent, realm, secure_hdfs,
                                                           kerberos_client_env) -> None:
    n = 2000
    path = "/flume/kerberos-webhdfs"
    agent = run_agent(CONF.format(n=n, path=f"webhdfs://localhost:{secure_hdfs.cluster.http_port}{path}", roll=500,
                                  principal=realm.flume, keytab=realm.flume_keytab))
    expected = [str(i) for i in range(n)]
    wait_for_events(expected, lambda: _lines(secure_hdfs, path), timeout=90, logs=[agent], every=2)
    assert sorted(_lines(secure_hdfs, path), key=int) == expected
    assert " flume " in secure_hdfs.dfs("-ls", path).stdout.decode()
    assert agent.terminate() == 0


def test_rpc_without_credentials_is_refused(realm, secure_hdfs, kerberos_client_env, tmp_path) -> None:
    from hdfs_native import Client

    with pytest.raises(Exception, match="(?i)gss|kerberos|credential|authenticat"):
        list(Client(secure_hdfs.uri, config_dir=str(secure_hdfs.conf_dir)).list_status("/"))
    # Hadoop's own client without tickets is refused too
    proc = secure_hdfs.dfs("-ls", "/", ccache=tmp_path / "empty", check=False)
    assert proc.returncode != 0 and b"Client cannot authenticate via:[TOKEN, KERBEROS]" in proc.stderr


def test_webhdfs_without_spnego_is_refused(secure_hdfs) -> None:
    url = f"http://127.0.0.1:{secure_hdfs.cluster.http_port}/webhdfs/v1/?op=LISTSTATUS&user.name=flume"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 401 and "Negotiate" in err.value.headers.get("WWW-Authenticate", "")
