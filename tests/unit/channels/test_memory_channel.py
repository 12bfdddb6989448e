"""The memory channel: Flume's transaction semantics, limits and counters."""

from __future__ import annotations

import threading
import time

import pytest

from agent.core import ChannelException, ChannelFullException, Event
from agent.spec import Conf
from channels.memory import MemoryChannel
from conftest import put_events, take_events


def make(**props: str) -> MemoryChannel:
    raw = {"capacity": "100", "transactionCapacity": "10", "keep_alive": "0", **props}
    conf = Conf.from_dict(MemoryChannel.spec, **{k.replace("keep_alive", "keep-alive"): v for k, v in raw.items()})
    ch = MemoryChannel("c1", conf)
    ch.start()
    return ch


def put(ch: MemoryChannel, bodies: list[bytes]) -> None:
    put_events(ch, [Event(b) for b in bodies])


def take(ch: MemoryChannel, n: int) -> list[bytes]:
    return [e.body for e in take_events(ch, n)]


def test_state_machine_errors() -> None:
    ch = make()
    tx = ch.transaction()
    with pytest.raises(ChannelException, match="outside an open transaction"):
        tx.put(Event(b"x"))
    tx.begin()
    with pytest.raises(ChannelException, match="already began"):
        tx.begin()
    with pytest.raises(ChannelException, match="without commit"):
        tx.close()
    tx.commit()
    with pytest.raises(ChannelException):
        tx.commit()
    tx.close()


def test_puts_are_invisible_until_commit_and_rollback_returns_takes_to_the_head() -> None:
    ch = make()
    with ch.transaction() as tx:
        tx.put_batch([Event(b"a"), Event(b"b")])
        assert ch.size() == 0
        tx.commit()
    put(ch, [b"c"])
    with ch.transaction() as tx:
        assert [e.body for e in tx.take_batch(2)] == [b"a", b"b"]
        tx.rollback()
    assert take(ch, 10) == [b"a", b"b", b"c"]


def test_leaving_the_block_without_commit_rolls_back() -> None:
    ch = make()
    put(ch, [b"a"])
    with pytest.raises(RuntimeError), ch.transaction() as tx:
        tx.take_batch(1)
        raise RuntimeError("sink failed")
    assert ch.size() == 1


def test_transaction_capacity_limits_puts_and_takes() -> None:
    ch = make()
    with ch.transaction() as tx:
        tx.put_batch([Event(b"x")] * 10)
        with pytest.raises(ChannelException, match="transactionCapacity"):
            tx.put(Event(b"y"))
        tx.commit()
    with ch.transaction() as tx, pytest.raises(ChannelException, match="transactionCapacity"):
        tx.take_batch(11)


def test_capacity_is_claimed_at_commit_and_waits_keep_alive() -> None:
    ch = make(capacity="15", keep_alive="1")
    put(ch, [b"x"] * 10)
    tx = ch.transaction().begin()
    tx.put_batch([Event(b"y")] * 6)  # put itself does not block
    t0 = time.monotonic()
    with pytest.raises(ChannelFullException):
        tx.commit()
    assert 0.9 < time.monotonic() - t0 < 3
    tx.rollback()
    tx.close()
    # room made by a taker while the committer waits: the commit goes through
    tx = ch.transaction().begin()
    tx.put_batch([Event(b"y")] * 6)
    threading.Timer(0.2, lambda: take(ch, 5)).start()
    tx.commit()
    tx.close()
    assert ch.size() == 11


def test_take_on_empty_waits_keep_alive_then_returns_nothing_and_wakes_on_put() -> None:
    ch = make(keep_alive="1")
    t0 = time.monotonic()
    assert take(ch, 5) == []
    assert time.monotonic() - t0 >= 0.9
    threading.Timer(0.1, lambda: put(ch, [b"late"])).start()
    t0 = time.monotonic()
    assert take(ch, 5) == [b"late"]
    assert time.monotonic() - t0 < 0.9


def test_a_ready_transaction_never_waits_and_two_open_takes_roll_back_in_order() -> None:
    """What a sink taking ahead relies on (Channel.take_ahead): a second take transaction of the same thread while
    the first is open, a take that returns at once on an empty channel, and rollbacks (newest first) that give
    the channel back both batches in their order."""
    ch = make(keep_alive="3")
    assert ch.take_ahead
    put(ch, [b"a", b"b", b"c", b"d"])
    first = ch.transaction().begin()
    assert [e.body for e in first.take_batch(2)] == [b"a", b"b"]
    second = ch.ready_transaction().begin()
    assert [e.body for e in second.take_batch(2)] == [b"c", b"d"]
    third = ch.ready_transaction().begin()
    t0 = time.monotonic()
    assert third.take_batch(2) == []  # empty: no keep-alive wait
    assert time.monotonic() - t0 < 1.0
    third.commit()
    second.rollback()
    first.rollback()
    for tx in (first, second, third):
        tx.close()
    assert take(ch, 10) == [b"a", b"b", b"c", b"d"]


def test_byte_capacity_counts_bodies_in_100_byte_slots() -> None:
    # 1000 bytes less 20% = 800 bytes = 8 slots
    ch = make(byteCapacity="1000")
    put(ch, [b"x" * 100] * 5 + [b""] * 3)  # 5 + 3 slots (an empty body takes one)
    with ch.transaction() as tx:
        tx.put(Event(b"z"))
        with pytest.raises(ChannelException, match="Byte capacity"):
            tx.commit()
    take(ch, 2)
    put(ch, [b"z" * 150])  # two slots free again
    assert ch.size() == 7


def test_counters_have_flume_names_and_values() -> None:
    ch = make()
    put(ch, [b"a", b"b", b"c"])
    take(ch, 2)
    m = ch.metrics()
    assert m["EventPutAttemptCount"] == "3" and m["EventPutSuccessCount"] == "3"
    assert m["EventTakeSuccessCount"] == "2" and m["ChannelSize"] == "1"
    assert m["ChannelCapacity"] == "100" and m["ChannelFillPercentage"] == "1.0"
