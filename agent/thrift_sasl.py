"""Thrift's SASL transport with Kerberos (GSSAPI), both ends, as libthrift's ``TSaslClientTransport`` and
``TSaslServerTransport`` speak it: what Flume 1.11's secure Thrift source and sink use (``kerberos = true``), and what
HBase's secure Thrift server expects (``hbase.thrift.security.qop``).

On the wire, after the TCP (or TLS) connection:

1. negotiation messages, each ``status:u8 | length:i32 (big-endian) | payload``, status START (1), OK (2), BAD (3),
   ERROR (4) or COMPLETE (5). The client sends START with the mechanism name (``GSSAPI``), then OK with its first
   GSSAPI token; the two ends exchange tokens until the Kerberos context is made; then (RFC 4752) the server sends a
   4-byte message, wrapped without encryption: the security layers it offers (bit 1: none, ``auth``; bit 2:
   integrity, ``auth-int``; bit 4: privacy, ``auth-conf``) and its largest buffer; the client answers, wrapped
   likewise, with the one layer it chose, its own largest buffer and optionally an authorization id, in a COMPLETE
   message; the server checks it and ends with COMPLETE. BAD and ERROR carry the peer's reason as text and end the
   connection.
2. data frames, ``length:i32 | payload``: for ``auth`` exactly Thrift's framed transport (Flume uses this SASL
   transport *instead of* its TFastFramedTransport, not inside it); for ``auth-int`` and ``auth-conf`` each payload
   is a GSSAPI wrap token (signed, or encrypted) of one flush's bytes.

Kerberos comes from MIT's library through the ``gssapi`` package: a client initiates with the TGT of an
``agent.kerberos`` login (a private credential cache, renewed there), a server accepts with the keys of its
principal's keytab.

The API (used by the thrift source and sink, and by other Thrift clients such as HBase's):

- :func:`client` negotiates over a connected socket and returns a :class:`SaslConnection`;
- :func:`server` does the server's half over an accepted socket;
- :class:`SaslConnection` has ``read_frame``/``write_frame`` (one Thrift message per frame, as
  :class:`agent.thrift_rpc.FramedConnection`) and thriftpy2's transport methods (``read``, ``write``, ``flush``,
  ``is_open``, ``open``, ``close``) so a thriftpy2 ``TClient`` can run over it with the pure-Python protocols
  (``thriftpy2.protocol.binary.TBinaryProtocol``, ``thriftpy2.protocol.compact.TCompactProtocol``; the Cython ones,
  ``thriftpy2.protocol.TBinaryProtocol`` and happybase's default, accept only thriftpy2's Cython transports);
- :class:`SaslClientTransport` is a thriftpy2 transport that wraps a ``TSocket`` (for happybase's
  ``transport_class``-style construction) and negotiates on ``open()``;
- :func:`initiator_credentials` / :func:`acceptor_credentials` make the GSSAPI credentials from a login or a keytab;
  :func:`split_principal` is Flume's ``splitKerberosName`` (``service/host@REALM``, ``_HOST`` resolved).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

from agent.kerberos import Login, _gss_message, resolve_principal
from agent.thrift_rpc import DEFAULT_MAX_FRAME, FramedConnection, FrameError

__all__ = ["START", "OK", "BAD", "ERROR", "COMPLETE", "QOPS", "SaslError", "SaslConnection", "SaslClientTransport",
           "client", "server", "initiator_credentials", "acceptor_credentials", "split_principal", "parse_qop"]

START, OK, BAD, ERROR, COMPLETE = 1, 2, 3, 4, 5
_STATUS = {START: "START", OK: "OK", BAD: "BAD", ERROR: "ERROR", COMPLETE: "COMPLETE"}

#: SASL quality of protection -> its RFC 4752 security layer bit
QOPS = {"auth": 1, "auth-int": 2, "auth-conf": 4}
_LAYER_NAMES = {bit: name for name, bit in QOPS.items()}

MECHANISM = "GSSAPI"
#: the largest buffer we announce (RFC 4752's 3-byte field); as Java's SASL GSSAPI default
_MAX_BUFFER = 65536
#: negotiation messages are GSSAPI tokens (a few KB, tens with a big PAC) or short texts
_MAX_NEGOTIATION = 1 << 20

_HEADER = struct.Struct(">Bi")


class SaslError(FrameError):
    """The SASL negotiation failed: the peer refused it (its reason quoted), Kerberos failed on this side (no
    ticket for the server principal, wrong key …), or the peer does not speak Thrift's SASL transport. The
    connection is closed. A FrameError, so the serving loops that close a bad connection treat it alike."""


def parse_qop(text: str | Sequence[str]) -> tuple[str, ...]:
    """``auth``, ``auth-int``, ``auth-conf`` or several (a comma separated text or a sequence), in order of
    preference, as Java's ``javax.security.sasl.qop``; ValueError for anything else."""
    items = [x.strip().lower() for x in (text.split(",") if isinstance(text, str) else text)]
    items = [x for x in items if x]
    bad = [x for x in items if x not in QOPS]
    if bad or not items:
        raise ValueError(f"SASL QOP {text!r}: expected auth, auth-int or auth-conf (or several, comma separated)")
    return tuple(dict.fromkeys(items))


def split_principal(principal: str) -> tuple[str, str, str]:
    """Flume's ``FlumeAuthenticationUtil.splitKerberosName``: ``_HOST`` becomes this host's canonical name, then
    ``service/host@REALM`` splits into its three parts. ValueError for a principal of another form (a SASL server
    is a service on a host)."""
    resolved = resolve_principal(principal)
    name, at, realm = resolved.rpartition("@")
    if not at:
        name, realm = resolved, ""
    service, slash, host = name.partition("/")
    if not slash or not service or not host or "/" in host:
        raise ValueError(f"'{principal}' is not a service principal of the form service/host@REALM")
    return service, host, realm


def _gssapi() -> Any:
    try:
        import gssapi
    except ImportError:
        raise SaslError("Kerberos (SASL/GSSAPI) needs the gssapi package: pip install 'pyflume-agent[kerberos]' "
                        "(it builds against MIT Kerberos: apt-get install libkrb5-dev gcc)") from None
    return gssapi


def initiator_credentials(login: Login) -> Any:
    """GSSAPI credentials to initiate with, from ``login``'s credential cache (logging in first when its ticket is
    missing or near its end; KerberosLoginError when the KDC refuses or cannot be reached)."""
    gssapi = _gssapi()
    ccache = login.ensure()
    try:
        return gssapi.Credentials(name=gssapi.Name(login.principal, gssapi.NameType.kerberos_principal),
                                  usage="initiate", store={"ccache": ccache})
    except gssapi.exceptions.GSSError as exc:
        raise SaslError(f"no Kerberos credentials for {login.principal} in {ccache}: {_gss_message(exc)}") from None


def acceptor_credentials(principal: str, keytab: str) -> Any:
    """GSSAPI credentials to accept with: the keys of ``principal`` in ``keytab`` (read by the library as needed,
    so a keytab replaced with new keys is used without a restart)."""
    gssapi = _gssapi()
    try:
        return gssapi.Credentials(name=gssapi.Name(principal, gssapi.NameType.kerberos_principal), usage="accept",
                                  store={"keytab": str(keytab)})
    except gssapi.exceptions.GSSError as exc:
        raise SaslError(f"cannot accept Kerberos as {principal} with keytab {keytab}: {_gss_message(exc)}") from None


class SaslConnection(FramedConnection):
    """A socket after the SASL negotiation: Thrift data frames, wrapped by the GSSAPI context when the negotiated
    QOP is ``auth-int`` or ``auth-conf``. ``qop`` is the QOP in use, ``peer`` the other end's principal."""

    def __init__(self, sock: socket.socket, max_frame: int = DEFAULT_MAX_FRAME):
        super().__init__(sock, max_frame)
        self.context: Any = None
        self.qop = "auth"
        self.peer = ""
        self._encrypt: bool | None = None  # None: no wrapping
        self._rbuf = b""
        self._wbuf: list[bytes] = []

    # negotiation messages ------------------------------------------------------------------------------------
    def _read_exact(self, n: int) -> bytes:
        buf = self._buf
        while len(buf) < n:
            data = self.sock.recv(max(65536, n - len(buf)))
            if not data:
                if buf:
                    raise SaslError(f"the peer closed the connection in the middle of a SASL message ({len(buf)} "
                                    f"of {n} bytes)")
                raise EOFError
            buf += data
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def receive(self) -> tuple[int, bytes]:
        """The next negotiation message as (status, payload); SaslError for BAD or ERROR (with the peer's reason)
        and for anything that is not a negotiation message; EOFError when the peer closed before sending one."""
        status, length = _HEADER.unpack(self._read_exact(5))
        if status not in _STATUS:
            self._refuse(ERROR, f"Invalid status {status}")
            raise SaslError(f"the peer did not send a SASL negotiation message (status byte {status}); is it "
                            "speaking Thrift without SASL (kerberos off on one side)?")
        if length < 0 or length > _MAX_NEGOTIATION:
            self._refuse(ERROR, f"Invalid payload header length: {length}")
            raise SaslError(f"a SASL negotiation message of {length} bytes; is the peer speaking Thrift's SASL "
                            "transport?")
        payload = self._read_exact(length) if length else b""
        if status in (BAD, ERROR):
            text = payload.decode("utf-8", "replace").strip() or "no reason given"
            raise SaslError(f"the peer refused the SASL negotiation ({_STATUS[status]}): {text}")
        return status, payload

    def send(self, status: int, payload: bytes = b"") -> None:
        self.sock.sendall(_HEADER.pack(status, len(payload)) + payload)

    def _refuse(self, status: int, reason: str) -> None:
        """Tell the peer why (BAD or ERROR), as libthrift does before closing; a failure to send is ignored."""
        try:
            self.send(status, reason.encode())
        except OSError:
            pass

    def _use_layer(self, bit: int) -> None:
        self.qop = _LAYER_NAMES[bit]
        self._encrypt = None if bit == 1 else bit == 4

    # data frames --------------------------------------------------------------------------------------------
    def read_frame(self) -> bytes:
        frame = super().read_frame()
        if self._encrypt is None:
            return frame
        try:
            return self.context.unwrap(frame).message
        except Exception as exc:  # noqa: BLE001 - gssapi's errors: a frame that is not a valid wrap token
            raise FrameError(f"cannot unwrap a SASL {self.qop} frame of {len(frame)} bytes: "
                             f"{_gss_message(exc)}") from None

    def write_frame(self, payload: bytes) -> None:
        if self._encrypt is not None:
            payload = self.context.wrap(payload, self._encrypt).message
        super().write_frame(payload)

    # thriftpy2's transport interface ------------------------------------------------------------------------
    def is_open(self) -> bool:
        return self.sock.fileno() >= 0

    def open(self) -> None:
        """Already open (negotiated)."""

    def read(self, sz: int) -> bytes:
        """Exactly ``sz`` bytes (across frames), as thriftpy2's protocols expect; EOFError at the end."""
        while len(self._rbuf) < sz:
            self._rbuf += self.read_frame()
        out, self._rbuf = self._rbuf[:sz], self._rbuf[sz:]
        return out

    def write(self, buf: bytes) -> None:
        self._wbuf.append(bytes(buf))

    def flush(self) -> None:
        """Everything written since the last flush, as one frame (one Thrift message)."""
        data = b"".join(self._wbuf)
        self._wbuf = []
        self.write_frame(data)


def client(sock: socket.socket, service: str, host: str, credentials: Any, qop: str | Sequence[str] = "auth", *,
           realm: str = "", authzid: str = "", max_frame: int = DEFAULT_MAX_FRAME) -> SaslConnection:
    """``TSaslClientTransport.open()`` with GSSAPI over the connected ``sock``: authenticates to the service
    principal ``service/host`` (``@realm`` when given, else the realm the library maps ``host`` to), with
    ``credentials`` (:func:`initiator_credentials`), and agrees on the first QOP of ``qop`` (a text or a sequence,
    in order of preference) that the server offers. Returns the connection for the data frames; raises SaslError
    (the socket closed) when the negotiation fails, OSError when the socket does."""
    gssapi = _gssapi()
    wanted = parse_qop(qop)
    conn = SaslConnection(sock, max_frame)
    target = f"{service}/{host}@{realm}" if realm else f"{service}@{host}"
    try:
        if realm:
            name = gssapi.Name(target, gssapi.NameType.kerberos_principal)
        else:
            name = gssapi.Name(target, gssapi.NameType.hostbased_service)
        flags = (gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.integrity
                 | gssapi.RequirementFlag.confidentiality)
        ctx = gssapi.SecurityContext(name=name, creds=credentials, usage="initiate", mech=gssapi.MechType.kerberos,
                                     flags=flags)
        conn.context = ctx
        try:
            token = ctx.step()
        except gssapi.exceptions.GSSError as exc:
            raise SaslError(f"cannot get a Kerberos service ticket for {target}: {_gss_message(exc)}") from None
        conn.send(START, MECHANISM.encode())
        conn.send(OK, token or b"")
        while True:
            try:
                status, payload = conn.receive()
            except EOFError:
                raise SaslError("the server closed the connection during the SASL negotiation; is it a Thrift "
                                "server with SASL (kerberos = true)?") from None
            if status not in (OK, COMPLETE):
                conn._refuse(ERROR, f"Expected COMPLETE or OK, got {_STATUS[status]}")
                raise SaslError(f"the server sent {_STATUS[status]} during the SASL negotiation")
            if not ctx.complete:
                if status == COMPLETE:
                    raise SaslError("the server ended the SASL negotiation before Kerberos authenticated it")
                try:
                    token = ctx.step(payload)
                except gssapi.exceptions.GSSError as exc:
                    reason = f"GSSAPI: {_gss_message(exc)}"
                    conn._refuse(BAD, reason)
                    raise SaslError(f"the server {target} failed Kerberos' mutual authentication: "
                                    f"{reason}") from None
                conn.send(OK, token or b"")
                continue
            # the server's offer of security layers (RFC 4752 section 3.1)
            offer = _unwrap(conn, payload, "the server's security layer offer")
            if len(offer) != 4:
                conn._refuse(BAD, "Invalid security layer offer")
                raise SaslError(f"the server's security layer offer has {len(offer)} bytes, not 4")
            offered = offer[0]
            chosen = next((QOPS[q] for q in wanted if offered & QOPS[q]), 0)
            if not chosen:
                names = ", ".join(n for b, n in sorted(_LAYER_NAMES.items()) if offered & b) or "none"
                conn._refuse(BAD, "No common protection layer between client and server")
                raise SaslError(f"the server offers QOP {names}; this client accepts {', '.join(wanted)} (HBase: "
                                "hbase.thrift.security.qop) — no common protection layer")
            answer = bytes((chosen,)) + (0 if chosen == 1 else _MAX_BUFFER).to_bytes(3, "big") + authzid.encode()
            conn.send(COMPLETE, ctx.wrap(answer, False).message)
            status, _ = conn.receive()
            if status != COMPLETE:
                raise SaslError(f"expected SASL COMPLETE from the server, got {_STATUS[status]}")
            conn._use_layer(chosen)
            conn.peer = str(ctx.target_name) if ctx.target_name is not None else target
            return conn
    except BaseException:
        conn.close()
        raise


def _unwrap(conn: SaslConnection, payload: bytes, what: str) -> bytes:
    try:
        return conn.context.unwrap(payload).message
    except Exception as exc:  # noqa: BLE001 - gssapi's errors
        reason = f"cannot unwrap {what}: {_gss_message(exc)}"
        conn._refuse(BAD, reason)
        raise SaslError(reason) from None


def server(sock: socket.socket, credentials: Any, qop: str | Sequence[str] = "auth", *,
           authorize: Callable[[str, str], bool] | None = None,
           max_frame: int = DEFAULT_MAX_FRAME) -> SaslConnection:
    """``TSaslServerTransport.open()`` with GSSAPI over an accepted ``sock``: accepts the client's Kerberos
    authentication with ``credentials`` (:func:`acceptor_credentials`), offers the layers of ``qop`` and checks
    the client's choice. The client may name an authorization id; as Hadoop's ``SaslGssCallbackHandler`` (Flume's
    source), it must be the authenticated principal itself unless ``authorize(principal, authzid)`` says yes.
    Returns the connection (``peer`` is the client's principal). EOFError when the client closed before sending
    anything (a port probe); SaslError when the negotiation fails (the client is told why, BAD or ERROR, as
    libthrift does)."""
    gssapi = _gssapi()
    layers = 0
    for q in parse_qop(qop):
        layers |= QOPS[q]
    conn = SaslConnection(sock, max_frame)
    status, payload = conn.receive()
    if status != START:
        conn._refuse(BAD, f"Expecting START status, received {_STATUS[status]}")
        raise SaslError(f"the client's first SASL message is {_STATUS[status]}, not START")
    mechanism = payload.decode("utf-8", "replace")
    if mechanism != MECHANISM:
        conn._refuse(BAD, f"Unsupported mechanism type {mechanism}")
        raise SaslError(f"the client asks for SASL mechanism {mechanism!r}; this server speaks {MECHANISM}")
    ctx = gssapi.SecurityContext(creds=credentials, usage="accept")
    conn.context = ctx
    try:
        while not ctx.complete:
            status, payload = _expect_response(conn)
            try:
                token = ctx.step(payload)
            except gssapi.exceptions.GSSError as exc:
                reason = f"GSSAPI: {_gss_message(exc)}"
                conn._refuse(BAD, reason)
                raise SaslError(f"Kerberos authentication of the client failed: {reason}") from None
            if token:
                conn.send(OK, token)
                if ctx.complete:  # the client answers the last token (mutual authentication) with an empty one
                    _expect_response(conn)
            elif not ctx.complete:
                conn.send(OK, b"")
        conn.peer = str(ctx.initiator_name)
        conn.send(OK, ctx.wrap(bytes((layers,)) + _MAX_BUFFER.to_bytes(3, "big"), False).message)
        _, payload = _expect_response(conn)
        answer = _unwrap(conn, payload, "the client's security layer answer")
        if len(answer) < 4:
            conn._refuse(BAD, "Invalid security layer answer")
            raise SaslError(f"the client's security layer answer has {len(answer)} bytes")
        chosen = answer[0]
        if chosen not in _LAYER_NAMES or not layers & chosen:
            offered = ", ".join(n for b, n in sorted(_LAYER_NAMES.items()) if layers & b)
            conn._refuse(BAD, f"Client selected unsupported protection: {chosen}")
            raise SaslError(f"the client chose security layer {chosen}; this server offers {offered}")
        authzid = answer[4:].decode("utf-8", "replace")
        if authzid and authzid != conn.peer and not (authorize and authorize(conn.peer, authzid)):
            conn._refuse(BAD, f"Authorization failed: {conn.peer} may not act as {authzid}")
            raise SaslError(f"{conn.peer} asked to act as {authzid}; refused")
        conn.send(COMPLETE)
        conn._use_layer(chosen)
        return conn
    except BaseException:
        conn.close()
        raise


def _expect_response(conn: SaslConnection) -> tuple[int, bytes]:
    try:
        status, payload = conn.receive()
    except EOFError:
        raise SaslError("the client closed the connection during the SASL negotiation") from None
    if status not in (OK, COMPLETE):
        conn._refuse(ERROR, f"Expected COMPLETE or OK, got {_STATUS[status]}")
        raise SaslError(f"the client sent {_STATUS[status]} in the middle of the SASL negotiation")
    return status, payload


class SaslClientTransport:
    """A thriftpy2 transport: SASL/GSSAPI over a thriftpy2 ``TSocket`` (or anything with ``open()`` and a ``sock``
    attribute once open), negotiated on :meth:`open`. ``credentials`` is GSSAPI credentials or a function giving
    them (called at each open, so a renewed ticket is used: ``lambda: initiator_credentials(login)``).

    For happybase-style construction (``transport_class(socket)``) bind the rest with ``functools.partial``."""

    def __init__(self, tsocket: Any, service: str, host: str, credentials: Any, qop: str | Sequence[str] = "auth",
                 *, realm: str = "", authzid: str = "", max_frame: int = DEFAULT_MAX_FRAME):
        self.tsocket = tsocket
        self.service, self.host, self.realm = service, host, realm
        self.credentials = credentials
        self.qop = parse_qop(qop)
        self.authzid = authzid
        self.max_frame = max_frame
        self.conn: SaslConnection | None = None

    def is_open(self) -> bool:
        return self.conn is not None and self.conn.is_open()

    def open(self) -> None:
        if self.conn is not None:
            return
        if not (getattr(self.tsocket, "sock", None) and self.tsocket.is_open()):
            self.tsocket.open()
        creds = self.credentials() if callable(self.credentials) else self.credentials
        self.conn = client(self.tsocket.sock, self.service, self.host, creds, self.qop, realm=self.realm,
                           authzid=self.authzid, max_frame=self.max_frame)

    def _open_conn(self) -> SaslConnection:
        if self.conn is None:
            raise SaslError("the SASL transport is not open")
        return self.conn

    def read(self, sz: int) -> bytes:
        try:
            return self._open_conn().read(sz)
        except (EOFError, FrameError) as exc:  # as thriftpy2's own transports report an end or a bad frame
            from thriftpy2.transport import TTransportException

            raise TTransportException(TTransportException.END_OF_FILE, str(exc) or "the server closed the "
                                      "connection") from exc

    def write(self, buf: bytes) -> None:
        self._open_conn().write(buf)

    def flush(self) -> None:
        self._open_conn().flush()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        try:
            self.tsocket.close()
        except Exception:  # noqa: BLE001 - closing a socket that is already gone
            pass
