"""Thrift with Kerberos (SASL/GSSAPI), against the session's MIT KDC: agent.thrift_sasl's client and server halves
with each other for every QOP; pyflume's thrift sink to pyflume's thrift source with ``kerberos = true`` on both;
Apache Flume 1.11's own thrift sink and source with pyflume's, both ways; a client without Kerberos refused by the
secure source; a client naming a wrong server principal fails clearly and keeps its events."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

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
    from thriftpy2.protocol.binary import TBinaryProtocol  # the pure-Python one (the Cython one needs its own transports)
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
