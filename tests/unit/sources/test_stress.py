"""The stress source, built from properties as a user writes them and driven as the runner drives it: sizes,
both limits (a refused batch counts toward maxTotalEvents, as in Flume), batches and the rate limit."""

from __future__ import annotations

import time
from pathlib import Path

from agent import config
from agent.core import Status

BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.StressSource
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = {capacity}
a1.channels.c1.transactionCapacity = {capacity}
a1.channels.c1.keep-alive = 0
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 1
"""


def build(tmp_path: Path, extra: str = "", capacity: int = 100):
    p = tmp_path / "a.conf"
    p.write_text(BASE.format(capacity=capacity) + extra)
    topo, problems = config.check([str(p)], "a1")
    assert topo is not None, [str(x) for x in problems]
    topo.channels["c1"].start()
    return topo.sources["r1"], topo.channels["c1"]


def drain(channel) -> list[bytes]:
    with channel.transaction() as tx:
        got = tx.take_batch(channel.transaction_capacity)
        tx.commit()
    return [e.body for e in got]


def test_defaults_are_flumes_one_event_of_500_bytes_per_call(tmp_path):
    src, ch = build(tmp_path)
    assert src.process() is Status.READY
    [body] = drain(ch)
    assert body == b"\x7f" * 500
    assert src.batch_size() == 1 and src.metrics() is None  # Flume's StressSource has no MBean


def test_max_total_events_cuts_the_last_batch_then_backs_off(tmp_path):
    src, ch = build(tmp_path, "a1.sources.r1.size = 3\na1.sources.r1.batchSize = 4\n"
                              "a1.sources.r1.maxTotalEvents = 10\n")
    statuses = [src.process() for _ in range(5)]
    assert statuses == [Status.READY] * 3 + [Status.BACKOFF] * 2
    assert drain(ch) == [b"\x7f\x7f\x7f"] * 10


def test_a_refused_batch_counts_toward_max_total_but_not_max_successful(tmp_path):
    src, ch = build(tmp_path, "a1.sources.r1.batchSize = 3\na1.sources.r1.maxTotalEvents = 9\n"
                              "a1.sources.r1.size = 1\n", capacity=4)
    assert src.process() is Status.READY  # 3 in the channel
    assert src.process() is Status.BACKOFF  # refused: only 1 place left; not retried
    assert (src.total, src.successful, src.failed) == (6, 3, 3)
    assert len(drain(ch)) == 3
    assert src.process() is Status.READY  # the last 3 of the 9
    assert src.process() is Status.BACKOFF
    assert len(drain(ch)) == 3


def test_max_successful_events_stops_after_the_batch_that_reaches_it(tmp_path):
    src, ch = build(tmp_path, "a1.sources.r1.batchSize = 4\na1.sources.r1.maxSuccessfulEvents = 6\n"
                              "a1.sources.r1.size = 0\n")
    assert [src.process() for _ in range(3)] == [Status.READY, Status.READY, Status.BACKOFF]
    assert drain(ch) == [b""] * 8  # the second batch is not cut, as in Flume


def test_max_events_per_second_paces_the_batches(tmp_path):
    src, ch = build(tmp_path, "a1.sources.r1.batchSize = 10\na1.sources.r1.maxEventsPerSecond = 100\n"
                              "a1.sources.r1.maxTotalEvents = 40\n")
    start = time.monotonic()
    while src.process() is Status.READY:
        pass
    elapsed = time.monotonic() - start
    assert len(drain(ch)) == 40
    assert 0.25 < elapsed < 1.5, elapsed  # 4 batches of 10 at 100/s: each waits for the one before (0.1 s)
