"""The HBase sinks on a secure HBase 2.6.1 (Kerberos on HBase's RPC, SASL/GSSAPI on its Thrift server with
``hbase.thrift.security.qop = auth-conf``), logged in from a keytab with Flume's ``kerberosPrincipal`` /
``kerberosKeytab``; rows read back by HBase's own Java client as the hbase service principal. The Thrift server
refuses a client without Kerberos, and a login that fails at run time keeps the events in the channel until it works.
"""

from __future__ import annotations

import shutil
import time

import pytest

from conftest import assert_exactly_once, wait_for_events

pytest.importorskip("happybase")
pytestmark = pytest.mark.peer

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = {n}
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = {type}
a1.sinks.k1.channel = c1
a1.sinks.k1.table = {table}
a1.sinks.k1.columnFamily = f
a1.sinks.k1.batchSize = 200
a1.sinks.k1.thrift = {thrift}
a1.sinks.k1.thrift.kerberos.principal = {server}
a1.sinks.k1.kerberosPrincipal = {principal}
a1.sinks.k1.kerberosKeytab = {keytab}
"""


@pytest.fixture
def krb5_env(realm, monkeypatch, tmp_path) -> None:
    """The agent's krb5.conf is the test realm's; no tickets of the user's own (an empty default cache)."""
    monkeypatch.setenv("KRB5_CONFIG", str(realm.kdc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-tickets'}")


def _payloads(secure_hbase, table: str) -> list[str]:
    """The body column of every row (Flume's simple serializer: one row per event, f:pCol = body)."""
    return [cells[b"f:pCol"].decode() for cells in secure_hbase.rows(table).values() if b"f:pCol" in cells]


def _conf(secure_hbase, realm, table: str, n: int, sink: str = "hbase2", keytab=None) -> str:  # noqa: ANN001
    return CONF.format(n=n, type=sink, table=table, thrift=secure_hbase.thrift,
                       server=secure_hbase.thrift_principal, principal=realm.flume,
                       keytab=keytab or realm.flume_keytab)


@pytest.mark.parametrize("sink", ["hbase2", "asynchbase"])
def test_writes_every_event_once_as_the_keytab_principal(run_agent, realm, secure_hbase, krb5_env, sink) -> None:
    n, table = 3000, f"kerberos_{sink}"
    secure_hbase.admin.create_table(table, "f")
    agent = run_agent(_conf(secure_hbase, realm, table, n, sink))
    expected = [str(i) for i in range(n)]
    wait_for_events(expected, lambda: _payloads(secure_hbase, table), timeout=120, logs=[agent], every=2)
    time.sleep(1)  # a duplicate would come with a later batch
    assert_exactly_once(expected, _payloads(secure_hbase, table), logs=[agent])
    log = agent.log()
    assert "Kerberos login as flume/localhost@" in log, log[-3000:]
    assert f"as {realm.flume} (SASL/GSSAPI, QOP auth-conf)" in log, log[-3000:]
    # the Thrift server ran the calls as the principal's short name
    assert "Effective user: flume" in secure_hbase.cluster.log("thrift")
    assert agent.terminate() == 0
    if sink == "hbase2":  # the same rows through the Thrift server, over SASL, as flume (happybase's scan)
        assert _thrift_rows(secure_hbase, realm, table) == secure_hbase.rows(table)


def _thrift_rows(secure_hbase, realm, table: str) -> dict:  # noqa: ANN001
    from agent import kerberos
    from agent.thrift_sasl import initiator_credentials
    from sinks.hbase.thrift import sasl_connection, server_principal

    login = kerberos.login(kerberos.Identity(realm.flume, str(realm.flume_keytab)))
    try:
        conn = sasl_connection("127.0.0.1", secure_hbase.cluster.thrift_port, 30000, "binary",
                               server_principal(secure_hbase.thrift_principal, "127.0.0.1"),
                               lambda: initiator_credentials(login), "auth-conf")
        try:
            return dict(conn.table(table).scan(batch_size=5000))
        finally:
            conn.close()
    finally:
        kerberos.release(login)


def test_the_default_server_principal_is_hbase_at_the_thrift_host(run_agent, realm, secure_hbase, krb5_env) -> None:
    """The `hbase` sink type without thrift.kerberos.principal: hbase/_HOST, _HOST being the host named in `thrift`
    (the Thrift server's own canonical host name, as its SASL service is hbase@<that name>)."""
    import socket

    host = secure_hbase.cluster.host
    try:
        if socket.gethostbyname(host) != "127.0.0.1":
            pytest.skip(f"this host's canonical name {host} is not 127.0.0.1, where the Thrift server listens")
    except OSError:
        pytest.skip(f"this host's canonical name {host} does not resolve")
    n, table = 500, "kerberos_default_principal"
    secure_hbase.admin.create_table(table, "f")
    text = "\n".join(ln for ln in _conf(secure_hbase, realm, table, n, "hbase").splitlines()
                     if "thrift.kerberos.principal" not in ln)
    agent = run_agent(text.replace(secure_hbase.thrift, f"{host}:{secure_hbase.cluster.thrift_port}") + "\n")
    expected = [str(i) for i in range(n)]
    wait_for_events(expected, lambda: _payloads(secure_hbase, table), timeout=90, logs=[agent], every=2)
    assert_exactly_once(expected, _payloads(secure_hbase, table), logs=[agent])
    assert agent.terminate() == 0


def test_an_unauthenticated_thrift_client_is_refused(secure_hbase) -> None:
    """happybase without SASL gets no answer: the server reads its call's first bytes as a SASL message header (a
    16 MB negotiation message) and never runs it. A SASL client offering another mechanism than GSSAPI is told
    no."""
    import socket
    import struct

    import happybase

    conn = happybase.Connection("127.0.0.1", secure_hbase.cluster.thrift_port, timeout=3000)
    try:
        with pytest.raises(Exception, match="(?i)timed out|closed|end of file|TTransport"):
            conn.tables()
    finally:
        conn.close()
    with socket.create_connection(("127.0.0.1", secure_hbase.cluster.thrift_port), timeout=20) as s:
        s.sendall(struct.pack(">Bi", 1, 5) + b"PLAIN" + struct.pack(">Bi", 2, 0))  # START PLAIN, then an empty OK
        status, length = struct.unpack(">Bi", s.recv(5, socket.MSG_WAITALL))
        reason = s.recv(length, socket.MSG_WAITALL).decode()
    assert status in (3, 4), (status, reason)  # BAD or ERROR
    assert "PLAIN" in reason, reason


def test_a_sink_without_kerberos_is_told_the_server_may_be_secure(run_agent, realm, secure_hbase) -> None:
    table = "kerberos_plain"
    secure_hbase.admin.create_table(table, "f")
    text = "\n".join(ln for ln in _conf(secure_hbase, realm, table, 10).splitlines() if "kerberos" not in ln.split("=")[0])
    agent = run_agent(text + "\na1.sinks.k1.timeout = 2000\n")
    agent.wait_for_log("it waits for a SASL negotiation: set kerberosPrincipal and kerberosKeytab", timeout=30)
    assert _payloads(secure_hbase, table) == []
    assert agent.terminate() == 0


def test_a_qop_the_server_does_not_offer_is_refused(run_agent, realm, secure_hbase, krb5_env) -> None:
    """The server wants auth-conf; a sink that accepts only auth says there is no common protection layer."""
    table = "kerberos_qop"
    secure_hbase.admin.create_table(table, "f")
    agent = run_agent(_conf(secure_hbase, realm, table, 10) + "a1.sinks.k1.thrift.security.qop = auth\n")
    agent.wait_for_log("no common protection layer", timeout=30)
    assert "the server offers QOP auth-conf; this client accepts auth" in agent.log()
    assert _payloads(secure_hbase, table) == []
    assert agent.terminate() == 0


def test_a_stale_keytab_backs_off_and_the_events_wait(run_agent, realm, secure_hbase, krb5_env, tmp_path) -> None:
    """The keytab holds an old key of the principal (it was exported again since): --check passes (the principal is
    in it), the KDC refuses the login; the sink backs off, the events stay in the channel, and once the keytab is
    replaced by a current one every event arrives, once."""
    kdc = realm.kdc
    name = "hbwriter/localhost"
    stale = kdc.add(name, tmp_path / "stale.keytab")
    good = tmp_path / "good.keytab"
    kdc._run("kadmin.local", "-r", kdc.realm, "-q", f"ktadd -k {good} {kdc.principal(name)}")  # a new key: stale now
    n, table = 500, "kerberos_stale"
    secure_hbase.admin.create_table(table, "f")
    text = _conf(secure_hbase, realm, table, n, keytab=stale).replace(realm.flume, kdc.principal(name))
    agent = run_agent(text)
    agent.wait_for_log(f"Kerberos login as {kdc.principal(name)} from {stale} failed", timeout=30)
    time.sleep(5)  # several tries, backing off
    assert _payloads(secure_hbase, table) == []
    log = agent.log()
    assert log.count(f"Kerberos login as {kdc.principal(name)} from {stale} failed") == 1, log[-3000:]
    shutil.copyfile(good, stale)  # the operator puts the current keytab in place
    expected = [str(i) for i in range(n)]
    wait_for_events(expected, lambda: _payloads(secure_hbase, table), timeout=90, logs=[agent], every=2)
    assert_exactly_once(expected, _payloads(secure_hbase, table), logs=[agent])
    assert f"Kerberos login as {kdc.principal(name)} works again" in agent.log()
    assert agent.terminate() == 0

