"""The hbase sinks encode mutateRows themselves: the bytes must be exactly what thriftpy2 writes for the same
Mutation structs in the binary protocol HBase's Thrift server reads."""

from __future__ import annotations

import random

import pytest
from thriftpy2.protocol import TBinaryProtocol
from thriftpy2.transport import TMemoryBuffer

from sinks.hbase.thrift import encode_mutate_rows
from sinks.hbase.thrift import hbase_thrift as _thrift


def thriftpy2_bytes(table: bytes, puts, wal: bool, seqid: int) -> bytes:  # noqa: ANN001
    h = _thrift()
    batch = [h.BatchMutation(row, [h.Mutation(column=c, value=v, writeToWAL=wal) for c, v in cells.items()])
             for row, cells in puts]
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf)
    proto.write_message_begin("mutateRows", 1, seqid)  # CALL
    h.Hbase.mutateRows_args(tableName=table, rowBatches=batch, attributes={}).write(proto)
    proto.write_message_end()
    return buf.getvalue()


def random_puts(rng: random.Random, n: int) -> list:
    def blob(k: int) -> bytes:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(k)))

    return [(blob(40), {b"cf:" + blob(8): blob(300) for _ in range(rng.randrange(6))}) for _ in range(n)]


@pytest.mark.parametrize("wal", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_mutate_rows_bytes_equal_thriftpy2s(wal: bool, seed: int) -> None:
    rng = random.Random(seed)
    puts = random_puts(rng, rng.randrange(1, 50))
    heads: dict[bytes, bytes] = {}
    for seqid in (0, 7):
        assert encode_mutate_rows(b"t1", puts, wal, seqid, heads) == thriftpy2_bytes(b"t1", puts, wal, seqid)


def test_edge_cases_empty_batch_empty_row_and_no_cells() -> None:
    puts = [(b"", {b"cf:a": b""}), (b"r", {})]
    assert encode_mutate_rows(b"", puts, True, 0, {}) == thriftpy2_bytes(b"", puts, True, 0)
    assert encode_mutate_rows(b"t", [], True, 0, {}) == thriftpy2_bytes(b"t", [], True, 0)
