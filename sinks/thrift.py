"""The Thrift sink: sends batches over Flume's Thrift RPC (``ThriftSourceProtocol.appendBatch``) to the next tier,
a pyflume or Apache Flume Thrift source, in the compact (Flume's default) or binary protocol, optionally over TLS,
optionally authenticated with Kerberos (``kerberos = true``: Thrift's SASL transport with GSSAPI, as Flume's
SecureThriftRpcClient; the login from ``client-keytab`` is the agent's one login, renewed in the background).

As the Avro sink: the transaction commits only after the peer answered OK for the whole batch; a peer that is down,
slow, or answers anything else makes the batch roll back and the runner back off, and the connection is opened
again on the next try. Inside a failover or load_balance sink group, one collector spreads over several
aggregators and survives one going away.
"""

from __future__ import annotations

import socket

from agent import kerberos, thrift_sasl
from agent.kerberos import KerberosLoginError
from agent.spec import Conf, Spec
from agent.thrift_rpc import THRIFT_SINK_PROTOCOL_PROP, FramedConnection, ThriftClient, ThriftError, flume_protocol
from agent.tls import CLIENT_TLS_PROPS, CLIENT_TRUST_PROPS, client_context
from sinks.rpc import RPC_SINK_PROPS, RpcSink

__all__ = ["ThriftSink"]


class ThriftSink(RpcSink):
    """Forwards events to a Thrift source; commits after the peer's OK."""

    alias = "thrift"
    flume_class = "org.apache.flume.sink.ThriftSink"
    label = "Thrift"
    client_error = ThriftError
    accepts_batch = True  # thrift_rpc.encode_events writes a Batch's shared headers once
    spec = Spec(
        *RPC_SINK_PROPS,
        THRIFT_SINK_PROTOCOL_PROP,
        *CLIENT_TRUST_PROPS,
        *CLIENT_TLS_PROPS,
        *thrift_sasl.SINK_KERBEROS_PROPS,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.kerberos = thrift_sasl.sink_settings(conf)
        self.kerberos_identities = [self.kerberos.identity] if self.kerberos else []  # one principal per agent
        self._login: kerberos.Login | None = None
        self.client = ThriftClient(self.host, self.port, protocol=flume_protocol(conf, "thrift sink"),
                                   connect_timeout=c.connect_timeout / 1000,
                                   request_timeout=c.request_timeout / 1000, ssl_context=client_context(conf),
                                   handshake=self._sasl if self.kerberos else None,
                                   handshake_errors=(KerberosLoginError,))

    def start(self) -> None:
        if self.kerberos is not None:
            self._login = kerberos.login(self.kerberos.identity)
        super().start()

    def stop(self) -> None:
        super().stop()
        if self._login is not None:
            kerberos.release(self._login)
            self._login = None

    def _sasl(self, sock: socket.socket) -> FramedConnection:
        """The SASL negotiation with the secure source (QOP auth, as Flume), as this agent's login."""
        k = self.kerberos
        assert k is not None and self._login is not None
        creds = thrift_sasl.initiator_credentials(self._login)
        conn = thrift_sasl.client(sock, k.service, k.host, creds, "auth", realm=k.realm,
                                  max_frame=self.client.max_frame)
        self.log.debug("Thrift sink %s: authenticated to %s as %s", self.name, k.server_principal,
                       k.identity.principal)
        return conn
