"""The seq source: a counter, one event per number (``0``, ``1``, ...), for tests and benchmarks."""

from __future__ import annotations

from agent.core import POLL_BACKOFF, Batch, ChannelException, PollableSource, Status
from agent.spec import Conf, Prop, Spec

__all__ = ["SequenceGeneratorSource"]

_LONG_MAX = 2**63 - 1


class SequenceGeneratorSource(PollableSource):
    """Generates events whose body is an increasing decimal counter, starting at 0."""

    alias = "seq"
    flume_class = "org.apache.flume.source.SequenceGeneratorSource"
    spec = Spec(
        Prop("batchSize", "int", 1, "Events generated per channel transaction.", min=1),
        Prop("totalEvents", "int", _LONG_MAX, "Stop after this many events (the default never stops).", min=0),
        extends=POLL_BACKOFF,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.batch: int = self.config.batch_size
        self.total: int = self.config.total_events
        self.next = 0

    def process(self) -> Status:
        start = self.next
        if start >= self.total:
            return Status.BACKOFF
        end = min(start + self.batch, self.total)
        try:
            self.deliver(Batch([b"%d" % i for i in range(start, end)]))
        except ChannelException:
            return Status.BACKOFF  # the same numbers are retried on the next call: nothing is skipped
        self.next = end
        return Status.READY
