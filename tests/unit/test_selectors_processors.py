"""Channel selectors (through the ChannelProcessor, built from properties as a user writes them) and sink
processors (failover, load_balance) driving real sinks over a real memory channel."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from agent.core import BatchSink, ChannelException, Event, EventDeliveryException, Status
from agent.spec import Conf
from channels.memory import MemoryChannel
from sinks.processors import DefaultSinkProcessor, FailoverSinkProcessor, LoadBalancingSinkProcessor

# ----------------------------------------------------------------------------------------------------------
# Selectors

SOURCE = """\
a1.sources = r1
a1.channels = c1 c2 c3
a1.sinks = k1 k2 k3
a1.sources.r1.type = seq
a1.sources.r1.channels = c1 c2 c3
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.channels.c3.type = memory
a1.channels.c3.capacity = {c3cap}
a1.channels.c3.transactionCapacity = {c3tx}
a1.channels.c3.keep-alive = 0
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channel = c2
a1.sinks.k3.type = null
a1.sinks.k3.channel = c3
a1.sinks.k3.batchSize = {c3tx}
"""


def build(tmp_path: Path, extra: str, c3cap: int = 100, c3tx: int | None = None):
    p = tmp_path / "a.conf"
    p.write_text(SOURCE.format(c3cap=c3cap, c3tx=c3tx or c3cap) + extra)
    topo, problems = config.build(config.plan(config.load([p]), "a1"))
    errors = [str(x) for x in problems if x.severity == "error"]
    assert topo is not None and not errors, errors
    for ch in topo.channels.values():
        ch.start()
    return topo, topo.sources["r1"].channel_processor


def drain(channel) -> list[bytes]:
    with channel.transaction() as tx:
        got = tx.take_batch(channel.transaction_capacity)
        tx.commit()
    return [e.body for e in got]


def ev(body: str, **headers: str) -> Event:
    return Event(body.encode(), dict(headers))


def test_replicating_puts_every_event_in_every_channel(tmp_path: Path) -> None:
    topo, cp = build(tmp_path, "")
    cp.process_batch([ev("a"), ev("b")])
    for name in ("c1", "c2", "c3"):
        assert drain(topo.channels[name]) == [b"a", b"b"]


def test_replicating_optional_channel_failure_is_ignored_required_failure_raises(tmp_path: Path) -> None:
    topo, cp = build(tmp_path, "a1.sources.r1.selector.optional = c3\n", c3cap=2)
    cp.process_batch([ev("a"), ev("b")])
    cp.process_batch([ev("c"), ev("d")])  # c3 is full now: ignored, it is optional
    assert drain(topo.channels["c1"]) == [b"a", b"b", b"c", b"d"]
    assert drain(topo.channels["c3"]) == [b"a", b"b"]

    topo2, cp2 = build(tmp_path, "", c3cap=2)  # c3 required this time
    cp2.process_batch([ev("a"), ev("b")])
    with pytest.raises(ChannelException):
        cp2.process_batch([ev("c"), ev("d")])


def test_multiplexing_routes_by_header_with_default_and_optional(tmp_path: Path) -> None:
    topo, cp = build(tmp_path, """\
a1.sources.r1.selector.type = multiplexing
a1.sources.r1.selector.header = state
a1.sources.r1.selector.mapping.CA = c1
a1.sources.r1.selector.mapping.AZ = c2
a1.sources.r1.selector.optional.CA = c3
a1.sources.r1.selector.default = c3
""")
    cp.process_batch([ev("ca1", state="CA"), ev("az1", state="AZ"), ev("ny1", state="NY"), ev("none"),
                      ev("ca2", state="CA")])
    assert drain(topo.channels["c1"]) == [b"ca1", b"ca2"]
    assert drain(topo.channels["c2"]) == [b"az1"]
    # the default channel's required events first, then the optional copies (Flume puts required ones first)
    assert drain(topo.channels["c3"]) == [b"ny1", b"none", b"ca1", b"ca2"]


def test_interceptors_run_before_routing(tmp_path: Path) -> None:
    topo, cp = build(tmp_path, """\
a1.sources.r1.interceptors = st
a1.sources.r1.interceptors.st.type = static
a1.sources.r1.interceptors.st.key = state
a1.sources.r1.interceptors.st.value = AZ
a1.sources.r1.selector.type = multiplexing
a1.sources.r1.selector.header = state
a1.sources.r1.selector.mapping.AZ = c2
a1.sources.r1.selector.default = c1
""")
    cp.process_batch([ev("x")])
    assert drain(topo.channels["c2"]) == [b"x"] and drain(topo.channels["c1"]) == []


def test_processor_slices_batches_to_the_smallest_transaction_capacity(tmp_path: Path) -> None:
    topo, cp = build(tmp_path, "", c3cap=100, c3tx=10)
    assert cp.max_batch == 10
    cp.process_batch([ev(str(i)) for i in range(35)])  # four transactions of at most 10 on every channel
    assert [drain(topo.channels["c3"]) for _ in range(4)] == [[b"%d" % i for i in range(k, min(k + 10, 35))]
                                                              for k in range(0, 35, 10)]
    assert topo.channels["c1"].size() == 35


# ----------------------------------------------------------------------------------------------------------
# Sink processors


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
