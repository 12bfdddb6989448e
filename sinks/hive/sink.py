"""The Hive sink (``hive``, Flume's HiveSink): events stream into a transactional (ACID, ORC) Hive table.

Everything goes through Hive's own transaction machinery, as Hive's streaming ingest does it. Transactions are
opened ``hive.txnsPerBatchAsk`` at a time with the metastore's ``open_txns``, each gets its table write id from
``allocate_table_write_ids``, and a background thread heartbeats them every ``heartBeatInterval`` seconds so the
metastore does not time them out. Each channel transaction uses the next Hive transaction: its events are turned
into rows by the serializer (``DELIMITED`` or ``JSON``), grouped by the partition that ``hive.partition``'s values
give after Flume's escapes, each partition is created if missing (``autoCreatePartitions``) and locked for the
transaction, each group is written as one ACID ORC file in ``delta_<writeid>_<writeid>`` under the partition's
location (see ``acid.py``), and the Hive transaction commits. Only then does the channel transaction commit.

Any failure aborts the Hive transaction (its files are then invisible to every reader, and removed when possible)
and rolls the channel transaction back, so a batch is either wholly visible in Hive or not at all, and nothing
taken is lost. A process killed mid-batch leaves its transaction open until the metastore times it out and aborts
it (``metastore.txn.timeout``, 300 s by default); readers never see it. An unreachable metastore fails the batch;
the sink backs off and retries, reconnecting each time. A table that is missing, not transactional or not ORC,
partition values that do not fit its partition columns, ``serializer.fieldnames`` naming unknown columns, or a body
the serializer cannot read, fail the batch with a message naming the table and the field, and the events stay in
the channel.

Differences from Flume's sink, which uses Hive 1.2's streaming API: one Hive transaction covers a whole channel
transaction even when it spans several partitions (Flume used one transaction batch per partition), write ids
are allocated as Hive 3 and 4 require, and a table with several buckets gets all its rows in bucket 0 (readers
see them all; bucket pruning of such a table may skip them).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from agent.core import BatchSink, Event, EventDeliveryException
from agent.spec import Conf, Prop, Spec
from sinks.escapes import EscapeError, PathTemplate
from sinks.hive.acid import ACID_VERSION, BUCKET_FILE, arrow_type, delta_dir, orc_bytes
from sinks.hive.metastore import Metastore, MetastoreError, hms, metastore_targets, partition_name
from sinks.hive.serializers import (
    DelimitedSerializer,
    JsonSerializer,
    RecordError,
    converter,
    parse_delimiter,
    parse_serde_separator,
)

__all__ = ["HiveSink"]

_SERIALIZERS = {
    "delimited": "delimited", "org.apache.flume.sink.hive.hivedelimitedtextserializer": "delimited",
    "json": "json", "org.apache.flume.sink.hive.hivejsonserializer": "json",
}


class HiveSink(BatchSink):
    """Streams events into a transactional Hive table through the metastore's transactions (Flume's HiveSink)."""

    alias = "hive"
    flume_class = "org.apache.flume.sink.hive.HiveSink"
    batch_size_prop = "batchSize"
    spec = Spec(
        Prop("hive.metastore", "str", required=True,
             doc="The metastore, thrift://host:port (a comma-separated list is tried in turn)."),
        Prop("hive.database", "str", required=True, doc="The database of the table."),
        Prop("hive.table", "str", required=True, doc="The table; it must be transactional and stored as ORC."),
        Prop("hive.partition", "str", None,
             "Comma-separated values of the table's partition columns, in their order, with Flume's escapes "
             "(%{header}, %y-%m-%d, ...). Unset for an unpartitioned table."),
        Prop("hive.txnsPerBatchAsk", "int", 100,
             "Hive transactions opened at a time; each channel transaction uses one.", min=1),
        Prop("heartBeatInterval", "int", 240,
             "Seconds between heartbeats that keep the open transactions alive; 0: none. Keep it below the "
             "metastore's metastore.txn.timeout (300 s by default).", min=0),
        Prop("autoCreatePartitions", "bool", True, "Create a missing partition instead of failing the batch."),
        Prop("batchSize", "int", 15000, "Events per channel transaction, one Hive transaction each.", min=1),
        Prop("maxOpenConnections", "int", 500,
             "Partitions whose metastore description is kept (least recently used are forgotten beyond it); "
             "Flume's open writers per partition.", min=1),
        Prop("callTimeout", "int", 10000,
             "Milliseconds one metastore or HDFS call may take; a lock waits at most this long.", min=1),
        Prop("idleTimeout", "int", 0,
             "Milliseconds without events after which the open transactions are aborted and the connection "
             "closed (milliseconds, as Flume's sink compares it); 0: never.", min=0),
        Prop("useLocalTimeStamp", "bool", False,
             "Use the local time instead of the timestamp header for the time escapes."),
        Prop("timeZone", "str", None, "Time zone of the time escapes (IANA name; default: the machine's)."),
        Prop("round", "bool", False, "Round the timestamp down before the time escapes."),
        Prop("roundValue", "int", 1,
             "Round down to a multiple of this many roundUnits (at most 60, or 24 for hours).", min=1),
        Prop("roundUnit", "enum", "minute", "Unit of rounding.",
             choices={"second": "Seconds.", "minute": "Minutes.", "hour": "Hours."}),
        Prop("serializer", "str", required=True,
             doc="How bodies become rows: DELIMITED (delimited text) or JSON (one JSON object per body); "
                 "Flume's class names org.apache.flume.sink.hive.HiveDelimitedTextSerializer and "
                 "org.apache.flume.sink.hive.HiveJsonSerializer mean the same."),
        Prop("serializer.delimiter", "str", ",",
             "DELIMITED: the field separator of the bodies, matched literally; a value in double quotes loses "
             "them (\"\\t\")."),
        Prop("serializer.fieldnames", "str", None,
             "DELIMITED (required): the column each field goes to, comma-separated in field order; an empty name "
             "skips that field. Columns not named get NULL."),
        Prop("serializer.serdeSeparator", "str", None,
             "DELIMITED: the separator Hive's 1.2 writer used between fields inside Hive (one character, or one "
             "in single quotes). Checked and accepted; pyflume writes columns directly, so it has no effect."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.db = (c.hive_database or "").lower()
        self.table = (c.hive_table or "").lower()
        self.full_name = f"{self.db}.{self.table}"
        self.timeout = c.call_timeout / 1000
        self.targets: list[tuple[str, int]] = []
        if c.hive_metastore:
            try:
                self.targets = metastore_targets(c.hive_metastore)
            except ValueError as exc:
                conf.error(str(exc), "hive.metastore")
        limit = 24 if c.round_unit == "hour" else 60
        if c.round and c.round_value > limit:
            conf.error(f"roundValue must be at most {limit} for roundUnit {c.round_unit}", "roundValue")
        self.partition_templates: list[PathTemplate] = []
        if c.hive_partition is not None:
            try:
                self.partition_templates = [
                    PathTemplate(v, tz=c.time_zone, round_unit=c.round_unit if c.round else None,
                                 round_value=c.round_value, use_local_timestamp=c.use_local_time_stamp)
                    for v in c.hive_partition.split(",")]
            except Exception as exc:  # noqa: BLE001 - a bad time zone or %[...] escape
                conf.error(str(exc), "timeZone" if "zone" in str(exc).lower() else "hive.partition")
        self.serializer: DelimitedSerializer | JsonSerializer | None = None
        kind = _SERIALIZERS.get((c.serializer or "").strip().lower())
        if c.serializer is not None and kind is None:
            conf.error(f"serializer = {c.serializer!r}: expected DELIMITED or JSON (or Flume's class names "
                       f"org.apache.flume.sink.hive.HiveDelimitedTextSerializer, "
                       f"org.apache.flume.sink.hive.HiveJsonSerializer)", "serializer")
        elif kind == "delimited":
            if c.serializer_fieldnames is None:
                conf.error("serializer.fieldnames is required with serializer = DELIMITED: name the column of "
                           "each field, comma-separated (an empty name skips a field)", "serializer.fieldnames")
            else:
                delimiter = parse_delimiter(c.serializer_delimiter)
                if not delimiter:
                    conf.error("serializer.delimiter is empty; give the field separator, e.g. , or \"\\t\"",
                               "serializer.delimiter")
                self.serializer = DelimitedSerializer(delimiter, c.serializer_fieldnames.strip().split(","))
            if c.serializer_serde_separator is not None:
                try:
                    parse_serde_separator(c.serializer_serde_separator)
                except ValueError as exc:
                    conf.error(f"serializer.serdeSeparator = {c.serializer_serde_separator!r}: {exc}",
                               "serializer.serdeSeparator")
        elif kind == "json":
            self.serializer = JsonSerializer()
            for prop in ("serializer.delimiter", "serializer.fieldnames", "serializer.serdeSeparator"):
                if conf.is_set(prop):
                    conf.warn(f"{prop} is read only by the DELIMITED serializer; ignored with JSON", prop)
        self.ms = Metastore(self.targets, self.timeout, f"pyflume HiveSink {name}")
        self._described = False
        self.columns: list[str] = []
        self.arrow_types: list[Any] = []
        self.convs: list[Any] = []
        self.part_keys: list[str] = []
        self._parts: OrderedDict[tuple[str, ...], str] = OrderedDict()  # partition values -> location
        self._txns: list[tuple[int, int]] = []  # open Hive transactions not used yet: (txn id, write id)
        self._fs: dict[str, Any] = {}
        self._last_event = time.monotonic()
        self._beat_stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._closer: Any = None  # a small thread pool closing the HDFS files of a batch together

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.counter.started()
        self._beat_stop.clear()
        if self.config.heart_beat_interval > 0:
            self._beat = threading.Thread(target=self._heartbeats, name=f"hive-heartbeat-{self.name}", daemon=True)
            self._beat.start()
        try:
            self._connect()
            self._describe()
            self.log.info("Hive sink %s started: table %s, metastore %s", self.name, self.full_name,
                          self.ms.address)
        except Exception as exc:  # noqa: BLE001 - the sink still runs; each batch retries and reports
            self.log.error("Hive sink %s: %s", self.name, exc)

    def stop(self) -> None:
        self._beat_stop.set()
        if self._beat is not None:
            self._beat.join(5)
            self._beat = None
        self._abort_open()
        self._disconnect()
        if self._closer is not None:
            self._closer.shutdown(wait=True)
            self._closer = None
        self.counter.stopped()
        self.log.info("Hive sink %s stopped", self.name)

    def idle(self) -> None:
        timeout = self.config.idle_timeout / 1000
        if timeout and self.ms.connected and time.monotonic() - self._last_event >= timeout:
            self.log.info("Hive sink %s: idle for %g s, closing its transactions and connection", self.name,
                          timeout)
            self._abort_open()
            self._disconnect()

    # -- delivery -------------------------------------------------------------------------------------------

    def deliver(self, events: list[Event]) -> int | None:
        self._last_event = time.monotonic()
        if not self.ms.connected:
            self._connect()
        try:
            if not self._described:
                self._describe()
            groups = self._group(events)
            rows = {vals: self._rows(bodies) for vals, bodies in groups.items()}
            txn, write_id = self._next_txn()
        except MetastoreError as exc:
            self._disconnect()
            raise EventDeliveryException(f"Hive sink {self.name}: {exc}; the events stay in the channel") from None
        written: list[tuple[Any, str]] = []
        try:
            locations = {vals: self._location(vals) for vals in rows}
            names = [partition_name(self.part_keys, list(v)) if self.part_keys else None for v in rows]
            self.ms.lock_partitions(txn, self.db, self.table, names, self.timeout)
            files = []
            for vals, columns in rows.items():
                fs, base = self._file_system(locations[vals])
                directory = f"{base}/{delta_dir(write_id)}"
                written.append((fs, directory))
                files.append((fs, directory, orc_bytes(write_id, self.columns, self.arrow_types, columns)))
            self._write_all(files)
            self.ms.commit(txn)
        except Exception as exc:  # noqa: BLE001 - abort the Hive transaction whatever went wrong
            self._abort(txn, written)
            self._discard_txns()
            if isinstance(exc, EventDeliveryException):
                raise
            if isinstance(exc, MetastoreError):
                self._disconnect()
            raise EventDeliveryException(f"Hive sink {self.name}: writing {len(events)} events to "
                                         f"{self.full_name} failed, Hive transaction {txn} aborted, the events "
                                         f"stay in the channel: {_text(exc)}") from None
        return None

    def _rows(self, bodies: list[bytes]) -> list[list[Any]]:
        assert self.serializer is not None
        try:
            return self.serializer.columns(self.full_name, bodies, self.columns, self.convs)
        except RecordError as exc:
            raise EventDeliveryException(f"Hive sink {self.name}: {exc}; the events stay in the channel") from None

    def _group(self, events: list[Event]) -> dict[tuple[str, ...], list[bytes]]:
        """The bodies of ``events`` per partition (its values after the escapes)."""
        templates = self.partition_templates
        if not templates:
            return {(): [e.body for e in events]}
        groups: dict[tuple[str, ...], list[bytes]] = {}
        now = int(time.time() * 1000)
        try:
            for e in events:
                vals = tuple(t.resolve(e.headers, now) for t in templates)
                groups.setdefault(vals, []).append(e.body)
        except EscapeError as exc:
            raise EventDeliveryException(f"Hive sink {self.name}: hive.partition of {self.full_name}: {exc}; the "
                                         f"events stay in the channel") from None
        return groups

    # -- the metastore --------------------------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            self.ms.connect()
        except MetastoreError as exc:
            self.counter.add(connection_failed=1)
            raise EventDeliveryException(f"Hive sink {self.name}: {exc}; the events stay in the channel, "
                                         f"retrying") from None
        self.counter.add(connection_created=1)

    def _disconnect(self) -> None:
        if self.ms.connected:
            self.ms.close()
            self.counter.add(connection_closed=1)
        self._txns.clear()
        self._described = False
        self._parts.clear()

    def _describe(self) -> None:
        """Read the table from the metastore and check that this sink can write it."""
        t = hms()
        try:
            table = self.ms.get_table(self.db, self.table)
        except t.NoSuchObjectException:
            raise EventDeliveryException(
                f"Hive sink {self.name}: table {self.full_name} does not exist (hive.database = {self.db}, "
                f"hive.table = {self.table}); create it as a transactional ORC table, e.g. CREATE TABLE ... "
                f"STORED AS ORC TBLPROPERTIES ('transactional'='true'). The events stay in the channel") from None
        except t.MetaException as exc:
            raise EventDeliveryException(f"Hive sink {self.name}: the metastore could not read table "
                                         f"{self.full_name}: {exc.message}") from None
        params = {k.lower(): (v or "") for k, v in (table.parameters or {}).items()}
        sd = table.sd
        problem = None
        if params.get("transactional", "").lower() != "true":
            problem = (f"table {self.full_name} is not transactional; Hive streaming writes only ACID tables: "
                       f"ALTER TABLE {self.full_name} SET TBLPROPERTIES ('transactional'='true') (ORC tables)")
        elif params.get("transactional_properties", "default").lower() == "insert_only":
            problem = (f"table {self.full_name} is insert-only transactional "
                       f"('transactional_properties'='insert_only'); Hive streaming writes full ACID ORC tables")
        elif "orc" not in (sd.inputFormat or "").lower():
            problem = (f"table {self.full_name} is stored as {sd.inputFormat}, not ORC; Hive's ACID tables are "
                       f"ORC (STORED AS ORC)")
        keys = [k.name.lower() for k in table.partitionKeys or []]
        if problem is None and len(keys) != len(self.partition_templates):
            given = ",".join(t.text for t in self.partition_templates) or "(unset)"
            problem = (f"hive.partition = {given} gives {len(self.partition_templates)} value(s) but table "
                       f"{self.full_name} has {len(keys)} partition column(s)"
                       f"{' (' + ', '.join(keys) + ')' if keys else ''}")
        columns = [c.name.lower() for c in sd.cols or []]
        if problem is None:
            try:
                types = [arrow_type(c.type) for c in sd.cols]
                self.convs = [converter(c.type) for c in sd.cols]
            except ValueError as exc:
                problem = f"table {self.full_name}: {exc}"
        if problem is None:
            try:
                self.serializer.check(self.full_name, columns)  # type: ignore[union-attr]
            except RecordError as exc:
                problem = str(exc)
        if problem is not None:
            raise EventDeliveryException(f"Hive sink {self.name}: {problem}. The events stay in the channel")
        self.columns, self.arrow_types, self.part_keys = columns, types, keys
        self._described = True

    def _location(self, vals: tuple[str, ...]) -> str:
        """The directory of partition ``vals`` (created when missing and autoCreatePartitions)."""
        if not vals:
            return self._table_location()
        loc = self._parts.get(vals)
        if loc is not None:
            self._parts.move_to_end(vals)
            return loc
        try:
            part = self.ms.partition(self.db, self.table, list(vals), self.config.auto_create_partitions)
        except hms().NoSuchObjectException:
            raise EventDeliveryException(
                f"Hive sink {self.name}: partition {partition_name(self.part_keys, list(vals))} of "
                f"{self.full_name} does not exist and autoCreatePartitions = false. The events stay in the "
                f"channel") from None
        except (hms().MetaException, hms().InvalidObjectException) as exc:
            raise EventDeliveryException(
                f"Hive sink {self.name}: the metastore refused partition "
                f"{partition_name(self.part_keys, list(vals))} of {self.full_name}: {exc.message}. The events "
                f"stay in the channel") from None
        self._parts[vals] = part.sd.location
        while len(self._parts) > self.config.max_open_connections:
            self._parts.popitem(last=False)
        return part.sd.location

    def _table_location(self) -> str:
        loc = self._parts.get(())
        if loc is None:
            loc = self._parts[()] = self.ms.get_table(self.db, self.table).sd.location
        return loc

    def _next_txn(self) -> tuple[int, int]:
        if not self._txns:
            txns = self.ms.open_txns(self.config.hive_txns_per_batch_ask)
            try:
                ids = self.ms.allocate_write_ids(self.db, self.table, txns)
            except Exception:
                for txn in txns:
                    if not self._abort(txn, []):
                        break
                raise
            self._txns = [(txn, ids[txn]) for txn in txns]
        return self._txns.pop(0)

    def _discard_txns(self) -> None:
        """After a failure the rest of the transaction batch is aborted too (the next batch opens new ones). When
        the metastore does not answer, the rest are left to its timeout rather than waited on one by one."""
        txns, self._txns = self._txns, []
        for txn, _ in txns:
            if not self._abort(txn, []):
                break

    def _abort_open(self) -> None:
        if self.ms.connected:
            self._discard_txns()

    def _abort(self, txn: int, written: list[tuple[Any, str]]) -> bool:
        """Abort ``txn`` and remove its files; False when the metastore could not be told (its files then stay:
        a commit whose answer was lost may have made them visible)."""
        aborted = True
        try:
            self.ms.abort(txn)
        except Exception as exc:  # noqa: BLE001 - the metastore aborts it on timeout anyway
            aborted = False
            self.log.warning("Hive sink %s: could not abort Hive transaction %d (%s); the metastore aborts it "
                             "when it times out", self.name, txn, _text(exc))
        for fs, directory in written if aborted else ():  # not aborted: the commit may have gone through
            try:
                fs.delete(directory)
            except Exception:  # noqa: BLE001 - invisible anyway; Hive's cleaner removes aborted deltas
                pass
        return aborted

    def _heartbeats(self) -> None:
        interval = self.config.heart_beat_interval
        while not self._beat_stop.wait(interval):
            txns = list(self._txns)
            if not txns or not self.ms.connected:
                continue
            try:
                aborted, missing = self.ms.heartbeat(txns[0][0], txns[-1][0])
            except Exception as exc:  # noqa: BLE001 - the next batch finds out and reconnects
                self.log.warning("Hive sink %s: heartbeat failed: %s", self.name, _text(exc))
                continue
            if aborted or missing:
                self.log.warning("Hive sink %s: the metastore reports transactions %s aborted or gone; a new batch "
                                 "of transactions will be opened", self.name, sorted(aborted | missing))

    # -- HDFS -----------------------------------------------------------------------------------------------

    def _file_system(self, location: str) -> tuple[Any, str]:
        from sinks.hdfs.fs import file_system_for

        authority = location.split("://", 1)[1].split("/", 1)[0] if "://" in location else ""
        fs = self._fs.get(authority)
        within = ("/" + location.split("://", 1)[1].split("/", 1)[1]) if "://" in location else location
        if fs is None:
            fs, within = file_system_for(location, webhdfs=[], user=None, timeout=self.timeout)
            self._fs[authority] = fs
        return fs, within.rstrip("/")

    def _write_all(self, files: list[tuple[Any, str, bytes]]) -> None:
        """Each delta directory with its bucket file and version marker. The files are written first and closed
        together: closing an HDFS file waits for the namenode to complete it, which is most of a batch's time."""
        if self._closer is None:
            from concurrent.futures import ThreadPoolExecutor

            self._closer = ThreadPoolExecutor(4, thread_name_prefix=f"hive-close-{self.name}")
        opened = []
        try:
            for fs, directory, data in files:
                fs.mkdirs(directory)
                for name, payload in ((BUCKET_FILE, data), ("_orc_acid_version", ACID_VERSION)):
                    fs.create(f"{directory}/{name}", payload)
                    opened.append((fs, f"{directory}/{name}"))
        finally:
            results = [self._closer.submit(fs.close, path) for fs, path in opened]
            for r in results:
                r.result()

    @staticmethod
    def _write(fs: Any, directory: str, data: bytes) -> None:
        """One delta directory, written and closed in turn (for tools and tests)."""
        fs.mkdirs(directory)
        for name, payload in ((BUCKET_FILE, data), ("_orc_acid_version", ACID_VERSION)):
            path = f"{directory}/{name}"
            fs.create(path, payload)
            fs.close(path)


def _text(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


