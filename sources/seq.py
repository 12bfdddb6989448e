"""The seq source: a counter, one event per number (``0``, ``1``, ...), for tests and benchmarks."""

from __future__ import annotations

from agent.core import POLL_BACKOFF, ChannelException, Event, PollableSource, Status
from agent.spec import Conf, Prop, Spec

__all__ = ["SequenceGeneratorSource"]

_LONG_MAX = 2**63 - 1


class SequenceGeneratorSource(PollableSource):
    """Generates events whose body is an increasing decimal counter, starting at 0."""

    alias = "seq"
    flume_class = "org.apache.flume.source.SequenceGeneratorSource"
    batch_size_prop = "batchSize"
    spec = Spec(
        Prop("batchSize", "int", 1, "Events generated per channel transaction.", min=1),
        Prop("totalEvents", "int", _LONG_MAX, "Stop after this many events (the default never stops).", min=0),
        extends=POLL_BACKOFF,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.batch = conf["batchSize"]
        self.total = conf["totalEvents"]
        self.next = 0

    def process(self) -> Status:
        start = self.next
        if start >= self.total:
            return Status.BACKOFF
        end = min(start + self.batch, self.total)
        events = [Event(str(i).encode()) for i in range(start, end)]
        n = len(events)
        assert self.channel_processor is not None
        try:
            self.channel_processor.process_batch(events)
        except ChannelException:
            # The same numbers are retried on the next call: nothing is skipped.
            with self.counter.lock:
                self.counter.channel_write_fail += 1
                self.counter.event_received += n
                self.counter.append_batch_received += 1
            return Status.BACKOFF
        self.next = end
        self.counter.batch(n, n)
        return Status.READY
