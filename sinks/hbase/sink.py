"""The HBase sinks (``hbase2``, ``hbase``, ``asynchbase``): Flume's properties and serializers, over HBase Thrift.

Python has no maintained client for HBase's native RPC, so these sinks talk to the HBase Thrift server (Thrift 1
protocol, through happybase's client). The ``thrift`` property names it (``host:port`` list, tried in turn); without
it each ``zookeeperQuorum`` host is tried on port 9090, the Thrift server's default. Everything else is Flume's: the
same properties and defaults, and serializers that write exactly the rows, columns and increments Flume's write.

One batch is one transaction: the serializer turns the events into puts and increments, every put goes in one
``mutateRows`` call and every increment in one ``incrementRows`` call (coalesced per row and column first when
``coalesceIncrements`` is on), and the channel transaction commits only after HBase acknowledged both. Any failure
rolls the batch back and the runner backs off; the connection is dropped and the next batch reconnects, trying
each Thrift server in turn. A table or column family that does not exist is reported by name, and the events stay
in the channel until it does.

With ``kerberosPrincipal`` and ``kerberosKeytab`` (Flume's properties) the sink logs in from the keytab
(agent.kerberos: a private credential cache, renewed; one login per agent) and reaches a secure Thrift server
(``hbase.thrift.security.qop``) over Thrift's SASL transport with GSSAPI (agent.thrift_sasl), which runs the calls
as the principal's short name. A login or SASL failure fails the batch like any other connection failure: the events
stay in the channel and the runner backs off.
"""

from __future__ import annotations

from typing import Any

from agent import kerberos, registry
from agent.core import BatchSink, Event, EventDeliveryException
from agent.kerberos import KerberosLoginError
from agent.spec import Conf, ConfigError, Prop, Spec
from agent.thrift_sasl import SaslError
from sinks.hbase.serializers import HbaseEventSerializer
from sinks.hbase.thrift import (
    THRIFT_DEFAULT_PORT,
    encode_mutate_rows,
    first_line,
    hbase_thrift,
    io_error_text,
    sasl_connection,
    server_principal,
    thrift_targets,
)

__all__ = ["HBase2Sink", "HBaseSink", "AsyncHBaseSink"]


class _HBaseSinkBase(BatchSink):
    """What the three HBase sink types share; they differ only in their Flume names and default serializer."""

    batch_size_prop = "batchSize"

    @classmethod
    def make_spec(cls, default_serializer: str, *extra: Prop) -> Spec:
        return Spec(
            Prop("table", "str", required=True, doc="The table to write to."),
            Prop("columnFamily", "str", required=True, doc="The column family the serializer writes to."),
            Prop("thrift", "str", None,
                 "pyflume: the HBase Thrift server(s), host:port (comma-separated list, tried in turn). Without it "
                 "each zookeeperQuorum host is tried on port 9090, the Thrift server's default."),
            Prop("thrift.transport", "enum", "buffered", "pyflume: the Thrift server's transport (its -f flag "
                 "means framed).", choices={"buffered": "The Thrift server's default (threadpool mode).",
                                            "framed": "For a server started with -f, -nonblocking, -hsha or "
                                                      "-threadedselector."}),
            Prop("thrift.protocol", "enum", "binary", "pyflume: the Thrift server's protocol (its -c flag means "
                 "compact).", choices={"binary": "The default.", "compact": "For a server started with -c."}),
            Prop("zookeeperQuorum", "str", None,
                 "The quorum (host:port, comma list) as in hbase-site.xml. pyflume reaches HBase through its Thrift "
                 "server: without `thrift`, these hosts are tried on port 9090."),
            Prop("znodeParent", "str", "/hbase", "HBase's root znode. Accepted for compatibility; the Thrift server "
                 "has its own."),
            Prop("batchSize", "int", 100, "Events per transaction (puts and increments are sent once per batch).",
                 min=1),
            Prop("coalesceIncrements", "bool", False,
                 "Sum the increments of a batch per row and column, sending each cell once."),
            Prop("enableWal", "bool", True, "Write puts to HBase's write-ahead log. False is faster and can lose "
                 "the memstore on a region server crash."),
            Prop("timeout", "int", 60000, "Milliseconds to wait for HBase to answer one call (connect, puts, "
                 "increments).", min=1),
            Prop("serializer", "class", default_serializer,
                 "Serializer class: Flume's Simple or Regex serializer names, or a dotted Python path to a "
                 "subclass of sinks.hbase.HbaseEventSerializer."),
            Prop("serializer.", prefix=True, doc="Options of the serializer."),
            Prop("kerberosPrincipal", "str", None,
                 "Kerberos principal to log in as (name/_HOST@REALM: _HOST becomes this host's name); needs "
                 "kerberosKeytab. The Thrift server is then reached over SASL/GSSAPI (HBase's "
                 "hbase.thrift.security.qop) and runs the calls as this principal's short name. One principal "
                 "per agent, as in Flume."),
            Prop("kerberosKeytab", "str", None, "Keytab file holding the key of kerberosPrincipal; checked by "
                 "--check (it exists, is readable and holds the principal)."),
            Prop("thrift.kerberos.principal", "str", "hbase/_HOST",
                 "pyflume, with kerberosPrincipal: the Thrift server's principal (its "
                 "hbase.thrift.kerberos.principal), service/host[@REALM]; _HOST becomes the host of the `thrift` "
                 "server being connected to, in lower case. Without a realm, the one krb5.conf maps the host to."),
            Prop("thrift.security.qop", "str", "auth-conf,auth-int,auth",
                 "pyflume, with kerberosPrincipal: the SASL qualities of protection accepted, in order of "
                 "preference (auth: authentication only, auth-int: signed, auth-conf: encrypted); the server's "
                 "hbase.thrift.security.qop must be one of them. Set auth-conf to refuse a server that does not "
                 "encrypt."),
            *extra,
        )

    spec = Spec()  # set per subclass

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.table: str = c.table or ""
        self.table_b = self.table.encode()
        self.family: str = c.column_family or ""
        self.family_b = self.family.encode()
        self.timeout_ms: int = c.timeout
        self.wal: bool = c.enable_wal
        self.coalesce: bool = c.coalesce_increments
        self.transport: str = c.thrift_transport
        self.protocol: str = c.thrift_protocol
        self.targets = self._thrift_servers(conf)
        self.kerberos = kerberos.identity(conf, "kerberosPrincipal", "kerberosKeytab")
        self.kerberos_identities = [self.kerberos] if self.kerberos else []  # one principal per agent (config)
        self.qop = ""
        self.server_principal = c.thrift_kerberos_principal
        self._login: kerberos.Login | None = None
        if c.kerberos_principal or c.kerberos_keytab:  # checked even when the pair itself is wrong
            self._check_sasl(conf)
        self.serializer: HbaseEventSerializer | None = None
        try:
            cls = registry.resolve("hbase_serializer", c.serializer)
            sconf = conf.nested("serializer.", cls.spec)
            self.serializer = cls(name, sconf, self.family_b)
        except ConfigError as exc:
            conf.error(exc.message, "serializer." + exc.prop if exc.prop else "serializer")
        self._conn: Any = None
        self._client: Any = None
        self._next_target = 0
        self._checked = False
        self._heads: dict[bytes, bytes] = {}  # encoded Mutation prefix per column (encode_mutate_rows)

    def _check_sasl(self, conf: Conf) -> None:
        """The SASL settings that go with kerberosPrincipal: a known QOP list, a service principal, no framing."""
        from agent.thrift_sasl import parse_qop

        c = self.config
        try:
            self.qop = ",".join(parse_qop(c.thrift_security_qop))
        except ValueError as exc:
            conf.error(str(exc), "thrift.security.qop")
        try:
            server_principal(self.server_principal, "host")
        except ValueError as exc:
            conf.error(f"{exc}; e.g. hbase/_HOST@EXAMPLE.COM (the Thrift server's hbase.thrift.kerberos.principal)",
                       "thrift.kerberos.principal")
        if self.transport == "framed":
            conf.error("HBase's Thrift server does not offer SASL over the framed transport (it refuses to start "
                       "with -f and hbase.thrift.security.qop); remove thrift.transport = framed", "thrift.transport")

    def _thrift_servers(self, conf: Conf) -> list[tuple[str, int]]:
        """The Thrift servers to try in turn: ``thrift``, else the zookeeperQuorum hosts on the Thrift default port,
        else 127.0.0.1:9090 (both with a warning)."""
        c = self.config
        if c.thrift:
            try:
                return thrift_targets(c.thrift, THRIFT_DEFAULT_PORT)
            except ConfigError as exc:
                conf.error(exc.message + "; expected host:port[,host:port...]", "thrift")
                return []
        if c.zookeeper_quorum:
            hosts = [h.strip().rpartition(":")[0] or h.strip() for h in c.zookeeper_quorum.split(",") if h.strip()]
            targets = [(h, THRIFT_DEFAULT_PORT) for h in dict.fromkeys(hosts)]
            conf.warn("HBase is reached through its Thrift server; no `thrift` property is set, so "
                      f"{', '.join(f'{h}:{p}' for h, p in targets)} (the zookeeperQuorum hosts on the Thrift "
                      f"default port) will be tried. If the Thrift server runs elsewhere add the line "
                      f"`<agent>.sinks.{self.name}.thrift = host:port`", "zookeeperQuorum")
            return targets
        conf.warn("HBase is reached through its Thrift server and neither `thrift` nor zookeeperQuorum is "
                  "set, so 127.0.0.1:9090 will be tried; add the line "
                  f"`<agent>.sinks.{self.name}.thrift = host:port` naming your HBase Thrift server")
        return [("127.0.0.1", THRIFT_DEFAULT_PORT)]

    # -- connection -----------------------------------------------------------------------------------------

    def _credentials(self):  # noqa: ANN202 - gssapi.Credentials
        """GSSAPI credentials of the Kerberos login (made on first use, shared with the agent's other components);
        KerberosLoginError while the KDC refuses it or cannot be reached (retried with backoff)."""
        from agent.thrift_sasl import initiator_credentials

        if self._login is None:
            self._login = kerberos.login(self.kerberos)  # type: ignore[arg-type]
        return initiator_credentials(self._login)

    def _open(self, host: str, port: int):  # noqa: ANN202 - a happybase.Connection
        import happybase

        if self.kerberos is None:
            return happybase.Connection(host, port, timeout=self.timeout_ms, transport=self.transport,
                                        protocol=self.protocol, autoconnect=True)
        return sasl_connection(host, port, self.timeout_ms, self.protocol,
                               server_principal(self.server_principal, host), self._credentials, self.qop)

    def _connect(self) -> None:
        errors = []
        n = len(self.targets)
        if self.kerberos is not None:
            try:
                self._credentials()
            except (KerberosLoginError, SaslError) as exc:
                self.counter.add(connection_failed=1)
                raise EventDeliveryException(f"HBase sink {self.name}: {exc}; the events stay in the channel "
                                             "until a login works") from None
        for i in range(n):
            host, port = self.targets[(self._next_target + i) % n]
            try:
                conn = self._open(host, port)
            except Exception as exc:  # noqa: BLE001 - socket and Thrift errors alike: try the next server
                errors.append(f"{host}:{port}: {exc or type(exc).__name__}")
                continue
            self._next_target = (self._next_target + i) % n
            self._conn = conn
            self._client = conn.client
            self.counter.add(connection_created=1)
            return
        self._next_target = (self._next_target + 1) % n
        self.counter.add(connection_failed=1)
        raise EventDeliveryException(f"HBase sink {self.name}: no HBase Thrift server answered "
                                     f"({'; '.join(errors)})")

    def _disconnect(self) -> None:
        conn, self._conn, self._client = self._conn, None, None
        self._checked = False
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self.counter.add(connection_closed=1)

    def _check_table(self) -> None:
        """Table and column family exist? Raises EventDeliveryException naming both when not."""
        Hbase = hbase_thrift()

        try:
            families = self._client.getColumnDescriptors(self.table_b)
        except Hbase.IOError as exc:
            text = io_error_text(exc)
            if "TableNotFound" in text or "does not exist" in text or "not found" in text.lower():
                raise EventDeliveryException(
                    f"HBase sink {self.name}: table '{self.table}' does not exist (column family "
                    f"'{self.family}' expected in it); create it, e.g. in the HBase shell: create "
                    f"'{self.table}', '{self.family}'. The events stay in the channel.") from None
            raise
        names = sorted(f.decode(errors="replace").rstrip(":") for f in families)
        if self.family not in names:
            raise EventDeliveryException(
                f"HBase sink {self.name}: table '{self.table}' has no column family '{self.family}' (it has: "
                f"{', '.join(names) or 'none'}); add it, e.g. alter '{self.table}', '{self.family}'. The events "
                f"stay in the channel.")
        self._checked = True

    def _secure_hint(self, exc: BaseException) -> str:
        """A secure Thrift server reads a plain call as the header of a huge SASL message and never answers: say so
        when a call without Kerberos times out."""
        if self.kerberos is None and isinstance(exc, TimeoutError):
            return ("; if the Thrift server is secure (hbase.thrift.security.qop set), it waits for a SASL "
                    "negotiation: set kerberosPrincipal and kerberosKeytab")
        return ""

    def start(self) -> None:
        self.counter.started()
        try:
            self._connect()
            self._check_table()
            sasl = getattr(getattr(self._conn, "transport", None), "conn", None)
            who = f" as {self.kerberos.principal} (SASL/GSSAPI, QOP {sasl.qop})" if self.kerberos and sasl else ""
            self.log.info("HBase sink %s started: table %s, column family %s, Thrift server %s:%d%s", self.name,
                          self.table, self.family, *self.targets[self._next_target], who)
        except Exception as exc:  # noqa: BLE001 - the sink still runs; each batch retries and reports
            self.log.error("%s%s", exc, self._secure_hint(exc))
            self._disconnect()

    def stop(self) -> None:
        self._disconnect()
        if self._login is not None:
            kerberos.release(self._login)
            self._login = None
        self.counter.stopped()

    # -- delivery -------------------------------------------------------------------------------------------

    #: Flume's HBaseSink and HBase2Sink add the batch's number of puts to EventDrainSuccessCount (fewer than its
    #: events when the regex serializer skips some, none for increments); AsyncHBaseSink adds its events.
    count_puts = True

    def deliver(self, events: list[Event]) -> int | None:
        Hbase = hbase_thrift()

        assert self.serializer is not None
        puts, incs = self.serializer.serialize(events)
        if self._client is None:
            self._connect()
        try:
            if not self._checked:
                self._check_table()
            client = self._client
            if puts and self.protocol == "binary" and hasattr(client, "_recv"):
                # the call's bytes straight from the serializer's tuples (byte-equal to thriftpy2's encoding of
                # the Mutation structs, tested), then thriftpy2 reads the reply and raises HBase's errors
                trans = client._oprot.trans
                trans.write(encode_mutate_rows(self.table_b, puts, self.wal, client._seqid, self._heads))
                trans.flush()
                client._recv("mutateRows")
            elif puts:
                wal = self.wal
                mutation = Hbase.Mutation
                batch = [Hbase.BatchMutation(row, [mutation(column=c, value=v, writeToWAL=wal)
                                                   for c, v in cells.items()])
                         for row, cells in puts]
                client.mutateRows(self.table_b, batch, {})
            if incs:
                if self.coalesce:
                    summed: dict[tuple[bytes, bytes], int] = {}
                    for row, col, amount in incs:
                        summed[(row, col)] = summed.get((row, col), 0) + amount
                    incs = [(row, col, amount) for (row, col), amount in summed.items()]
                tinc = Hbase.TIncrement
                table = self.table_b
                client.incrementRows([tinc(table, row, col, amount) for row, col, amount in incs])
        except EventDeliveryException:
            self._disconnect()
            raise
        except Hbase.IOError as exc:
            self._disconnect()
            text = io_error_text(exc)
            if "NoSuchColumnFamily" in text:
                raise EventDeliveryException(f"HBase sink {self.name}: table '{self.table}' has no column family "
                                             f"'{self.family}' ({first_line(text)})") from None
            raise EventDeliveryException(f"HBase sink {self.name}: HBase refused the batch of {len(events)} "
                                         f"events: {first_line(text)}") from None
        except Exception as exc:  # noqa: BLE001 - socket errors, timeouts, Thrift transport errors
            self._disconnect()
            raise EventDeliveryException(f"HBase sink {self.name}: lost the Thrift server while writing "
                                         f"{len(events)} events: {exc or type(exc).__name__}"
                                         f"{self._secure_hint(exc)}") from None
        return len(puts) if self.count_puts else None


class HBase2Sink(_HBaseSinkBase):
    """Writes each batch of events to an HBase table (Flume's HBase2Sink), through HBase's Thrift server."""

    alias = "hbase2"
    flume_class = "org.apache.flume.sink.hbase2.HBase2Sink"
    spec = _HBaseSinkBase.make_spec("org.apache.flume.sink.hbase2.SimpleHBase2EventSerializer")


class HBaseSink(_HBaseSinkBase):
    """Flume's HBaseSink (the HBase 1 client in Flume): the same rows as hbase2, through HBase's Thrift server."""

    alias = "hbase"
    flume_class = "org.apache.flume.sink.hbase.HBaseSink"
    spec = _HBaseSinkBase.make_spec("org.apache.flume.sink.hbase.SimpleHbaseEventSerializer")


class AsyncHBaseSink(_HBaseSinkBase):
    """Flume's AsyncHBaseSink: the same rows as hbase2, through HBase's Thrift server; async.* options are ignored."""

    alias = "asynchbase"
    flume_class = "org.apache.flume.sink.hbase.AsyncHBaseSink"
    count_puts = False
    spec = _HBaseSinkBase.make_spec(
        "org.apache.flume.sink.hbase.SimpleAsyncHbaseEventSerializer",
        Prop("maxConsecutiveFails", "int", 10, "Flume: failed batches before the asynchbase client is rebuilt. "
             "pyflume reconnects after every failed batch, so this is accepted and has no further effect.", min=1),
        Prop("async.", prefix=True, doc="asynchbase client settings; they have no meaning over Thrift and are "
             "ignored (with a warning)."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        for key in self.config.async_:
            conf.warn("asynchbase client settings have no meaning over HBase's Thrift server; ignored",
                      "async." + key)
