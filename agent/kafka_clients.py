"""librdkafka clients that recover when librdkafka stops finding any broker.

After a broker restart, librdkafka (seen with 2.16) can be left with metadata that names no usable broker: its log
says ``_ALL_BROKERS_DOWN`` and then nothing more, its producer holds every record until ``message.timeout.ms``
(300 s by default) and its consumer polls empty although the broker is back. A new client bootstraps again and
works at once. So every client here remembers when librdkafka last reported all brokers down (``BrokerWatch``),
and when that report is followed by ``STALL`` seconds without progress:

* ``Producer.flush`` purges the batch's records (their delivery reports say so), returns the batch as failed —
  the sink or channel rolls it back, nothing is lost — and builds a fresh producer before the next batch;
* ``ConsumerWatch.stuck`` asks the cluster once whether the consumer's partitions hold records it is not
  fetching (or it holds none, or the cluster does not answer); if so the caller replaces the consumer, which
  reads again from the last committed offset (at-least-once, as after a rebalance).

Offsets are committed asynchronously (``commit``): librdkafka's synchronous commit has no timeout, and after a
broker restart it was seen to wait forever for a coordinator, which stopped the Kafka source for good (issue #16).
The records are in the channel before their offsets are committed, so a commit that fails only means they are
read again (at-least-once); failures are logged by ``on_commit``. Closing a consumer waits for its outstanding
commits, so a clean stop does not read the last batch again.

A healthy client never pays for this: a flush that empties the queue returns at once, and the consumer check
runs only after an all-brokers-down report.
"""

from __future__ import annotations

import logging
import threading
import time

from agent.core import _rate_limited
from agent.kafka_conf import client_hooks, flush_timeout, uses_gssapi

__all__ = ["BrokerWatch", "Producer", "ConsumerWatch", "subscribed_consumer", "commit", "on_commit"]

_ALL_BROKERS_DOWN = -187  # librdkafka's RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN


class BrokerWatch:
    """When librdkafka last reported every broker down, until progress clears it."""

    #: seconds without progress after an all-brokers-down report before a client is replaced
    STALL = 30.0

    def __init__(self) -> None:
        self.down_since: float | None = None

    def note(self, err) -> None:  # noqa: ANN001 - librdkafka's KafkaError, from the error callback
        if err.code() == _ALL_BROKERS_DOWN and self.down_since is None:
            self.down_since = time.monotonic()

    def clear(self) -> None:
        self.down_since = None

    def stalled(self, quiet_since: float, now: float) -> bool:
        """Whether brokers were reported down and nothing has moved for STALL seconds since."""
        down = self.down_since
        return down is not None and now - max(down, quiet_since) >= self.STALL


def subscribed_consumer(settings: dict[str, str], log: logging.Logger, what: str, watch: ConsumerWatch,
                        topics: list[str], on_revoke, replacing=None):  # noqa: ANN001, ANN201
    """A consumer of ``settings`` subscribed to ``topics``: librdkafka's errors reach ``watch``, failed commits are
    logged (``on_commit``). ``replacing``: the stuck consumer it replaces, closed in the background (leaving a group
    with no broker can block for a long time)."""
    confluent_kafka = _client_module(settings)
    if replacing is not None:
        log.warning("%s: a new consumer replaces the one that lost every broker", what)
        threading.Thread(target=_close, args=(replacing, log, what), name=f"close-{what}", daemon=True).start()
    hooks = client_hooks(log, what, settings, watch.watch.note)
    consumer = confluent_kafka.Consumer({**settings, **hooks, "on_commit": on_commit(log, what)})
    consumer.subscribe(topics, on_revoke=on_revoke)
    return consumer


def _client_module(settings: dict[str, str]):  # noqa: ANN202
    """confluent_kafka, or agent.kafka_gssapi (the same Producer and Consumer calls) for Kerberos settings."""
    if uses_gssapi(settings):
        from agent import kafka_gssapi

        return kafka_gssapi
    import confluent_kafka

    return confluent_kafka


def _close(client, log: logging.Logger, what: str) -> None:  # noqa: ANN001
    try:
        client.close()
    except Exception as exc:  # noqa: BLE001 - it is being thrown away
        log.debug("%s: closing the replaced consumer failed: %s", what, exc)


def commit(consumer, offsets: dict[tuple[str, int], int], log: logging.Logger, what: str) -> None:  # noqa: ANN001
    """Commit the next offset after each (topic, partition)'s last record read, without waiting (see module)."""
    from confluent_kafka import KafkaException, TopicPartition

    try:
        consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=True)
    except (KafkaException, Exception) as exc:  # noqa: BLE001 - kafka-python's errors with GSSAPI
        _rate_limited(log, f"{what}: committing offsets failed ({exc}); these records may be read again")


def on_commit(log: logging.Logger, what: str):  # noqa: ANN201
    """librdkafka's commit callback for a consumer: failed commits logged, once per 10 s."""

    def report(err, partitions) -> None:  # noqa: ANN001
        if err is not None and err.code() != -174:  # _NO_OFFSET: nothing new to commit
            _rate_limited(log, f"{what}: committing offsets failed ({err.str()}); these records may be read again")

    return report


class Producer:
    """A confluent-kafka producer for batches that are committed only when every record is acknowledged.

    ``begin()`` before producing a batch (it gives the client, rebuilt if the last one was given up), then
    ``flush()``: None when every record of the batch was acknowledged, else (count, reason).
    """

    STEP = 1.0  # seconds per flush call while waiting: the stall check runs between them

    def __init__(self, settings: dict[str, str], log: logging.Logger, what: str):
        self.settings = settings
        self.log = log
        self.what = what
        self.failed: list[str] = []
        self.watch = BrokerWatch()
        self.client = self._new()
        self._stale = False

    def _new(self):  # noqa: ANN202
        confluent_kafka = _client_module(self.settings)
        failed = self.failed
        watch = self.watch

        def on_delivery(err, msg) -> None:  # noqa: ANN001 - librdkafka's callback (errors only by default)
            if err is not None:
                failed.append(f"{msg.topic()}: {err.str()}")

        hooks = client_hooks(self.log, self.what, self.settings, watch.note)
        return confluent_kafka.Producer({**self.settings, "on_delivery": on_delivery, **hooks})

    def begin(self):  # noqa: ANN201
        if self._stale:
            self.client.flush(0)
            self.watch.clear()
            self.client = self._new()
            self._stale = False
            self.log.warning("%s: a new Kafka producer replaces the one that lost every broker", self.what)
        self.failed.clear()
        return self.client

    def flush(self) -> tuple[int, str] | None:
        """Wait for every record's delivery report; give up early when librdkafka lost every broker (see module)."""
        client, failed = self.client, self.failed
        left = client.flush(self.STEP)
        if left:
            left = self._wait(client, left)
        if not left and not failed:
            return None
        return len(failed) or left, failed[0] if failed else f"{left} records not acknowledged in time"

    def _wait(self, client, left: int) -> int:  # noqa: ANN001
        now = time.monotonic()
        deadline = now + flush_timeout(self.settings)
        quiet_since = now
        while left and now < deadline:
            if self.watch.stalled(quiet_since, now):
                client.purge()  # their delivery reports (failed: purged) arrive with the poll below
                client.poll(0)
                self._stale = True
                return len(client) or left
            still = client.flush(min(self.STEP, deadline - now))
            now = time.monotonic()
            if still < left:
                quiet_since = now
                self.watch.clear()
            left = still
        return left

    def close(self, timeout: float) -> int:
        """Flush for up to ``timeout`` seconds; the number of records still unacknowledged."""
        left = self.client.flush(timeout)
        shutdown = getattr(self.client, "shutdown", None)  # kafka-python's (GSSAPI) has a thread to stop
        if shutdown is not None:
            shutdown()
        return left


class ConsumerWatch:
    """Tells a consumer's owner when to replace it (see module); call ``stuck`` after each empty poll and
    ``progress`` after a poll that returned records."""

    PROBE_TIMEOUT = 5.0

    def __init__(self) -> None:
        self.watch = BrokerWatch()
        self.quiet_since = time.monotonic()

    def progress(self) -> None:
        self.quiet_since = time.monotonic()
        if self.watch.down_since is not None:
            self.watch.clear()

    def stuck(self, consumer) -> bool:  # noqa: ANN001
        """After an all-brokers-down report and STALL seconds without a record: whether the consumer is stuck,
        i.e. it holds no partition, or one of its partitions has records it does not fetch, or the cluster does
        not answer. An idle consumer that is caught up is not stuck (and is not asked again until the next
        report)."""
        now = time.monotonic()
        if not self.watch.stalled(self.quiet_since, now):
            return False
        self.watch.clear()
        self.quiet_since = now
        try:
            assigned = consumer.assignment()
            if not assigned:
                return True
            positions = consumer.position(assigned)
            for tp in positions:
                low, high = consumer.get_watermark_offsets(tp, timeout=self.PROBE_TIMEOUT, cached=False)
                if high > max(tp.offset, low):  # an invalid (negative) position means nothing read yet
                    return True
        except Exception:  # noqa: BLE001 - KafkaException: no broker answered
            return True
        return False
