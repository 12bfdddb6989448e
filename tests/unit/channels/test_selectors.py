"""Channel selectors (through the ChannelProcessor, built from properties as a user writes them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config
from agent.core import ChannelException, Event

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


def test_load_balancing_round_robin_gives_each_event_one_channel_in_turn(tmp_path: Path) -> None:
    topo, cp = build(tmp_path, "a1.sources.r1.selector.type = load_balancing\n")
    cp.process_batch([ev(str(i)) for i in range(4)])
    cp.process_batch([ev(str(i)) for i in range(4, 9)])  # the turn carries over from batch to batch
    assert drain(topo.channels["c1"]) == [b"0", b"3", b"6"]
    assert drain(topo.channels["c2"]) == [b"1", b"4", b"7"]
    assert drain(topo.channels["c3"]) == [b"2", b"5", b"8"]


def test_load_balancing_random_spreads_every_event_to_exactly_one_channel(tmp_path: Path) -> None:
    topo, cp = build(tmp_path, "a1.sources.r1.selector.type = LOAD_BALANCING\n"
                               "a1.sources.r1.selector.policy = RANDOM\n")
    for start in range(0, 150, 50):  # about 50 events per channel, far below their capacity of 100
        cp.process_batch([ev(str(i)) for i in range(start, start + 50)])
    got = {name: drain(topo.channels[name]) for name in ("c1", "c2", "c3")}
    everything = [int(b) for bodies in got.values() for b in bodies]
    assert sorted(everything) == list(range(150))  # each event once
    assert all(15 < len(bodies) < 85 for bodies in got.values()), {k: len(v) for k, v in got.items()}
    for bodies in got.values():  # each channel keeps the source's order
        assert [int(b) for b in bodies] == sorted(int(b) for b in bodies)


def test_load_balancing_a_refusing_channel_fails_the_batch(tmp_path: Path) -> None:
    topo, cp = build(tmp_path, "a1.sources.r1.selector.type = load_balancing\n", c3cap=1)
    cp.process_batch([ev("a"), ev("b"), ev("c")])
    with pytest.raises(ChannelException):
        cp.process_batch([ev("d"), ev("e"), ev("f")])  # c3's share does not fit: the source retries the batch


def test_load_balancing_unknown_policy_is_reported_with_its_line(tmp_path: Path) -> None:
    p = tmp_path / "a.conf"
    p.write_text(SOURCE.format(c3cap=100, c3tx=100) + "a1.sources.r1.selector.type = load_balancing\n"
                                                     "a1.sources.r1.selector.policy = least_busy\n")
    topo, problems = config.check([str(p)], "a1")
    assert topo is None
    assert [str(x) for x in problems if x.severity == "error"] == [
        f"{p}:20: a1.sources.r1 (seq): selector.policy: 'least_busy' is not valid; expected one of "
        f"round_robin, random"]
