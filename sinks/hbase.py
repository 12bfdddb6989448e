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
"""

from __future__ import annotations

import functools
import random
import re
import string
import struct
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from agent import registry
from agent.core import BatchSink, Event, EventDeliveryException
from agent.java import java_regex, java_split
from agent.spec import Conf, ConfigError, Prop, Spec

__all__ = [
    "HBase2Sink",
    "HBaseSink",
    "AsyncHBaseSink",
    "HbaseEventSerializer",
    "SimpleHbaseEventSerializer",
    "RegexHbaseEventSerializer",
]

THRIFT_DEFAULT_PORT = 9090

Put = tuple[bytes, dict[bytes, bytes]]  # row key, {b"family:qualifier": value}
Increment = tuple[bytes, bytes, int]  # row key, b"family:qualifier", amount


# ---------------------------------------------------------------------------------------------------------------
# Serializers


class HbaseEventSerializer:
    """Turns events into HBase puts and increments; subclass it for your own (name it by dotted path).

    Override ``actions(event)`` and/or ``increments(event)``; build column names with ``self.column(qualifier)``
    (``family:qualifier`` for the sink's ``columnFamily``). Options come from the sink's ``serializer.*`` keys;
    declare them in ``spec`` to have them validated, or read ``conf.sub_text("")`` for free-form ones.
    ``serialize(events)`` is what the sink calls once per batch; override it for speed.
    """

    spec = Spec(Prop("", prefix=True, doc="Free-form options of a custom serializer."))

    def __init__(self, name: str, conf: Conf, family: bytes = b""):
        self.name = name
        self.conf = conf
        self.family = family
        self.prefix = family + b":"

    def column(self, qualifier: bytes) -> bytes:
        return self.prefix + qualifier

    def actions(self, event: Event) -> list[Put]:
        return []

    def increments(self, event: Event) -> list[Increment]:
        return []

    def serialize(self, events: Sequence[Event]) -> tuple[list[Put], list[Increment]]:
        puts: list[Put] = []
        incs: list[Increment] = []
        for e in events:
            puts.extend(self.actions(e))
            incs.extend(self.increments(e))
        return puts, incs


_SUFFIXES = {
    "uuid": "prefix + a random UUID (the default; any unknown value also means uuid, as in Flume)",
    "random": "prefix + a random signed 64-bit number",
    "timestamp": "prefix + the time in ms (events of the same ms overwrite each other, as in Flume)",
    "nano": "prefix + a monotonic nanosecond clock (Java's System.nanoTime)",
}


class SimpleHbaseEventSerializer(HbaseEventSerializer):
    """Flume's SimpleHbaseEventSerializer / SimpleHBase2EventSerializer / SimpleAsyncHbaseEventSerializer.

    Each event becomes one put of its body to ``payloadColumn`` in row ``rowPrefix + suffix``, and one increment
    by 1 of ``incrementColumn`` in row ``incrementRow``. (Flume's serializer would skip a part whose column is
    empty, but Flume's configuration loader drops keys with empty values, so the defaults apply; so here.)
    """

    spec = Spec(
        Prop("rowPrefix", "str", "default", "Prefix of every row key."),
        Prop("suffix", "str", "uuid", "Row key suffix: " + "; ".join(f"{k}: {v}" for k, v in _SUFFIXES.items())
             + "."),
        Prop("payloadColumn", "str", "pCol", "Column qualifier the body goes to."),
        Prop("incrementColumn", "str", "iCol", "Column qualifier incremented by 1 per event (in row incrementRow)."),
        Prop("incrementRow", "str", "incRow", "Row key of the increments."),
    )

    def __init__(self, name: str, conf: Conf, family: bytes = b""):
        super().__init__(name, conf, family)
        self.row_prefix = conf["rowPrefix"] or ""
        self.row_prefix_b = self.row_prefix.encode()
        suffix = conf["suffix"] or "uuid"
        self.suffix = suffix if suffix in _SUFFIXES else "uuid"
        pcol = conf["payloadColumn"]
        icol = conf["incrementColumn"]
        self.payload_col = self.column(pcol.encode()) if pcol else None
        self.inc_col = self.column(icol.encode()) if icol else None
        self.inc_row = (conf["incrementRow"] or "").encode()

    def row_keys(self, n: int) -> list[bytes]:
        p = self.row_prefix
        s = self.suffix
        if s == "uuid":
            return [(p + str(uuid.uuid4())).encode() for _ in range(n)]
        if s == "random":
            bits = random.getrandbits
            return [(p + str(bits(64) - (1 << 63))).encode() for _ in range(n)]
        if s == "timestamp":
            return [(p + str(time.time_ns() // 1_000_000)).encode() for _ in range(n)]
        clock = time.monotonic_ns
        return [(p + str(clock())).encode() for _ in range(n)]

    def serialize(self, events: Sequence[Event]) -> tuple[list[Put], list[Increment]]:
        col = self.payload_col
        puts: list[Put] = []
        if col is not None:
            keys = self.row_keys(len(events))
            puts = [(k, {col: e.body}) for k, e in zip(keys, events, strict=True)]
        incs: list[Increment] = []
        if self.inc_col is not None:
            inc = (self.inc_row, self.inc_col, 1)
            incs = [inc] * len(events)
        return puts, incs

    def actions(self, event: Event) -> list[Put]:
        return self.serialize([event])[0]

    def increments(self, event: Event) -> list[Increment]:
        return self.serialize([event])[1]


ROW_KEY_NAME = "ROW_KEY"
_ALNUM = string.ascii_letters + string.digits


_ASCII = bytes(range(128))


class RegexHbaseEventSerializer(HbaseEventSerializer):
    """Flume's RegexHbaseEventSerializer / RegexHBase2EventSerializer.

    The body (decoded with ``charset``) must match ``regex`` as a whole; group i goes to column i of ``colNames``
    in one put. The row key is group ``rowKeyIndex`` when that is set (its column must be named ROW_KEY), else
    ``<time ms>-<10 random alphanumerics fixed per process>-<counter>``. With ``depositHeaders`` every header
    becomes a column too. An event that does not match, or a regex whose group count differs from the number of
    colNames, writes nothing (as in Flume). Values are written in UTF-8; column names and headers in ``charset``.
    """

    spec = Spec(
        Prop("regex", "str", "(.*)", "Regex the whole body must match (Java syntax; DOTALL is on)."),
        Prop("regexIgnoreCase", "bool", False, "Match case-insensitively."),
        Prop("colNames", "str", "payload", "Comma-separated column qualifiers, one per regex group."),
        Prop("rowKeyIndex", "int", -1, "Index in colNames of the group that is the row key (that column must be "
             "named ROW_KEY); -1: generated keys."),
        Prop("depositHeaders", "bool", False, "Also write each header as a column (name = header name)."),
        Prop("charset", "str", "UTF-8", "Charset of the body for matching, and of column and header names."),
    )

    nonce = 0
    nonce_lock = threading.Lock()
    random_key = "".join(random.SystemRandom().choice(_ALNUM) for _ in range(10))

    def __init__(self, name: str, conf: Conf, family: bytes = b""):
        super().__init__(name, conf, family)
        # Java's \w \d \s \b and case-insensitive matching are ASCII-only unless a pattern asks otherwise: re.ASCII
        flags = re.DOTALL | re.ASCII | (re.IGNORECASE if conf["regexIgnoreCase"] else 0)
        text = java_regex(conf["regex"])
        try:
            self.pattern = re.compile(text, flags)
        except re.error as exc:
            raise ConfigError(f"invalid regex {conf['regex']!r}: {exc}", "regex") from None
        self.charset = conf["charset"]
        try:
            ascii_same = _ASCII.decode("ascii").encode(self.charset) == _ASCII
        except LookupError:
            raise ConfigError(f"unknown charset {self.charset!r}", "charset") from None
        # An ASCII body in an ASCII-compatible charset matches an ASCII pattern the same as bytes or as text, and
        # its groups are already their UTF-8 bytes: that path skips the decode and the encodes.
        self.bytes_pattern = re.compile(text.encode("ascii"), flags) if ascii_same and text.isascii() else None
        names = java_split(conf["colNames"], ",")
        self.columns = [self.column(n.encode(self.charset)) for n in names]
        self.row_key_index = conf["rowKeyIndex"]
        if self.row_key_index >= 0:
            if self.row_key_index >= len(names):
                raise ConfigError(f"rowKeyIndex must be less than num columns {len(names)}", "rowKeyIndex")
            if names[self.row_key_index].upper() != ROW_KEY_NAME:
                raise ConfigError(f"Column at {self.row_key_index} must be {ROW_KEY_NAME} and is "
                                  f"{names[self.row_key_index]}", "rowKeyIndex")
        self.deposit_headers = conf["depositHeaders"]
        self.usable = self.pattern.groups == len(names)
        if not self.usable:
            conf.warn(f"the regex has {self.pattern.groups} groups but colNames lists {len(names)} columns; "
                      f"Flume's serializer writes nothing for any event then, and so does this one", "colNames")

    @classmethod
    def _take_nonces(cls, n: int) -> int:
        with cls.nonce_lock:
            first = cls.nonce
            cls.nonce = first + n
        return first

    def serialize(self, events: Sequence[Event]) -> tuple[list[Put], list[Increment]]:
        if not self.usable:
            return [], []
        match = self.pattern.fullmatch
        bmatch = self.bytes_pattern.fullmatch if self.bytes_pattern is not None else None
        charset = self.charset
        columns = self.columns
        rk = self.row_key_index
        deposit = self.deposit_headers
        prefix = self.prefix
        puts: list[Put] = []
        generated: list[int] = []
        for e in events:
            body = e.body
            if bmatch is not None and body.isascii():
                m = bmatch(body)
                if m is None:
                    continue
                groups = m.groups()
            else:
                m = match(body.decode(charset, "replace"))
                if m is None:
                    continue
                groups = tuple(g.encode() if g is not None else None for g in m.groups())  # values in UTF-8
            cells = {c: g for c, g in zip(columns, groups, strict=True) if g is not None}
            if rk >= 0:
                row = groups[rk]
                if row is None:
                    continue  # no row key to write to (Flume fails the batch on this event, forever)
                cells.pop(columns[rk], None)
            else:
                row = b""
                generated.append(len(puts))
            if deposit:
                for k, v in e.headers.items():
                    cells[prefix + k.encode(charset)] = v.encode(charset)
            puts.append((row, cells))
        if generated:
            first = self._take_nonces(len(generated))
            head = f"{time.time_ns() // 1_000_000}-{self.random_key}-"
            for i, at in enumerate(generated):
                puts[at] = ((head + str(first + i)).encode(charset), puts[at][1])
        return puts, []


# ---------------------------------------------------------------------------------------------------------------
# The sinks


def _thrift_targets(text: str, default_port: int) -> list[tuple[str, int]]:
    out = []
    for item in text.replace(" ", ",").split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, str(default_port)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            p = int(port)
        except ValueError:
            raise ConfigError(f"{item!r} is not host:port") from None
        if not 0 < p < 65536:
            raise ConfigError(f"{item!r}: port out of range")
        out.append((host, p))
    return out


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
            Prop("kerberosPrincipal", "str", None, "Kerberos principal; not supported yet (rejected when set)."),
            Prop("kerberosKeytab", "str", None, "Kerberos keytab; not supported yet (rejected when set)."),
            *extra,
        )

    spec = Spec()  # set per subclass

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.table = conf["table"] or ""
        self.table_b = self.table.encode()
        self.family = conf["columnFamily"] or ""
        self.family_b = self.family.encode()
        for prop in ("kerberosPrincipal", "kerberosKeytab"):
            if conf.get(prop):
                conf.error("Kerberos is not supported yet by pyflume's HBase sinks (the Thrift server is reached "
                           "without SASL); remove it or front HBase with an unsecured Thrift server on a trusted "
                           "network", prop)
        self.timeout_ms = conf["timeout"]
        self.wal = conf["enableWal"]
        self.coalesce = conf["coalesceIncrements"]
        self.transport = conf["thrift.transport"]
        self.protocol = conf["thrift.protocol"]
        self.targets: list[tuple[str, int]] = []
        if conf.get("thrift"):
            try:
                self.targets = _thrift_targets(conf["thrift"], THRIFT_DEFAULT_PORT)
            except ConfigError as exc:
                conf.error(exc.message + "; expected host:port[,host:port...]", "thrift")
        elif conf.get("zookeeperQuorum"):
            hosts = [h.strip().rpartition(":")[0] or h.strip() for h in conf["zookeeperQuorum"].split(",")
                     if h.strip()]
            self.targets = [(h, THRIFT_DEFAULT_PORT) for h in dict.fromkeys(hosts)]
            conf.warn("HBase is reached through its Thrift server; no `thrift` property is set, so "
                      f"{', '.join(f'{h}:{p}' for h, p in self.targets)} (the zookeeperQuorum hosts on the Thrift "
                      f"default port) will be tried. If the Thrift server runs elsewhere add the line "
                      f"`<agent>.sinks.{name}.thrift = host:port`", "zookeeperQuorum")
        else:
            self.targets = [("127.0.0.1", THRIFT_DEFAULT_PORT)]
            conf.warn("HBase is reached through its Thrift server and neither `thrift` nor zookeeperQuorum is "
                      "set, so 127.0.0.1:9090 will be tried; add the line "
                      f"`<agent>.sinks.{name}.thrift = host:port` naming your HBase Thrift server")
        self.serializer: HbaseEventSerializer | None = None
        try:
            cls = registry.resolve("hbase_serializer", conf["serializer"])
            sconf = conf.nested("serializer.", cls.spec)
            self.serializer = cls(name, sconf, self.family_b)
        except ConfigError as exc:
            conf.error(exc.message, "serializer." + exc.prop if exc.prop else "serializer")
        self._conn: Any = None
        self._client: Any = None
        self._next_target = 0
        self._checked = False
        self._heads: dict[bytes, bytes] = {}  # encoded Mutation prefix per column (encode_mutate_rows)

    # -- connection -----------------------------------------------------------------------------------------

    def _connect(self) -> None:
        import happybase

        errors = []
        n = len(self.targets)
        for i in range(n):
            host, port = self.targets[(self._next_target + i) % n]
            try:
                conn = happybase.Connection(host, port, timeout=self.timeout_ms, transport=self.transport,
                                            protocol=self.protocol, autoconnect=True)
            except Exception as exc:  # noqa: BLE001 - socket and Thrift errors alike: try the next server
                errors.append(f"{host}:{port}: {exc or type(exc).__name__}")
                continue
            self._next_target = (self._next_target + i) % n
            self._conn = conn
            self._client = conn.client
            with self.counter.lock:
                self.counter.connection_created += 1
            return
        self._next_target = (self._next_target + 1) % n
        with self.counter.lock:
            self.counter.connection_failed += 1
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
            with self.counter.lock:
                self.counter.connection_closed += 1

    def _check_table(self) -> None:
        """Table and column family exist? Raises EventDeliveryException naming both when not."""
        Hbase = _thrift()

        try:
            families = self._client.getColumnDescriptors(self.table_b)
        except Hbase.IOError as exc:
            text = _io_text(exc)
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

    def start(self) -> None:
        self.counter.started()
        try:
            self._connect()
            self._check_table()
            self.log.info("HBase sink %s started: table %s, column family %s, Thrift server %s:%d", self.name,
                          self.table, self.family, *self.targets[self._next_target])
        except Exception as exc:  # noqa: BLE001 - the sink still runs; each batch retries and reports
            self.log.error("%s", exc)
            self._disconnect()

    def stop(self) -> None:
        self._disconnect()
        self.counter.stopped()

    # -- delivery -------------------------------------------------------------------------------------------

    #: Flume's HBaseSink and HBase2Sink add the batch's number of puts to EventDrainSuccessCount (fewer than its
    #: events when the regex serializer skips some, none for increments); AsyncHBaseSink adds its events.
    count_puts = True

    def deliver(self, events: list[Event]) -> int | None:
        Hbase = _thrift()

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
            text = _io_text(exc)
            if "NoSuchColumnFamily" in text:
                raise EventDeliveryException(f"HBase sink {self.name}: table '{self.table}' has no column family "
                                             f"'{self.family}' ({_first_line(text)})") from None
            raise EventDeliveryException(f"HBase sink {self.name}: HBase refused the batch of {len(events)} "
                                         f"events: {_first_line(text)}") from None
        except Exception as exc:  # noqa: BLE001 - socket errors, timeouts, Thrift transport errors
            self._disconnect()
            raise EventDeliveryException(f"HBase sink {self.name}: lost the Thrift server while writing "
                                         f"{len(events)} events: {exc or type(exc).__name__}") from None
        return len(puts) if self.count_puts else None


_I32 = struct.Struct(">i").pack
_MUTATE_ROWS = b"\x80\x01\x00\x01" + _I32(10) + b"mutateRows"  # strict binary message header: CALL mutateRows


def encode_mutate_rows(table: bytes, puts: Sequence[Put], wal: bool, seqid: int, heads: dict[bytes, bytes]) -> bytes:
    """HBase Thrift 1 ``mutateRows(table, [BatchMutation(row, [Mutation(isDelete=false, column, value, writeToWAL)
    ...]) ...], {})`` in the strict binary protocol, as one bytes object. ``heads`` caches each column's encoded
    field prefix (a serializer writes a handful of columns)."""
    i32 = _I32
    tail = b"\x02\x00\x04\x01\x00" if wal else b"\x02\x00\x04\x00\x00"  # writeToWAL, end of Mutation
    parts = [_MUTATE_ROWS, i32(seqid), b"\x0b\x00\x01", i32(len(table)), table,  # 1: tableName
             b"\x0f\x00\x02\x0c", i32(len(puts))]  # 2: rowBatches, a list of structs
    extend = parts.extend
    for row, cells in puts:
        extend((b"\x0b\x00\x01", i32(len(row)), row, b"\x0f\x00\x02\x0c", i32(len(cells))))  # row, mutations
        for column, value in cells.items():
            head = heads.get(column)
            if head is None:  # isDelete = false, then the column
                head = b"\x02\x00\x01\x00\x0b\x00\x02" + i32(len(column)) + column + b"\x0b\x00\x03"
                if len(heads) < 4096:
                    heads[column] = head
            extend((head, i32(len(value)), value, tail))
        parts.append(b"\x00")  # end of BatchMutation
    parts.append(b"\x0d\x00\x03\x0b\x0b\x00\x00\x00\x00\x00")  # 3: attributes, an empty map; end of args
    return b"".join(parts)


@functools.cache
def _thrift():  # noqa: ANN202 - the generated module
    """HBase's Thrift 1 types (Mutation, BatchMutation, TIncrement, IOError), as happybase loads them."""
    import happybase  # noqa: F401 - loading happybase registers the Hbase_thrift module
    import Hbase_thrift

    return Hbase_thrift


def _io_text(exc: BaseException) -> str:
    msg = getattr(exc, "message", None)
    if isinstance(msg, bytes):
        msg = msg.decode(errors="replace")
    return msg or str(exc)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:500] if text.strip() else "no detail"


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
        for key in conf.sub("async."):
            conf.warn("asynchbase client settings have no meaning over HBase's Thrift server; ignored",
                      "async." + key)

