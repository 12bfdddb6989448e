"""A small client of the Hive metastore's Thrift API: the calls of Hive's streaming ingest and nothing else.

The interface is ``metastore.thrift`` beside this module (a hand-written subset of Hive's ``hive_metastore.thrift``),
loaded with thriftpy2. The metastore speaks the binary protocol over a buffered socket (``metastore.thrift.port``,
9083 by default), without SASL unless Kerberos is configured, which pyflume does not support yet.
"""

from __future__ import annotations

import functools
import getpass
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = ["MetastoreError", "Metastore", "hms", "metastore_targets", "partition_name"]

DEFAULT_PORT = 9083


class MetastoreError(Exception):
    """The metastore refused a call or could not be reached; the text names the call."""


@functools.cache
def hms() -> Any:
    """The thriftpy2 module of ``metastore.thrift`` (structs, enums, exceptions, the service)."""
    import thriftpy2

    return thriftpy2.load(str(Path(__file__).with_name("metastore.thrift")), module_name="hive_metastore_thrift")


def metastore_targets(text: str) -> list[tuple[str, int]]:
    """``hive.metastore``: ``thrift://host:port`` URIs separated by commas, tried in turn. ValueError when bad."""
    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        url = urlparse(item if "://" in item else "thrift://" + item)
        if url.scheme != "thrift" or not url.hostname:
            raise ValueError(f"{item!r} is not a metastore URI; expected thrift://host:port")
        try:
            port = url.port or DEFAULT_PORT
        except ValueError:
            raise ValueError(f"{item!r}: the port is not a number from 1 to 65535") from None
        out.append((url.hostname, port))
    if not out:
        raise ValueError("no metastore URI given; expected thrift://host:port")
    return out


_UNSAFE = set('"#%\'*/:=?\\\x7f{[]^')


def _escape(value: str) -> str:
    """Hive's escaping of a partition value in a partition name and directory (FileUtils.escapePathName)."""
    return "".join(f"%{ord(c):02X}" if c in _UNSAFE or ord(c) < 0x20 else c for c in value)


def partition_name(keys: list[str], values: list[str]) -> str:
    """``day=2024-01-01/hr=10``: the partition's name as the metastore and the lock manager spell it."""
    return "/".join(f"{_escape(k)}={_escape(v)}" for k, v in zip(keys, values, strict=True))


class Metastore:
    """One connection to a metastore, the first of ``targets`` that answers; every call is serialized by a lock
    (the sink's runner and its heartbeat thread share it) and bounded by ``timeout`` seconds."""

    def __init__(self, targets: list[tuple[str, int]], timeout: float, agent_info: str):
        self.targets = targets
        self.timeout = timeout
        self.agent_info = agent_info
        self.user = getpass.getuser()
        self.host = socket.gethostname()
        self.lock = threading.RLock()
        self._client: Any = None
        self.address = ""

    def connect(self) -> None:
        from thriftpy2.rpc import make_client

        errors = []
        for host, port in self.targets:
            try:
                self._client = make_client(hms().ThriftHiveMetastore, host, port, timeout=self.timeout * 1000)
                self.address = f"{host}:{port}"
                return
            except Exception as exc:  # noqa: BLE001 - refused, unreachable, timed out: try the next one
                errors.append(f"thrift://{host}:{port}: {exc or type(exc).__name__}")
        raise MetastoreError(f"no metastore answered ({'; '.join(errors)})")

    def close(self) -> None:
        with self.lock:
            client, self._client = self._client, None
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - already broken
                    pass

    @property
    def connected(self) -> bool:
        return self._client is not None

    def call(self, name: str, *args: Any) -> Any:
        """``name(*args)`` on the metastore. Hive's declared exceptions pass through; a broken connection closes
        it and becomes MetastoreError (the next call reconnects)."""
        with self.lock:
            if self._client is None:
                self.connect()
            try:
                return getattr(self._client, name)(*args)
            except _declared():
                raise
            except Exception as exc:  # noqa: BLE001 - socket errors, timeouts, protocol errors
                self.close()
                raise MetastoreError(f"metastore {self.address} {name}: {exc or type(exc).__name__}") from None

    # -- the calls ----------------------------------------------------------------------------------------------

    def get_table(self, db: str, table: str) -> Any:
        return self.call("get_table_req", hms().GetTableRequest(dbName=db, tblName=table)).table

    def partition(self, db: str, table: str, values: list[str], create: bool) -> Any:
        """The partition with ``values``; created first when missing and ``create`` (another writer may create
        it at the same moment: then it is read again). NoSuchObjectException when missing and not ``create``."""
        t = hms()
        try:
            return self.call("get_partition", db, table, values)
        except t.NoSuchObjectException:
            if not create:
                raise
        try:
            return self.call("append_partition", db, table, values)
        except t.AlreadyExistsException:
            return self.call("get_partition", db, table, values)

    def open_txns(self, n: int) -> list[int]:
        t = hms()
        rq = t.OpenTxnRequest(num_txns=n, user=self.user, hostname=self.host, agentInfo=self.agent_info)
        return list(self.call("open_txns", rq).txn_ids)

    def allocate_write_ids(self, db: str, table: str, txns: list[int]) -> dict[int, int]:
        t = hms()
        rs = self.call("allocate_table_write_ids", t.AllocateTableWriteIdsRequest(dbName=db, tableName=table,
                                                                                   txnIds=txns))
        return {m.txnId: m.writeId for m in rs.txnToWriteIds}

    def lock_partitions(self, txn: int, db: str, table: str, parts: list[str | None], wait: float) -> int:
        """A shared lock of an insert on each partition (or the table when ``None``), held by ``txn`` until it
        commits or aborts; waits up to ``wait`` seconds for it."""
        t = hms()
        comps = [t.LockComponent(type=t.LockType.SHARED_READ,
                                 level=t.LockLevel.PARTITION if p else t.LockLevel.TABLE, dbname=db,
                                 tablename=table, partitionname=p, operationType=t.DataOperationType.INSERT,
                                 isTransactional=True) for p in parts]
        rs = self.call("lock", t.LockRequest(component=comps, txnid=txn, user=self.user, hostname=self.host,
                                             agentInfo=self.agent_info))
        deadline = time.monotonic() + wait
        while rs.state == t.LockState.WAITING and time.monotonic() < deadline:
            time.sleep(0.05)
            rs = self.call("check_lock", t.CheckLockRequest(lockid=rs.lockid, txnid=txn))
        if rs.state != t.LockState.ACQUIRED:
            state = {v: k for k, v in t.LockState._NAMES_TO_VALUES.items()}.get(rs.state, rs.state)
            raise MetastoreError(f"lock on {db}.{table} {', '.join(p or '(table)' for p in parts)} for "
                                 f"transaction {txn} is {state} after {wait:g} s")
        return rs.lockid

    def commit(self, txn: int) -> None:
        self.call("commit_txn", hms().CommitTxnRequest(txnid=txn))

    def abort(self, txn: int) -> None:
        self.call("abort_txn", hms().AbortTxnRequest(txnid=txn))

    def heartbeat(self, lo: int, hi: int) -> tuple[set[int], set[int]]:
        """Keeps transactions ``lo``..``hi`` open; returns the aborted and unknown ones among them."""
        rs = self.call("heartbeat_txn_range", hms().HeartbeatTxnRangeRequest(min=lo, max=hi))
        return set(rs.aborted or ()), set(rs.nosuch or ())


@functools.cache
def _declared() -> tuple[type, ...]:
    t = hms()
    return (t.MetaException, t.NoSuchObjectException, t.AlreadyExistsException, t.InvalidObjectException,
            t.NoSuchTxnException, t.TxnAbortedException, t.NoSuchLockException)
