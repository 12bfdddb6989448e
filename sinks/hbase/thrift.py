"""HBase's Thrift 1 API as the HBase sinks use it: the server addresses, the generated types (through happybase),
a fast encoder of ``mutateRows`` calls, and the text of HBase's errors."""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

from agent.spec import ConfigError
from sinks.hbase.serializers import Put

__all__ = ["THRIFT_DEFAULT_PORT", "thrift_targets", "encode_mutate_rows", "hbase_thrift", "io_error_text",
           "first_line", "server_principal", "sasl_connection"]

THRIFT_DEFAULT_PORT = 9090


def thrift_targets(text: str, default_port: int) -> list[tuple[str, int]]:
    """The ``thrift`` property's servers: ``host[:port]`` items separated by commas or spaces (IPv6 in brackets)."""
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
def hbase_thrift():  # noqa: ANN202 - the generated module
    """HBase's Thrift 1 types (Mutation, BatchMutation, TIncrement, IOError), as happybase loads them."""
    import happybase  # noqa: F401 - loading happybase registers the Hbase_thrift module
    import Hbase_thrift

    return Hbase_thrift


def server_principal(pattern: str, host: str) -> tuple[str, str, str]:
    """The Thrift server's principal as (service, host, realm) from ``pattern`` (``service/_HOST[@REALM]``, or a
    fixed ``service/host[@REALM]``): ``_HOST`` is the server's host name as the sink names it, in lower case, as
    Hadoop clients substitute it (``SecurityUtil.getServerPrincipal``). The realm is empty when the pattern has none
    (the Kerberos library maps the host to its realm). ValueError for a principal that is not service/host."""
    name, at, realm = pattern.strip().rpartition("@")
    if not at:
        name, realm = pattern.strip(), ""
    service, slash, inst = name.partition("/")
    if not slash or not service or not inst or "/" in inst:
        raise ValueError(f"'{pattern}' is not a service principal of the form service/host[@REALM]")
    return service, host.lower() if inst == "_HOST" else inst, realm


def sasl_connection(host: str, port: int, timeout_ms: int, protocol: str, principal: tuple[str, str, str],
                    credentials, qop: str):  # noqa: ANN001, ANN201 - a callable giving GSSAPI credentials; happybase
    """An open happybase Connection to the Thrift server at ``host:port`` over Thrift's SASL transport (GSSAPI,
    agent.thrift_sasl), as HBase's secure Thrift server (``hbase.thrift.security.qop``) expects: authenticated to
    ``principal`` (service, host, realm) with ``credentials()``, quality of protection the first of ``qop`` (a comma
    list) the server offers. The protocol is thriftpy2's pure-Python one: its Cython protocols take only its own
    transports."""
    import happybase
    from thriftpy2.protocol.binary import TBinaryProtocol
    from thriftpy2.protocol.compact import TCompactProtocol
    from thriftpy2.thrift import TClient
    from thriftpy2.transport import TSocket

    from agent.thrift_sasl import SaslClientTransport

    conn = happybase.Connection(host, port, timeout=timeout_ms, autoconnect=False)
    service, server_host, realm = principal
    sock = TSocket(host=host, port=port, socket_timeout=timeout_ms, connect_timeout=timeout_ms)
    conn.transport = SaslClientTransport(sock, service, server_host, credentials, qop, realm=realm)
    proto = TCompactProtocol(conn.transport, decode_response=False) if protocol == "compact" else \
        TBinaryProtocol(conn.transport, decode_response=False)
    conn.client = TClient(hbase_thrift().Hbase, proto)
    try:
        conn.open()
    except BaseException:
        conn.transport.close()
        raise
    return conn


def io_error_text(exc: BaseException) -> str:
    """The message of an HBase IOError (bytes or text), else the exception's text."""
    msg = getattr(exc, "message", None)
    if isinstance(msg, bytes):
        msg = msg.decode(errors="replace")
    return msg or str(exc)


def first_line(text: str) -> str:
    """The first line of an HBase error (the server appends the Java stack trace), at most 500 characters."""
    return text.strip().splitlines()[0][:500] if text.strip() else "no detail"
