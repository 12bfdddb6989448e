"""Sink processors (failover, load_balance) driving real sinks over a real memory channel."""

from __future__ import annotations

import pytest

from agent.core import BatchSink, Event, EventDeliveryException, Status
from agent.spec import Conf
from channels.memory import MemoryChannel
from sinks.processors import DefaultSinkProcessor, FailoverSinkProcessor, LoadBalancingSinkProcessor


class Recorder(BatchSink):
    """A real sink that can be told to fail; remembers what it delivered."""

    batch_size_prop = None

    def __init__(self, name: str, channel: MemoryChannel):
        super().__init__(name, Conf.from_dict(BatchSink.spec))
        self.channel = channel
        self.failing = False
        self.got: list[bytes] = []

    def batch_size(self) -> int:
        return 2

    def deliver(self, events: list[Event]) -> None:
        if self.failing:
            raise OSError(f"{self.name} is down")
        self.got += [e.body for e in events]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def channel_with(n: int) -> MemoryChannel:
    ch = MemoryChannel("c", Conf.from_dict(MemoryChannel.spec, capacity="1000", transactionCapacity="100"))
    ch.keep_alive = 0  # an empty take returns at once
    ch.start()
    for start in range(0, n, 100):
        with ch.transaction() as tx:
            tx.put_batch([Event(b"%d" % i) for i in range(start, min(n, start + 100))])
            tx.commit()
    return ch


def test_default_processor_drives_its_one_sink() -> None:
    ch = channel_with(3)
    k = Recorder("k1", ch)
    p = DefaultSinkProcessor("g", Conf.from_dict(DefaultSinkProcessor.spec))
    p.set_sinks([k])
    assert p.process() == Status.READY and p.process() == Status.READY and p.process() == Status.BACKOFF
    assert k.got == [b"0", b"1", b"2"]


def test_failover_uses_highest_priority_and_brings_a_sink_back_after_its_penalty() -> None:
    ch = channel_with(12)
    k1, k2 = Recorder("k1", ch), Recorder("k2", ch)
    clock = Clock()
    p = FailoverSinkProcessor("g", Conf.from_dict(FailoverSinkProcessor.spec, priority__k1="10", priority__k2="5",
                                                  maxpenalty="10000"), clock=clock)
    p.set_sinks([k2, k1])
    p.process()
    assert k1.got == [b"0", b"1"] and k2.got == []
    k1.failing = True
    p.process()  # k1 fails: its batch goes back to the channel and k2 takes it
    assert k2.got == [b"2", b"3"]
    k1.failing = False
    clock.t += 1.0  # still inside the 2 s penalty
    p.process()
    assert k2.got == [b"2", b"3", b"4", b"5"]
    clock.t += 1.5
    p.process()  # penalty over: k1 is tried first and is back
    assert k1.got[-2:] == [b"6", b"7"]
    p.process()
    assert k1.got[-2:] == [b"8", b"9"]


def test_failover_penalty_doubles_up_to_maxpenalty_and_all_failing_raises() -> None:
    ch = channel_with(4)
    k1, k2 = Recorder("k1", ch), Recorder("k2", ch)
    k1.failing = k2.failing = True
    clock = Clock()
    p = FailoverSinkProcessor("g", Conf.from_dict(FailoverSinkProcessor.spec, maxpenalty="5000"), clock=clock)
    p.set_sinks([k1, k2])
    with pytest.raises(EventDeliveryException):
        p.process()
    assert ch.size() == 4  # nothing lost
    for _ in range(5):
        clock.t += 10
        with pytest.raises(EventDeliveryException):
            p.process()
    failures, retry_at = p._failed[k1]
    assert retry_at - clock.t <= 5.0 and failures >= 3


def test_failover_duplicate_priorities_are_a_config_error() -> None:
    conf = Conf.from_dict(FailoverSinkProcessor.spec, priority__k1="5", priority__k2="5")
    p = FailoverSinkProcessor("g", conf)
    ch = channel_with(0)
    p.set_sinks([Recorder("k1", ch), Recorder("k2", ch)])
    assert any("same priority" in x.message for x in conf.problems)


@pytest.mark.parametrize("selector", ["round_robin", "random"])
def test_load_balance_spreads_and_skips_failed_sinks_with_backoff(selector: str) -> None:
    ch = channel_with(400)
    ks = [Recorder(f"k{i}", ch) for i in range(3)]
    clock = Clock()
    p = LoadBalancingSinkProcessor("g", Conf.from_dict(LoadBalancingSinkProcessor.spec, backoff="true",
                                                       selector=selector, selector__maxTimeOut="4000"), clock=clock)
    p.set_sinks(ks)
    for _ in range(6):
        p.process()
    if selector == "round_robin":
        assert [len(k.got) for k in ks] == [4, 4, 4]
    ks[1].failing = True
    for _ in range(6):
        p.process()  # k1 fails once, then is skipped while backed off
    assert sum(len(k.got) for k in ks) == 24
    calls_while_failed = len(ks[1].got)
    ks[1].failing = False
    clock.t += 5  # past selector.maxTimeOut
    rounds = 0
    while len(ks[1].got) == calls_while_failed and rounds < 100:  # random order: k1 comes up sooner or later
        p.process()
        rounds += 1
    assert len(ks[1].got) > calls_while_failed
    delivered = sorted(b for k in ks for b in k.got)
    assert delivered == sorted(b"%d" % i for i in range(len(delivered)))  # in order from the channel, none lost


def test_load_balance_all_failing_raises_and_keeps_the_events() -> None:
    ch = channel_with(4)
    ks = [Recorder(f"k{i}", ch) for i in range(2)]
    for k in ks:
        k.failing = True
    p = LoadBalancingSinkProcessor("g", Conf.from_dict(LoadBalancingSinkProcessor.spec))
    p.set_sinks(ks)
    with pytest.raises(EventDeliveryException):
        p.process()
    assert ch.size() == 4
