"""The Avro sink: sends batches over Flume's Avro RPC to the next tier (a pyflume or Apache Flume Avro source).

The transaction commits only after the peer answered OK for the whole batch. A peer that is down, slow, or answers
FAILED makes the batch roll back and the runner back off; the connection is opened again on the next try. Inside a
failover or load_balance sink group, one collector spreads over several aggregators and survives one going away.
"""

from __future__ import annotations

import ssl
import time

from agent.core import BatchSink, Event, EventDeliveryException
from agent.keystores import StoreError
from agent.rpc import RpcClient, RpcError
from agent.spec import Conf, Prop, Spec
from agent.tls import CLIENT_TLS_PROPS, apply_client_protocols, load_trust_store, setting

__all__ = ["AvroSink"]


class AvroSink(BatchSink):
    """Forwards events to an Avro source; commits after the peer's OK."""

    alias = "avro"
    flume_class = "org.apache.flume.sink.AvroSink"
    batch_size_prop = "batch-size"
    spec = Spec(
        Prop("hostname", "str", required=True, doc="Host of the Avro source to send to."),
        Prop("port", "int", required=True, doc="Its port.", min=1, max=65535),
        Prop("batch-size", "int", 100, "Events per transaction and per appendBatch call.", min=1),
        Prop("connect-timeout", "int", 20000, "Milliseconds to wait for the connection (and handshake).", min=1),
        Prop("request-timeout", "int", 20000, "Milliseconds to wait for the answer to a batch.", min=1),
        Prop("reset-connection-interval", "int", 0, "Seconds after which the connection is reopened (0: never), "
             "e.g. to rebalance behind a load balancer.", min=0),
        Prop("compression-type", "enum", "none", "deflate: zlib-compress both directions (the source must match).",
             choices={"none": "", "deflate": ""}),
        Prop("compression-level", "int", 6, "zlib level for deflate (0-9).", min=0, max=9),
        Prop("ssl", "bool", False, "Connect with TLS."),
        Prop("trust-all-certs", "bool", False, "Do not verify the server's certificate."),
        Prop("truststore", "str", None, "The certificates to trust: a JKS, JCEKS or PKCS12 trust store made by "
             "keytool, or a PEM file (read by content, whatever the file is called). Unset: "
             "-Djavax.net.ssl.trustStore, else FLUME_SSL_TRUSTSTORE_PATH, else the system's CAs."),
        Prop("truststore-password", "str", None, "Password of the trust store (unset: "
             "-Djavax.net.ssl.trustStorePassword, else FLUME_SSL_TRUSTSTORE_PASSWORD)."),
        Prop("truststore-type", "str", "JKS", "Accepted: the file's content says what it is (JKS, JCEKS, PKCS12 or "
             "PEM)."),
        *CLIENT_TLS_PROPS,
        Prop("maxIoWorkers", "int", None, "Accepted for compatibility (one connection per sink).", min=1),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.host: str = c.hostname
        self.port: int = c.port
        self.reset_interval: int = c.reset_connection_interval
        ctx = None
        if c.ssl:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False  # Flume's client does not verify host names either
            if c.trust_all_certs:
                ctx.verify_mode = ssl.CERT_NONE
            elif truststore := setting(conf, "truststore"):  # the sink's own, else Flume's global one
                try:  # JKS, JCEKS, PKCS12 or PEM by the file's content; the declared type is not needed
                    load_trust_store(ctx, truststore, setting(conf, "truststore-password"))
                except (OSError, ValueError, ssl.SSLError) as exc:
                    conf.error(f"cannot load {truststore}: {exc}",
                               "truststore-password" if isinstance(exc, StoreError) and conf.is_set(
                                   "truststore-password") and "password" in str(exc) else "truststore")
            else:
                ctx.load_default_certs()
            apply_client_protocols(ctx, conf)
        self.client = RpcClient(self.host, self.port, connect_timeout=c.connect_timeout / 1000,
                                request_timeout=c.request_timeout / 1000,
                                deflate=c.compression_type == "deflate", level=c.compression_level,
                                ssl_context=ctx)
        self._opened = 0.0

    def start(self) -> None:
        self.counter.started()
        try:
            self._connect()
        except RpcError as exc:  # not fatal: the first batch retries
            self.log.warning("Avro sink %s: %s (will retry)", self.name, exc)
        self.log.info("Avro sink %s started, sending to %s:%d", self.name, self.host, self.port)

    def stop(self) -> None:
        self._disconnect()
        self.counter.stopped()
        self.log.info("Avro sink %s stopped", self.name)

    def _connect(self) -> None:
        try:
            self.client.connect()
        except RpcError:
            self.counter.add(connection_failed=1)
            raise
        self.counter.add(connection_created=1)
        self._opened = time.monotonic()

    def _disconnect(self) -> None:
        if self.client.connected:
            self.client.close()
            self.counter.add(connection_closed=1)

    def deliver(self, events: list[Event]) -> None:
        if self.client.connected and self.reset_interval and time.monotonic() - self._opened > self.reset_interval:
            self._disconnect()
        if not self.client.connected:
            self._connect()
        try:
            self.client.append_batch(events)
        except RpcError as exc:
            if not self.client.connected:
                self.counter.add(connection_closed=1)
            raise EventDeliveryException(f"Avro sink {self.name}: {exc}") from exc
