"""Thrift with Kerberos (SASL/GSSAPI), against the session's MIT KDC: agent.thrift_sasl's client and server halves
with each other for every QOP; pyflume's thrift sink to pyflume's thrift source with ``kerberos = true`` on both;
Apache Flume 1.11's own thrift sink and source with pyflume's, both ways; a client without Kerberos refused by the
secure source; a client naming a wrong server principal fails clearly and keeps its events."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import listening

pytestmark = pytest.mark.peer

SERVICE = "thriftsrc/localhost"  # the secure source's principal (its own keytab)


@pytest.fixture(scope="module")
def thrift_realm(realm):
    """The session realm plus the source's principal and keytab (made once per session)."""
    keytab = realm.kdc.workdir / "thriftsrc_localhost.keytab"
    if not keytab.exists():
        realm.kdc.add(SERVICE, keytab)
    return realm, realm.kdc.principal(SERVICE), keytab


@pytest.fixture
def krb5_env(realm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("gssapi", reason="the kerberos extra is not installed (pip install '.[kerberos]')")
    monkeypatch.setenv("KRB5_CONFIG", str(realm.kdc.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-tickets'}")


def _pair():
    """A connected (client, server) pair of TCP sockets on loopback."""
    with socket.create_server(("127.0.0.1", 0)) as ls:
        c = socket.create_connection(ls.getsockname())
        s, _ = ls.accept()
    c.settimeout(20)
    s.settimeout(20)
    return c, s


@pytest.mark.parametrize("qop", ["auth", "auth-int", "auth-conf"])
def test_sasl_client_and_server_agree_and_carry_frames(thrift_realm, krb5_env, qop) -> None:
    from agent import kerberos, thrift_sasl

    realm, principal, keytab = thrift_realm
    lg = kerberos.login(kerberos.Identity(realm.flume, str(realm.flume_keytab)))
    try:
        creds = thrift_sasl.initiator_credentials(lg)
        acceptor = thrift_sasl.acceptor_credentials(principal, str(keytab))
        c, s = _pair()
        out: dict = {}

        def serve() -> None:
            try:
                conn = thrift_sasl.server(s, acceptor, "auth-conf,auth-int,auth")
                out["peer"], out["qop"] = conn.peer, conn.qop
                for _ in range(3):
                    conn.write_frame(b"echo:" + conn.read_frame())
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                out["error"] = exc

        t = threading.Thread(target=serve)
        t.start()
        service, host, rlm = thrift_sasl.split_principal(principal)
        conn = thrift_sasl.client(c, service, host, creds, qop, realm=rlm)
        big = bytes(range(256)) * 4000
        for payload in (b"one", b"", big):
            conn.write_frame(payload)
            assert conn.read_frame() == b"echo:" + payload
        conn.close()
        t.join(20)
        assert "error" not in out, out
        assert out == {"peer": realm.flume, "qop": qop}
        assert conn.qop == qop
    finally:
        kerberos.release(lg)


def test_sasl_client_without_common_qop_is_refused(thrift_realm, krb5_env) -> None:
    from agent import kerberos, thrift_sasl

    realm, principal, keytab = thrift_realm
    lg = kerberos.login(kerberos.Identity(realm.flume, str(realm.flume_keytab)))
    try:
        c, s = _pair()
        errors: list = []

        def serve() -> None:
            try:
                thrift_sasl.server(s, thrift_sasl.acceptor_credentials(principal, str(keytab)), "auth")
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        t = threading.Thread(target=serve)
        t.start()
        with pytest.raises(thrift_sasl.SaslError, match="offers QOP auth; this client accepts auth-conf"):
            thrift_sasl.client(c, "thriftsrc", "localhost", thrift_sasl.initiator_credentials(lg), "auth-conf",
                               realm=realm.kdc.realm)
        t.join(20)
        assert errors and "refused the SASL negotiation" in str(errors[0]), errors
    finally:
        kerberos.release(lg)


def test_thriftpy2_client_over_the_sasl_transport(thrift_realm, krb5_env, tmp_path) -> None:
    """The API other Thrift clients use (HBase's): thriftpy2's TClient with the pure-Python binary protocol over
    SaslClientTransport(TSocket), auth-conf; a thriftpy2 processor serves on the server half."""
    import thriftpy2
    from thriftpy2.protocol.binary import (
        TBinaryProtocol,  # the pure-Python one (the Cython one needs its own transports)
    )
    from thriftpy2.rpc import TClient
    from thriftpy2.thrift import TProcessor
    from thriftpy2.transport import TSocket

    from agent import kerberos, thrift_sasl

    realm, principal, keytab = thrift_realm
    idl = tmp_path / "echo.thrift"
    idl.write_text("service Echo { binary echo(1: binary data) }\n")
    echo = thriftpy2.load(str(idl), module_name="echo_thrift")
    lg = kerberos.login(kerberos.Identity(realm.flume, str(realm.flume_keytab)))
    ls = socket.create_server(("127.0.0.1", 0))
    errors: list = []

    class Handler:
        def echo(self, data: bytes) -> bytes:
            return data[::-1]

    def serve() -> None:
        s, _ = ls.accept()
        s.settimeout(20)
        try:
            conn = thrift_sasl.server(s, thrift_sasl.acceptor_credentials(principal, str(keytab)), "auth-conf")
            proc = TProcessor(echo.Echo, Handler())
            proto = TBinaryProtocol(conn, decode_response=False)
            for _ in range(2):
                proc.process(proto, proto)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=serve)
    t.start()
    try:
        tsock = TSocket("127.0.0.1", ls.getsockname()[1], socket_timeout=20000)
        trans = thrift_sasl.SaslClientTransport(tsock, "thriftsrc", "localhost",
                                                lambda: thrift_sasl.initiator_credentials(lg), "auth-conf",
                                                realm=realm.kdc.realm)
        trans.open()
        cl = TClient(echo.Echo, TBinaryProtocol(trans, decode_response=False))
        assert cl.echo(b"abc") == b"cba"
        assert cl.echo(b"x" * 100000) == b"x" * 100000
        assert trans.conn.qop == "auth-conf"
        trans.close()
        t.join(20)
        assert not errors, errors
    finally:
        ls.close()
        kerberos.release(lg)


# --------------------------------------------------------------------------------------------------------------
# Agents

SOURCE = """\
{a}.sources = r1
{a}.channels = c1
{a}.sinks = out
{a}.sources.r1.type = thrift
{a}.sources.r1.bind = 127.0.0.1
{a}.sources.r1.port = {port}
{a}.sources.r1.channels = c1
{a}.sources.r1.kerberos = true
{a}.sources.r1.agent-principal = {principal}
{a}.sources.r1.agent-keytab = {keytab}
{a}.channels.c1.type = memory
{a}.channels.c1.capacity = 100000
{a}.channels.c1.transactionCapacity = 1000
{a}.sinks.out.type = file_roll
{a}.sinks.out.channel = c1
{a}.sinks.out.sink.directory = {out}
{a}.sinks.out.sink.rollInterval = 0
{a}.sinks.out.sink.batchSize = 1000
"""

SINK = """\
{a}.sources = r1
{a}.channels = c1
{a}.sinks = k1
{a}.sources.r1.type = seq
{a}.sources.r1.totalEvents = {n}
{a}.sources.r1.batchSize = 100
{a}.sources.r1.channels = c1
{a}.channels.c1.type = memory
{a}.channels.c1.capacity = 100000
{a}.channels.c1.transactionCapacity = 1000
{a}.sinks.k1.type = thrift
{a}.sinks.k1.channel = c1
{a}.sinks.k1.hostname = 127.0.0.1
{a}.sinks.k1.port = {port}
{a}.sinks.k1.batch-size = 200
{a}.sinks.k1.kerberos = true
{a}.sinks.k1.client-principal = {principal}
{a}.sinks.k1.client-keytab = {keytab}
{a}.sinks.k1.server-principal = {server}
"""


@pytest.fixture
def agents(tmp_path: Path):
    """Start pyflume agents, each in its own directory (its properties file and log); killed at the end."""
    from conftest import AgentProcess

    started: list = []

    def start(text: str, name: str, args: list[str] | None = None):
        d = tmp_path / f"agent-{name}-{len(started)}"
        d.mkdir()
        a = AgentProcess(text, d, name, args).start()
        started.append(a)
        return a

    yield start
    for a in started:
        a.kill()


def _lines(out: Path) -> list[bytes]:
    from conftest import rolled_lines

    return rolled_lines(out)


def _secure_source(agents, thrift_realm, tmp_path: Path, a: str = "src", extra: str = ""):
    from conftest import free_port

    realm, principal, keytab = thrift_realm
    port = free_port()
    out = tmp_path / f"out-{a}"
    out.mkdir()
    src = agents(SOURCE.format(a=a, port=port, principal=principal, keytab=keytab, out=out) + extra, a)
    src.wait_for_port(port)
    return src, port, out


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_pyflume_sink_to_pyflume_source_with_kerberos(agents, thrift_realm, krb5_env, tmp_path, tls) -> None:
    """Every event once; with ``ssl = true`` too (the SASL negotiation inside TLS, as in Flume)."""
    from conftest import assert_exactly_once, self_signed, wait_for_events

    realm, principal, _ = thrift_realm
    src_tls = snk_tls = ""
    if tls:
        _, _, p12 = self_signed(tmp_path)
        src_tls = f"src.sources.r1.ssl = true\nsrc.sources.r1.keystore = {p12}\nsrc.sources.r1.keystore-password = secret\n"
        snk_tls = "snk.sinks.k1.ssl = true\nsnk.sinks.k1.trust-all-certs = true\n"
    src, port, out = _secure_source(agents, thrift_realm, tmp_path, extra=src_tls)
    n = 20_000
    snk = agents(SINK.format(a="snk", n=n, port=port, principal=realm.flume, keytab=realm.flume_keytab,
                             server=principal) + snk_tls, "snk")
    expected = [str(i).encode() for i in range(n)]
    wait_for_events(expected, lambda: _lines(out), timeout=90, logs=[src, snk])
    assert snk.terminate() == 0
    assert src.terminate() == 0
    assert_exactly_once(expected, _lines(out), logs=[src, snk])
    assert f"Kerberos login as {realm.flume} " in snk.log()
    assert f"clients authenticate with Kerberos to {principal}" in src.log()
    assert ("TLS" in src.log().split("Thrift source r1 started", 1)[1].splitlines()[0]) == tls


def test_client_without_kerberos_is_refused(agents, thrift_realm, krb5_env, tmp_path) -> None:
    """A plain Thrift client (framed, no SASL) gets no answer but the refusal; the source says why and goes on."""
    from agent.core import Event
    from agent.thrift_rpc import ThriftClient, ThriftError

    src, port, out = _secure_source(agents, thrift_realm, tmp_path)
    client = ThriftClient("127.0.0.1", port, request_timeout=10)
    with pytest.raises(ThriftError, match="closed by the peer|failed"):
        client.append_batch([Event(b"sneaky", {})])
    src.wait_for_log("refused the connection from 127.0.0.1")
    assert "did not send a SASL negotiation message" in src.log()
    assert _lines(out) == []


def _metrics(port: int) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("wrong", ["nosuch/localhost", "flume/localhost"])
def test_wrong_server_principal_fails_clearly_and_keeps_the_events(agents, thrift_realm, krb5_env, tmp_path,
                                                                   wrong) -> None:
    """A principal the KDC does not know: no service ticket; one it knows but the source is not: the source
    cannot decrypt the ticket and says so (SASL BAD). Either way every event stays in the sink's channel."""
    from conftest import free_port, wait_for

    realm, _, _ = thrift_realm
    src, port, out = _secure_source(agents, thrift_realm, tmp_path)
    n, mport = 500, free_port()
    server = realm.kdc.principal(wrong)
    snk = agents(SINK.format(a="snk", n=n, port=port, principal=realm.flume, keytab=realm.flume_keytab,
                             server=server), "snk",
                 ["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
    want = (f"cannot get a Kerberos service ticket for {server}" if wrong.startswith("nosuch")
            else "the peer refused the SASL negotiation (BAD): GSSAPI:")
    snk.wait_for_log(want, timeout=30)
    snk.wait_for_port(mport)
    wait_for(lambda: _metrics(mport).get("CHANNEL.c1", {}).get("EventPutSuccessCount") == str(n), 20,
             "the seq source's events in the channel")
    snk.wait_for_log(want, timeout=30)
    time.sleep(2)  # more retries
    ch = _metrics(mport)["CHANNEL.c1"]
    assert ch["ChannelSize"] == str(n), ch
    assert ch.get("EventTakeSuccessCount") == "0", ch
    assert _lines(out) == []
    assert "refused the connection from 127.0.0.1" in src.log() or wrong.startswith("nosuch")


# --------------------------------------------------------------------------------------------------------------
# Apache Flume 1.11 as the peer, both ways

# One agent of each system: a secure thrift source into file_roll, and netcat into a secure thrift sink aimed at
# the other agent's source. The same file for both, with the agent's name, ports and principals filled in.
BOTH_WAYS = """\
{a}.sources = t n
{a}.channels = c_in c_out
{a}.sinks = out k
{a}.sources.t.type = thrift
{a}.sources.t.bind = 127.0.0.1
{a}.sources.t.port = {source_port}
{a}.sources.t.channels = c_in
{a}.sources.t.kerberos = true
{a}.sources.t.agent-principal = {principal}
{a}.sources.t.agent-keytab = {keytab}
{a}.channels.c_in.type = memory
{a}.channels.c_in.capacity = 100000
{a}.channels.c_in.transactionCapacity = 1000
{a}.sinks.out.type = file_roll
{a}.sinks.out.channel = c_in
{a}.sinks.out.sink.directory = {out}
{a}.sinks.out.sink.rollInterval = 0
{a}.sinks.out.sink.batchSize = 1000
{a}.sources.n.type = netcat
{a}.sources.n.bind = 127.0.0.1
{a}.sources.n.port = {netcat_port}
{a}.sources.n.ack-every-event = false
{a}.sources.n.channels = c_out
{a}.channels.c_out.type = memory
{a}.channels.c_out.capacity = 100000
{a}.channels.c_out.transactionCapacity = 1000
{a}.sinks.k.type = thrift
{a}.sinks.k.channel = c_out
{a}.sinks.k.hostname = 127.0.0.1
{a}.sinks.k.port = {sink_port}
{a}.sinks.k.batch-size = 500
{a}.sinks.k.kerberos = true
{a}.sinks.k.client-principal = {principal}
{a}.sinks.k.client-keytab = {keytab}
{a}.sinks.k.server-principal = {server_principal}
"""


def test_flume_and_pyflume_thrift_with_kerberos_both_ways(thrift_realm, krb5_env, agents, tmp_path) -> None:
    """Flume's thrift sink (SecureThriftRpcClient) → pyflume's secure thrift source, and pyflume's thrift sink →
    Flume's secure thrift source, at once, every event once. Flume logs its JVM in once (one principal per agent):
    its source and sink use thriftsrc/localhost; pyflume's agent uses flume/localhost for both. Flume gets only
    ``-Djava.security.krb5.conf`` (no JAAS file: its login from the keytab serves its SASL server too)."""
    from conftest import assert_exactly_once, free_port, require_java_peers, send_lines, wait_for, wait_for_events
    from peers.flume import FlumeAgent

    require_java_peers()
    realm, flume_principal, flume_keytab = thrift_realm
    ports = {"flume_port": free_port(), "netcat_port": free_port(), "our_port": free_port()}
    fl_out, py_out = tmp_path / "fl-out", tmp_path / "py-out"
    fl_out.mkdir()
    py_out.mkdir()
    conf = tmp_path / "flume.conf"
    conf.write_text(BOTH_WAYS.format(a="fl", source_port=ports["flume_port"], netcat_port=ports["netcat_port"],
                                     sink_port=ports["our_port"], principal=flume_principal, keytab=flume_keytab,
                                     server_principal=realm.flume, out=fl_out))
    flume = FlumeAgent(conf, "fl", log_path=tmp_path / "flume.log", modules=("hdfs",),  # Hadoop's UGI: flume-ng-auth
                       sysprops={"java.security.krb5.conf": str(realm.kdc.krb5_conf)}).start()
    try:
        flume.wait_for_log("Component type: SOURCE, name: t started", timeout=120)
        wait_for(lambda: listening(ports["netcat_port"]), timeout=90, what="Flume's netcat port")
        py_nc = free_port()
        ours = agents(BOTH_WAYS.format(a="py", source_port=ports["our_port"], netcat_port=py_nc,
                                       sink_port=ports["flume_port"], principal=realm.flume,
                                       keytab=realm.flume_keytab, server_principal=flume_principal, out=py_out), "py")
        ours.wait_for_port(py_nc)
        ours.wait_for_port(ports["our_port"])
        n = 5000
        to_py = [f"from-flume-{i:05d}".encode() for i in range(n)]
        to_fl = [f"from-pyflume-{i:05d}".encode() for i in range(n)]
        send_lines(ports["netcat_port"], to_py)
        send_lines(py_nc, to_fl)
        wait_for_events(to_py, lambda: _lines(py_out), timeout=120, logs=[flume, ours])
        wait_for_events(to_fl, lambda: _lines(fl_out), timeout=120, logs=[flume, ours])
        assert ours.terminate() == 0
        assert_exactly_once(to_py, _lines(py_out), logs=[flume, ours])
        assert_exactly_once(to_fl, _lines(fl_out), logs=[flume, ours])
    finally:
        flume.stop()


# --------------------------------------------------------------------------------------------------------------
# libthrift's own SASL transports (Java), every QOP: what HBase's secure Thrift server speaks

_PEER = Path(__file__).parents[2] / "peers" / "java" / "ThriftSaslPeer.java"


def _java_peer(realm, mode: str, port: int, qop: str, principal: str, keytab: Path, service: str):
    import subprocess

    from peers import flume

    cmd = ["java", f"-Djava.security.krb5.conf={realm.kdc.krb5_conf}", "-cp", flume.classpath(), str(_PEER), mode,
           str(port), qop, service, "localhost", principal, str(keytab)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


@pytest.mark.parametrize("qop", ["auth", "auth-int", "auth-conf"])
def test_libthrift_sasl_peers_both_ways(thrift_realm, krb5_env, qop) -> None:
    """agent.thrift_sasl's client against libthrift's TSaslServerTransport, and its server against libthrift's
    TSaslClientTransport (both logged in from keytabs, Java's GSSAPI), with the QOP asked for on both ends."""
    import subprocess

    from agent import kerberos, thrift_sasl
    from conftest import free_port, require_java_peers

    require_java_peers()
    realm, principal, keytab = thrift_realm
    lg = kerberos.login(kerberos.Identity(realm.flume, str(realm.flume_keytab)))
    try:
        # Python client -> Java server (service thriftsrc/localhost)
        port = free_port()
        java = _java_peer(realm, "server", port, qop, principal, keytab, "thriftsrc")
        try:
            assert java.stdout is not None
            line = java.stdout.readline()
            assert line.strip() == "READY", line + java.stdout.read()
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            conn = thrift_sasl.client(sock, "thriftsrc", "localhost", thrift_sasl.initiator_credentials(lg), qop,
                                      realm=realm.kdc.realm)
            assert conn.qop == qop
            for payload in (b"one", b"two", bytes(range(256)) * 200):
                conn.write_frame(payload)
                assert conn.read_frame() == b"echo:" + payload
            conn.close()
            out, _ = java.communicate(timeout=60)
        finally:
            if java.poll() is None:
                java.kill()
        assert java.returncode == 0, out
        assert f"QOP {qop}\nPEER {realm.flume}\n" in out and out.rstrip().endswith("DONE"), out

        # Java client (flume/localhost) -> Python server (thriftsrc/localhost)
        with socket.create_server(("127.0.0.1", 0)) as ls:
            port = ls.getsockname()[1]
            got: dict = {}

            def serve() -> None:
                s, _ = ls.accept()
                s.settimeout(60)
                try:
                    c = thrift_sasl.server(s, thrift_sasl.acceptor_credentials(principal, str(keytab)), qop)
                    got["qop"], got["peer"] = c.qop, c.peer
                    while True:
                        try:
                            frame = c.read_frame()
                        except EOFError:
                            break
                        c.write_frame(b"echo:" + frame)
                    c.close()
                except Exception as exc:  # noqa: BLE001 - reported below
                    got["error"] = exc

            t = threading.Thread(target=serve)
            t.start()
            java = _java_peer(realm, "client", port, qop, realm.flume, realm.flume_keytab, "thriftsrc")
            try:
                out, _ = java.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                java.kill()
                out, _ = java.communicate()
            t.join(30)
        assert java.returncode == 0 and "error" not in got, (out, got)
        assert got == {"qop": qop, "peer": realm.flume}
        assert f"QOP {qop}\nDONE" in out, out
    finally:
        kerberos.release(lg)
