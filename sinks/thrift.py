"""The Thrift sink: sends batches over Flume's Thrift RPC (``ThriftSourceProtocol.appendBatch``) to the next tier,
a pyflume or Apache Flume Thrift source, in the compact (Flume's default) or binary protocol, optionally over TLS.

As the Avro sink: the transaction commits only after the peer answered OK for the whole batch; a peer that is down,
slow, or answers anything else makes the batch roll back and the runner back off, and the connection is opened
again on the next try. Inside a failover or load_balance sink group, one collector spreads over several
aggregators and survives one going away.
"""

from __future__ import annotations

from agent.spec import Conf, Prop, Spec
from agent.thrift_rpc import KERBEROS_NOT_YET, THRIFT_SINK_PROTOCOL_PROP, ThriftClient, ThriftError, flume_protocol
from agent.tls import CLIENT_TLS_PROPS, CLIENT_TRUST_PROPS, client_context
from sinks.rpc import RPC_SINK_PROPS, RpcSink

__all__ = ["ThriftSink"]


class ThriftSink(RpcSink):
    """Forwards events to a Thrift source; commits after the peer's OK."""

    alias = "thrift"
    flume_class = "org.apache.flume.sink.ThriftSink"
    label = "Thrift"
    client_error = ThriftError
    spec = Spec(
        *RPC_SINK_PROPS,
        THRIFT_SINK_PROTOCOL_PROP,
        *CLIENT_TRUST_PROPS,
        *CLIENT_TLS_PROPS,
        Prop("kerberos", "bool", False, "Authenticate with Kerberos (SASL/GSSAPI): not supported by pyflume yet."),
        Prop("client-principal", "str", None, "With kerberos: the principal this sink authenticates as."),
        Prop("client-keytab", "str", None, "With kerberos: the keytab of client-principal."),
        Prop("server-principal", "str", None, "With kerberos: the principal of the Thrift source."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        if c.kerberos:
            conf.error(KERBEROS_NOT_YET, "kerberos")
        self.client = ThriftClient(self.host, self.port, protocol=flume_protocol(conf, "thrift sink"),
                                   connect_timeout=c.connect_timeout / 1000,
                                   request_timeout=c.request_timeout / 1000, ssl_context=client_context(conf))
