"""The null sink: takes events and discards them (tests, benchmarks, deliberately dropping a flow)."""

from __future__ import annotations

from agent.core import BatchSink, Event
from agent.spec import Conf, Prop, Spec

__all__ = ["NullSink"]


class NullSink(BatchSink):
    """Discards every event it takes, one transaction per batch."""

    alias = "null"
    flume_class = "org.apache.flume.sink.NullSink"
    batch_size_prop = "batchSize"
    accepts_batch = True  # only counts: a Batch is never turned into events
    spec = Spec(
        Prop("batchSize", "int", 100, "Events taken per transaction.", min=1),
        Prop("logEveryNEvents", "int", 10000, "Log a progress line each time this many more events were dropped.",
             min=1),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.every: int = self.config.log_every_n_events
        self.dropped = 0
        self._next_log = self.every

    def deliver(self, events: list[Event]) -> None:
        self.dropped += len(events)
        if self.dropped >= self._next_log:
            self.log.info("Null sink %s successfully processed %d events", self.name, self.dropped)
            self._next_log = (self.dropped // self.every + 1) * self.every

    def metrics(self) -> dict[str, str] | None:
        return None  # Flume's NullSink registers no MBean, so /metrics does not list it
