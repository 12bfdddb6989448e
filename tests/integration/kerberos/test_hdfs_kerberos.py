"""The hdfs sink on a kerberized HDFS (a secure MiniDFSCluster, set up as Hadoop's own secure tests set it up:
Kerberos RPC, block access tokens, SASL on data transfer, SPNEGO on WebHDFS), logged in from a keytab with
``hdfs.kerberosPrincipal`` / ``hdfs.kerberosKeytab``; files read back by Hadoop's own ``hdfs dfs -text`` as the HDFS
principal. Each transport's test also shows that the cluster refuses a client without Kerberos credentials."""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request

import pytest

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


def _hadoop_lines(secure_hdfs, path: str) -> list[str]:
    """Every line under ``path`` as Hadoop's own FsShell reads it (as hdfs/localhost)."""
    return secure_hdfs.dfs("-text", f"{path}/FlumeData.*").stdout.decode().split()


def test_rpc_writes_as_the_keytab_principal(run_agent, realm, secure_hdfs, kerberos_client_env) -> None:
    n = 3000
    path = "/flume/kerberos-rpc"
    agent = run_agent(CONF.format(n=n, path=f"{secure_hdfs.uri}{path}", roll=1000, principal=realm.flume,
                                  keytab=realm.flume_keytab))
    expected = [str(i) for i in range(n)]
    wait_for_events(expected, lambda: secure_hdfs.closed_lines(path), timeout=90, logs=[agent], every=1)
    assert sorted(_hadoop_lines(secure_hdfs, path), key=int) == expected
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
    wait_for_events(expected, lambda: secure_hdfs.closed_lines(path), timeout=90, logs=[agent], every=1)
    assert sorted(_hadoop_lines(secure_hdfs, path), key=int) == expected
    assert " flume " in secure_hdfs.dfs("-ls", path).stdout.decode()
    assert agent.terminate() == 0


def test_swebhdfs_over_tls_with_spnego(run_agent, realm, secure_hdfs, kerberos_client_env, monkeypatch) -> None:
    """WebHDFS over HTTPS (the namenode's and the datanode's TLS endpoints, dfs.http.policy HTTP_AND_HTTPS), the
    certificate trusted through REQUESTS_CA_BUNDLE; a client without SPNEGO is refused there too."""
    import ssl

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(secure_hdfs.ca))
    n, path = 600, "/flume/kerberos-swebhdfs"
    agent = run_agent(CONF.format(n=n, path=f"swebhdfs://localhost:{secure_hdfs.https_port}{path}", roll=300,
                                  principal=realm.flume, keytab=realm.flume_keytab))
    expected = [str(i) for i in range(n)]
    wait_for_events(expected, lambda: secure_hdfs.closed_lines(path), timeout=90, logs=[agent], every=1)
    assert sorted(_hadoop_lines(secure_hdfs, path), key=int) == expected
    assert agent.terminate() == 0
    ctx = ssl.create_default_context(cafile=str(secure_hdfs.ca))
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"https://localhost:{secure_hdfs.https_port}/webhdfs/v1/?op=LISTSTATUS", timeout=10,
                               context=ctx)
    assert err.value.code == 401


def test_host_pattern_logs_in_as_this_host(run_agent, realm, secure_hdfs, kerberos_client_env) -> None:
    """flume/_HOST@REALM becomes flume/<this host's canonical name, lower case>@REALM, as in Flume."""
    n, path = 300, "/flume/kerberos-host-pattern"
    agent = run_agent(CONF.format(n=n, path=f"{secure_hdfs.uri}{path}", roll=300,
                                  principal=f"flume/_HOST@{realm.kdc.realm}", keytab=realm.host_keytab))
    expected = [str(i) for i in range(n)]
    wait_for_events(expected, lambda: secure_hdfs.closed_lines(path), timeout=90, logs=[agent], every=1)
    host = socket.getfqdn(socket.gethostname()).lower()
    assert f"Kerberos login as flume/{host}@{realm.kdc.realm} " in agent.log()
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


def test_flume_writes_the_same_files_with_the_same_principal(run_agent, realm, secure_hdfs, kerberos_client_env,
                                                             tmp_path) -> None:
    """Apache Flume 1.11's own HDFS sink, given the same properties (principal, keytab) on the same cluster, writes
    the same files' contents as pyflume: the configuration is Flume's, not ours."""
    from conftest import require_java_peers
    from peers import flume

    require_java_peers()
    n = 2000
    contents = {}
    for who, path in (("pyflume", "/flume/same-pyflume"), ("flume", "/flume/same-flume")):
        text = CONF.format(n=n, path=f"{secure_hdfs.uri}{path}", roll=500, principal=realm.flume,
                           keytab=realm.flume_keytab)
        if who == "pyflume":
            agent = run_agent(text)
            logs = [agent]
        else:
            conf = tmp_path / "flume.conf"
            conf.write_text(text)
            agent = flume.FlumeAgent(conf, sysprops={"java.security.krb5.conf": str(realm.kdc.krb5_conf)})
            cmd = agent.command()
            cp = cmd.index("-cp") + 1
            cmd[cp] = f"{secure_hdfs.conf_dir}{os.pathsep}{cmd[cp]}"  # Hadoop reads core-site.xml from the classpath
            agent.command = lambda cmd=cmd: cmd
            agent.start()
            logs = [agent]
        try:
            # Flume rolls a full file when the next event comes, so its last file is closed when the agent stops
            wait_for_events([str(i) for i in range(n - 500)], lambda p=path: secure_hdfs.closed_lines(p),
                            timeout=120, logs=logs, every=1)
            time.sleep(3)  # the last batches reach the last file
        finally:
            agent.terminate() if who == "pyflume" else agent.stop()
        assert sorted(secure_hdfs.closed_lines(path), key=int) == [str(i) for i in range(n)]
        names = [ln.rsplit("/", 1)[-1] for ln in secure_hdfs.dfs("-ls", path).stdout.decode().splitlines()
                 if "FlumeData." in ln]
        assert len(names) == n // 500 and not any(x.endswith(".tmp") for x in names), names
        contents[who] = sorted(secure_hdfs.dfs("-cat", f"{path}/{x}").stdout for x in names)
        owner = secure_hdfs.dfs("-ls", path).stdout.decode()
        assert " flume " in owner, owner
    assert contents["pyflume"] == contents["flume"]



TWO_SINKS = """\
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = {n}
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1 c2
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c2.type = memory
a1.channels.c2.capacity = 10000
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = {uri}/flume/two-rpc
a1.sinks.k1.hdfs.proxyUser = etl
a1.sinks.k2.type = hdfs
a1.sinks.k2.channel = c2
a1.sinks.k2.hdfs.path = webhdfs://localhost:{http}/flume/two-webhdfs
"""


def test_two_sinks_share_one_login_and_rpc_impersonates_the_proxy_user(run_agent, realm, secure_hdfs,
                                                                       kerberos_client_env) -> None:
    """Two hdfs sinks with the same principal and keytab (one over RPC as proxy user 'etl', one over WebHDFS): one
    login for both, as Flume has one per agent; files owned by etl and by flume."""
    n = 400
    text = TWO_SINKS.format(n=n, uri=secure_hdfs.uri, http=secure_hdfs.cluster.http_port)
    for k in ("k1", "k2"):
        text += (f"a1.sinks.{k}.hdfs.fileType = DataStream\na1.sinks.{k}.hdfs.rollInterval = 0\n"
                 f"a1.sinks.{k}.hdfs.rollSize = 0\na1.sinks.{k}.hdfs.rollCount = 200\n"
                 f"a1.sinks.{k}.hdfs.kerberosPrincipal = {realm.flume}\n"
                 f"a1.sinks.{k}.hdfs.kerberosKeytab = {realm.flume_keytab}\n")
    agent = run_agent(text)
    expected = [str(i) for i in range(n)]
    for path in ("/flume/two-rpc", "/flume/two-webhdfs"):
        wait_for_events(expected, lambda p=path: secure_hdfs.closed_lines(p), timeout=90, logs=[agent], every=1)
    assert agent.terminate() == 0
    owners = {path: {ln.split()[2] for ln in secure_hdfs.dfs("-ls", path).stdout.decode().splitlines()
                     if "FlumeData." in ln} for path in ("/flume/two-rpc", "/flume/two-webhdfs")}
    assert owners == {"/flume/two-rpc": {"etl"}, "/flume/two-webhdfs": {"flume"}}
    assert agent.log().count("Kerberos login as flume/localhost@") == 1, agent.log()[-3000:]
