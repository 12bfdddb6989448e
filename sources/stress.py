"""The stress source: events of a fixed size, as fast as the channel takes them or at a set rate, for load tests.

Each body is ``size`` bytes of 0x7F (Java's ``Byte.MAX_VALUE``), without headers. As in Flume's StressSource,
``maxTotalEvents`` counts every event handed to the channel processor, including those of batches the channel
refused (a stress source does not retry them), and ``maxSuccessfulEvents`` counts the committed ones; the source
stops (BACKOFF forever) when either limit is reached. The last batch is cut to what ``maxTotalEvents`` leaves; a
batch is never cut for ``maxSuccessfulEvents``, so it may overshoot that limit by up to ``batchSize - 1``.
"""

from __future__ import annotations

import time

from agent.core import POLL_BACKOFF, ChannelException, Event, PollableSource, Status
from agent.spec import Conf, Prop, Spec

__all__ = ["StressSource"]


class StressSource(PollableSource):
    """Generates events of ``size`` bytes, optionally limited in number and in rate."""

    alias = None  # Flume has no alias for it: type = org.apache.flume.source.StressSource
    flume_class = "org.apache.flume.source.StressSource"
    spec = Spec(
        Prop("size", "int", 500, "Bytes in each event body (all 0x7F).", min=0),
        Prop("maxTotalEvents", "int", -1, "Stop after handing over this many events, refused batches included "
             "(negative: no limit)."),
        Prop("maxSuccessfulEvents", "int", -1, "Stop once this many events were committed (negative: no limit)."),
        Prop("batchSize", "int", 1, "Events handed to the channels per transaction.", min=1),
        Prop("maxEventsPerSecond", "int", 0, "Rate limit in events per second (0 or less: none)."),
        extends=POLL_BACKOFF,
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.body = b"\x7f" * c.size
        self.batch: int = c.batch_size
        self.max_total: int = c.max_total_events
        self.max_successful: int = c.max_successful_events
        self.rate: int = c.max_events_per_second
        self.total = 0  # events handed over (Flume's events.total)
        self.successful = 0  # events committed (events.successful)
        self.failed = 0  # events of refused batches (events.failed)
        self._next_free = 0.0  # rate limiter: when the next permit is free (time.monotonic)

    def process(self) -> Status:
        if 0 <= self.max_total <= self.total or 0 <= self.max_successful <= self.successful:
            return Status.BACKOFF
        n = self.batch
        if self.max_total >= 0:
            n = min(n, self.max_total - self.total)
        if self.rate > 0 and not self._acquire(n):
            return Status.BACKOFF  # stopping
        body = self.body
        self.total += n
        try:
            self.deliver([Event(body) for _ in range(n)])
        except ChannelException:
            self.failed += n
            return Status.BACKOFF
        self.successful += n
        return Status.READY

    def _acquire(self, permits: int) -> bool:
        """Wait for the permits of this batch, like Guava's RateLimiter: a batch waits for the debt of the one before,
        and its own permits are paid by the next. False if the source stopped meanwhile."""
        now = time.monotonic()
        wait = self._next_free - now
        self._next_free = max(self._next_free, now) + permits / self.rate
        return wait <= 0 or not self.stopping.wait(wait)

    def stop(self) -> None:
        super().stop()
        self.log.info("Stress source %s stopped: %d events handed over, %d committed, %d refused", self.name,
                      self.total, self.successful, self.failed)

    def metrics(self) -> dict[str, str] | None:
        return None  # Flume's StressSource registers no MBean, so /metrics does not list it
