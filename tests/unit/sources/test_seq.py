"""The seq source's bodies: the decimal counter, whatever the batch size and wherever a batch starts."""

import pytest

from agent.core import Batch, Status
from agent.spec import Raw
from sources.seq import SequenceGeneratorSource, counter_bodies


@pytest.mark.parametrize("start,end", [
    (0, 0), (0, 1), (0, 1000), (0, 1001), (5, 2500), (999, 1001), (1000, 2000), (1000, 1001), (1999, 2000),
    (123_456_789, 123_458_790), (10**9 - 3, 10**9 + 4), (2**63 - 1500, 2**63 - 1),
])
def test_counter_bodies_are_the_decimal_numbers(start, end):
    assert counter_bodies(start, end) == [b"%d" % i for i in range(start, end)]


class _Collector:
    def __init__(self):
        self.batches = []

    def __call__(self, batch):
        self.batches.append(batch)


@pytest.mark.parametrize("batch_size,total", [(1, 5), (7, 2003), (1000, 3500), (4096, 10_000)])
def test_the_source_counts_from_zero_without_gap_or_repeat(batch_size, total):
    problems: list = []
    raw = {"batchSize": Raw(str(batch_size), 1), "totalEvents": Raw(str(total), 2)}
    source = SequenceGeneratorSource("r1", SequenceGeneratorSource.spec.bind(raw, problems=problems, component="r1"))
    assert not problems
    got = _Collector()
    source.deliver = got
    while source.process() is Status.READY:
        pass
    assert all(isinstance(b, Batch) and len(b) <= batch_size for b in got.batches)
    assert [body for b in got.batches for body in b.bodies] == [b"%d" % i for i in range(total)]
