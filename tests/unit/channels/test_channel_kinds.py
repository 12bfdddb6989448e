"""What every channel kind must do alike (memory, file, Kafka): move every event once under concurrent producers
and consumers, and keep each transaction to the thread that made it.

The Kafka kind runs against a real broker (the session's ``kafka_broker``: one KRaft node on a free loopback port,
started from Maven Central's jars), so it is marked ``peer`` and skipped without java and mvn.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.core import Channel, ChannelException, ChannelFullException, Event
from agent.spec import Conf
from channels.file import FileChannel
from channels.kafka import KafkaChannel
from channels.memory import MemoryChannel
from channels.spillable import SpillableMemoryChannel
from conftest import assert_exactly_once, put_events, take_events

KINDS = ["memory", "file", pytest.param("kafka", marks=pytest.mark.peer), "spillable"]
LIMITS = {"capacity": "5000", "transactionCapacity": "500", "keep-alive": "1"}


@dataclass
class Kind:
    channel: Channel
    settle: float  # seconds the consumers run before the producers start


def _memory(request: pytest.FixtureRequest, tmp: Path) -> Kind:
    return Kind(MemoryChannel("c1", Conf.from_dict(MemoryChannel.spec, **LIMITS)), 0.0)


def _file(request: pytest.FixtureRequest, tmp: Path) -> Kind:
    conf = Conf.from_dict(FileChannel.spec, checkpointDir=str(tmp / "cp"), dataDirs=str(tmp / "data"), **LIMITS)
    return Kind(FileChannel("c1", conf), 0.0)


def _spillable(request: pytest.FixtureRequest, tmp: Path) -> Kind:
    # a memory of 1000 and no wait before spilling: the producers keep crossing the memory/overflow boundary
    conf = Conf.from_dict(SpillableMemoryChannel.spec, checkpointDir=str(tmp / "cp"), dataDirs=str(tmp / "data"),
                          memoryCapacity="1000", overflowCapacity="4000", overflowTimeout="0",
                          transactionCapacity="500")
    return Kind(SpillableMemoryChannel("c1", conf), 0.0)


def _kafka(request: pytest.FixtureRequest, tmp: Path) -> Kind:
    broker = request.getfixturevalue("kafka_broker")
    topic = f"channel-{uuid.uuid4().hex[:12]}"
    broker.create_topic(topic, 2)  # one partition for each consumer thread
    conf = Conf.from_dict(KafkaChannel.spec, kafka__bootstrap__servers=broker.bootstrap, kafka__topic=topic,
                          kafka__consumer__group__id=topic)
    # The consumers join the group before any event flows: a rebalance while a consumer holds taken but not yet
    # committed records would hand them to the other consumer again (Kafka's at-least-once, not a channel bug).
    return Kind(KafkaChannel("c1", conf), 5.0)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kind]:
    made = {"memory": _memory, "file": _file, "kafka": _kafka, "spillable": _spillable}[request.param](request,
                                                                                                    tmp_path)
    made.channel.start()
    yield made
    made.channel.stop()


def _take_until(ch: Channel, n: int, timeout: float = 30.0) -> list[bytes]:
    """Take until ``n`` events arrived or ``timeout`` passed (a Kafka consumer needs a moment to be assigned)."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += [e.body for e in take_events(ch, 10)]
    return got


def test_concurrent_producers_and_consumers_move_every_event_once(kind: Kind) -> None:
    ch = kind.channel
    producers, per_producer, batch = 3, 20_000, 500
    sent = [b"%d-%d" % (k, j) for k in range(producers) for j in range(per_producer)]
    got: list[bytes] = []
    lock = threading.Lock()
    go, done = threading.Event(), threading.Event()
    deadline = time.monotonic() + 120

    def produce(k: int) -> None:
        go.wait()
        for i in range(0, per_producer, batch):
            events = [Event(b"%d-%d" % (k, j)) for j in range(i, i + batch)]
            while True:
                try:
                    put_events(ch, events)
                    break
                except ChannelFullException:
                    continue

    def consume() -> None:
        while not done.is_set() and time.monotonic() < deadline:
            bodies = [e.body for e in take_events(ch, 300)]
            with lock:
                got.extend(bodies)
                if len(got) >= len(sent):
                    done.set()

    threads = [threading.Thread(target=consume) for _ in range(2)]
    threads += [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    for t in threads:
        t.start()
    time.sleep(kind.settle)
    go.set()
    for t in threads:
        t.join(150)
    got += [e.body for e in take_events(ch, 300)]  # nothing is left over, nothing arrives twice
    assert_exactly_once(sent, got)


def test_a_transaction_is_used_only_by_the_thread_that_made_it(kind: Kind) -> None:
    ch = kind.channel
    put_events(ch, [Event(b"queued")])
    tx = ch.transaction().begin()
    fresh = ch.transaction()
    errors: list[str] = []

    def intrude() -> None:
        calls = [fresh.begin, lambda: tx.put(Event(b"intruder")), lambda: tx.take_batch(1), tx.commit, tx.rollback,
                 tx.close]
        for call in calls:
            try:
                call()
            except ChannelException as exc:
                errors.append(str(exc))

    intruder = threading.Thread(target=intrude, name="intruder")
    intruder.start()
    intruder.join()
    assert [e.split("()")[0].rsplit(" ", 1)[-1] for e in errors] == [
        "begin", "put", "take", "commit", "rollback", "close"]
    assert all("called from thread intruder, but the transaction belongs to thread MainThread" in e for e in errors)
    tx.rollback()  # the owner still can: the refused calls changed nothing
    tx.close()
    fresh.close()
    assert _take_until(ch, 1) == [b"queued"]
