"""The Avro sink: sends batches over Flume's Avro RPC to the next tier (a pyflume or Apache Flume Avro source).

The transaction commits only after the peer answered OK for the whole batch. A peer that is down, slow, or answers
FAILED makes the batch roll back and the runner back off; the connection is opened again on the next try. Inside a
failover or load_balance sink group, one collector spreads over several aggregators and survives one going away.
"""

from __future__ import annotations

from agent.rpc import RpcClient, RpcError
from agent.spec import Conf, Prop, Spec
from agent.tls import CLIENT_TLS_PROPS, CLIENT_TRUST_PROPS, client_context
from sinks.rpc import RPC_SINK_PROPS, RpcSink

__all__ = ["AvroSink"]


class AvroSink(RpcSink):
    """Forwards events to an Avro source; commits after the peer's OK."""

    alias = "avro"
    flume_class = "org.apache.flume.sink.AvroSink"
    label = "Avro"
    client_error = RpcError
    accepts_batch = True  # rpc.encode_events writes a Batch's shared headers once
    takes_ahead = True  # RpcClient.send_batch / batch_answer
    spec = Spec(
        *RPC_SINK_PROPS,
        Prop("compression-type", "enum", "none", "deflate: zlib-compress both directions (the source must match).",
             choices={"none": "", "deflate": ""}),
        Prop("compression-level", "int", 6, "zlib level for deflate (0-9).", min=0, max=9),
        *CLIENT_TRUST_PROPS,
        *CLIENT_TLS_PROPS,
        Prop("maxIoWorkers", "int", None, "Accepted for compatibility (one connection per sink).", min=1),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.client = RpcClient(self.host, self.port, connect_timeout=c.connect_timeout / 1000,
                                request_timeout=c.request_timeout / 1000,
                                deflate=c.compression_type == "deflate", level=c.compression_level,
                                ssl_context=client_context(conf))
