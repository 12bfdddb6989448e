"""The spillable memory channel: order across the memory/overflow boundary, spill and unspill, capacity and
push-back, overflowTimeout, what a restart keeps, and its configuration errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.core import ChannelFullException, Event
from agent.spec import Conf, ConfigError, Problem, Raw
from channels.spillable import SpillableMemoryChannel
from conftest import put_events, take_events


def make(tmp: Path, start: bool = True, **props: str) -> SpillableMemoryChannel:
    raw = {"memoryCapacity": "10", "transactionCapacity": "5", "overflowTimeout": "0",
           "checkpointDir": str(tmp / "cp"), "dataDirs": str(tmp / "data"), **props}
    ch = SpillableMemoryChannel("c1", Conf.from_dict(SpillableMemoryChannel.spec, **raw))
    if start:
        ch.start()
    return ch


def put(ch: SpillableMemoryChannel, bodies: list[bytes]) -> None:
    put_events(ch, [Event(b) for b in bodies])


def take(ch: SpillableMemoryChannel, n: int) -> list[bytes]:
    return [e.body for e in take_events(ch, n)]


def drain(ch: SpillableMemoryChannel, n: int = 5) -> list[bytes]:
    out: list[bytes] = []
    while batch := take(ch, n):
        out += batch
    return out


def bodies(first: int, n: int) -> list[bytes]:
    return [b"e%03d" % i for i in range(first, first + n)]


def in_overflow(ch: SpillableMemoryChannel) -> int:
    return ch._overflow.size()  # the file channel behind the overflow


def test_order_is_kept_across_spill_and_unspill(tmp_path: Path) -> None:
    ch = make(tmp_path)
    try:
        sent: list[bytes] = []
        for i in range(0, 25, 5):  # 10 fit in memory, the next 15 spill
            put(ch, bodies(i, 5))
            sent += bodies(i, 5)
        assert (ch.size(), in_overflow(ch)) == (25, 15)
        assert take(ch, 5) == sent[:5]  # memory frees 5 slots: the next put goes to memory, behind the overflow
        put(ch, bodies(25, 5))
        sent += bodies(25, 5)
        assert in_overflow(ch) == 15
        put(ch, bodies(30, 5))  # memory is full again: overflow, behind the memory batch
        sent += bodies(30, 5)
        assert in_overflow(ch) == 20
        assert sent[5:] == drain(ch)
        assert (ch.size(), in_overflow(ch)) == (0, 0)
    finally:
        ch.stop()


def test_metrics_show_flumes_size_and_capacity(tmp_path: Path) -> None:
    ch = make(tmp_path, overflowCapacity="1000")
    try:
        for i in range(0, 15, 5):
            put(ch, bodies(i, 5))
        with ch.transaction() as tx:  # taken, not committed: no longer counted in the size
            tx.take_batch(5)
            m = ch.metrics()
            tx.rollback()
        assert (m["ChannelSize"], m["ChannelCapacity"], m["EventPutSuccessCount"]) == ("10", "1010", "15")
    finally:
        ch.stop()


def test_a_take_stays_on_one_side_and_stops_at_the_boundary(tmp_path: Path) -> None:
    ch = make(tmp_path, transactionCapacity="10")
    try:
        put(ch, bodies(0, 8))  # memory
        put(ch, bodies(8, 4))  # 12 > 10: overflow
        put(ch, bodies(12, 2))  # fits the 2 free memory slots
        assert take(ch, 10) == bodies(0, 8)  # memory only, though 10 were asked for
        assert take(ch, 10) == bodies(8, 4)  # then the overflow run
        assert take(ch, 10) == bodies(12, 2)
    finally:
        ch.stop()


def test_rollback_puts_takes_back_at_the_head_on_either_side(tmp_path: Path) -> None:
    ch = make(tmp_path)
    try:
        for i in range(0, 20, 5):
            put(ch, bodies(i, 5))  # 0-9 memory, 10-19 overflow
        for expect in (bodies(0, 5), bodies(10, 5)):
            if expect[0] == b"e010":
                assert take(ch, 5) == bodies(0, 5) and take(ch, 5) == bodies(5, 5)
            with ch.transaction() as tx:
                assert [e.body for e in tx.take_batch(3)] == expect[:3]
                assert [e.body for e in tx.take_batch(2)] == expect[3:]
                tx.rollback()
        assert ch.size() == 10 and in_overflow(ch) == 10
        assert drain(ch, 4) == bodies(10, 10)
    finally:
        ch.stop()


def test_concurrent_takers_on_the_overflow_get_each_event_once(tmp_path: Path) -> None:
    ch = make(tmp_path, memoryCapacity="0", transactionCapacity="50")
    try:
        sent = bodies(0, 600)
        for i in range(0, 600, 50):
            put(ch, sent[i:i + 50])
        got: list[bytes] = []
        lock = threading.Lock()

        def consume() -> None:
            while batch := take(ch, 7):
                with lock:
                    got.extend(batch)

        threads = [threading.Thread(target=consume) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(got) == sent
    finally:
        ch.stop()


def test_overflow_timeout_a_full_memory_waits_then_spills_then_spills_at_once(tmp_path: Path) -> None:
    ch = make(tmp_path, overflowTimeout="1", transactionCapacity="10")
    try:
        put(ch, bodies(0, 10))
        t0 = time.monotonic()
        put(ch, bodies(10, 5))  # memory full: waits overflowTimeout, then spills
        assert 0.9 <= time.monotonic() - t0 < 3
        assert in_overflow(ch) == 5
        t0 = time.monotonic()
        put(ch, bodies(15, 5))  # the overflow is active: no wait
        assert time.monotonic() - t0 < 0.5
        assert in_overflow(ch) == 10
        assert take(ch, 5) == bodies(0, 5) and take(ch, 5) == bodies(5, 5)  # memory empties: deactivated
        put(ch, bodies(20, 5))
        assert in_overflow(ch) == 10  # went to memory
    finally:
        ch.stop()


def test_a_put_that_finds_room_within_overflow_timeout_stays_in_memory(tmp_path: Path) -> None:
    ch = make(tmp_path, overflowTimeout="5", transactionCapacity="10")
    try:
        put(ch, bodies(0, 10))
        timer = threading.Timer(0.3, lambda: take(ch, 5))
        timer.start()
        t0 = time.monotonic()
        put(ch, bodies(10, 5))
        assert time.monotonic() - t0 < 3
        timer.join()
        assert in_overflow(ch) == 0
        assert take(ch, 10) == bodies(5, 10)
    finally:
        ch.stop()


def test_a_take_on_an_empty_channel_waits_overflow_timeout(tmp_path: Path) -> None:
    ch = make(tmp_path, overflowTimeout="1")
    try:
        threading.Timer(0.2, lambda: put(ch, [b"late"])).start()
        t0 = time.monotonic()
        assert take(ch, 5) == [b"late"]
        assert time.monotonic() - t0 < 0.9
        t0 = time.monotonic()
        assert take(ch, 5) == []
        assert time.monotonic() - t0 >= 0.9
    finally:
        ch.stop()


def test_without_overflow_a_full_memory_pushes_back(tmp_path: Path) -> None:
    ch = make(tmp_path, overflowCapacity="0", transactionCapacity="10")
    try:
        assert ch._overflow is None and not (tmp_path / "cp").exists()  # no file channel, no directories
        put(ch, bodies(0, 10))
        with pytest.raises(ChannelFullException, match="memory capacity has been reached and overflow is disabled"):
            put(ch, bodies(10, 1))
        assert drain(ch) == bodies(0, 10)  # what was stored is intact
    finally:
        ch.stop()


def test_memory_and_overflow_full_pushes_back_and_keeps_what_is_stored(tmp_path: Path) -> None:
    ch = make(tmp_path, overflowCapacity="10")
    try:
        for i in range(0, 20, 5):
            put(ch, bodies(i, 5))
        assert ch.capacity == 20
        with pytest.raises(ChannelFullException, match=r"memory and overflow are full \(memoryCapacity 10, "
                                                       r"overflowCapacity 10\)"):
            put(ch, bodies(20, 5))
        assert drain(ch) == bodies(0, 20)
        put(ch, bodies(20, 5))  # room again
        assert take(ch, 5) == bodies(20, 5)
    finally:
        ch.stop()


def test_byte_capacity_sends_big_bodies_to_the_overflow(tmp_path: Path) -> None:
    # 1000 bytes less 20% = 800 bytes = 8 slots of avgEventSize 100; a 250-byte body takes 3 slots
    ch = make(tmp_path, memoryCapacity="100", byteCapacity="1000", avgEventSize="100")
    try:
        put_events(ch, [Event(b"x" * 250), Event(b"y" * 250)])  # 6 slots: memory
        put_events(ch, [Event(b"z" * 250)])  # 9 > 8: overflow
        put_events(ch, [Event(b""), Event(b"w")])  # one slot each: memory
        assert in_overflow(ch) == 1
        assert [e.body[:1] for e in take_events(ch, 5)] == [b"x", b"y"]
        assert [e.body[:1] for e in take_events(ch, 5)] == [b"z"]
        assert [e.body for e in take_events(ch, 5)] == [b"", b"w"]
    finally:
        ch.stop()


def test_restart_keeps_the_overflow_and_a_clean_stop_keeps_memory_too(tmp_path: Path) -> None:
    ch = make(tmp_path)
    for i in range(0, 20, 5):
        put(ch, bodies(i, 5))  # 0-9 memory, 10-19 overflow
    ch.stop()  # the memory part is moved to the overflow, after what was there
    again = make(tmp_path)
    try:
        assert again.size() == 20
        assert drain(again) == bodies(10, 10) + bodies(0, 10)
    finally:
        again.stop()


def test_events_survive_in_the_overflow_when_the_process_dies(tmp_path: Path) -> None:
    ch = make(tmp_path)
    for i in range(0, 20, 5):
        put(ch, bodies(i, 5))
    ch._overflow._release_locks()  # what SIGKILL leaves behind: no stop, no checkpoint, the locks gone
    again = make(tmp_path)
    try:
        assert drain(again) == bodies(10, 10)  # the memory part is lost, as in Flume
    finally:
        again.stop()


def _problems(**props: str) -> list[str]:
    raw = {k: Raw(v, n, "a1.conf") for n, (k, v) in enumerate(props.items(), start=10)}
    problems: list[Problem] = []
    conf = SpillableMemoryChannel.spec.bind(raw, problems=problems, component="a1.channels.c1 (SPILLABLEMEMORY)",
                                            decl=Raw("SPILLABLEMEMORY", 9, "a1.conf"))
    try:
        SpillableMemoryChannel("c1", conf)
    except ConfigError as exc:
        problems.append(Problem("a1.conf", 0, "", exc.prop, exc.message))
    return [str(p) for p in problems]


def test_configuration_errors_name_the_line_the_property_and_what_is_valid() -> None:
    assert _problems(overflowCapacity="1000", transactionCapacity="5000") == [
        "a1.conf:11: a1.channels.c1 (SPILLABLEMEMORY): transactionCapacity: transactionCapacity (5000) must not "
        "exceed overflowCapacity (1000)"]
    assert _problems(memoryCapacity="-1", overflowDeactivationThreshold="101") == [
        "a1.conf:10: a1.channels.c1 (SPILLABLEMEMORY): memoryCapacity: -1 is too small; the minimum is 0",
        "a1.conf:11: a1.channels.c1 (SPILLABLEMEMORY): overflowDeactivationThreshold: 101 is too large; the "
        "maximum is 100"]
    assert _problems(capacity="500", memoryCapacity="0", overflowCapacity="0", memoryCapacty="5") == [
        "a1.conf:13: a1.channels.c1 (SPILLABLEMEMORY): warning: unknown property 'memoryCapacty'; did you mean "
        "'memoryCapacity'?",
        "a1.conf:10: a1.channels.c1 (SPILLABLEMEMORY): capacity: warning: ignored: the spillable memory channel "
        "sets its overflow's capacity to overflowCapacity, as Flume does",
        "a1.conf:12: a1.channels.c1 (SPILLABLEMEMORY): overflowCapacity: warning: memoryCapacity and "
        "overflowCapacity are both 0; overflowCapacity is set to 100000000, as Flume does"]
    assert _problems(dataDirs="/tmp/x", checkpointDir="/tmp/x") == [
        "a1.conf:10: a1.channels.c1 (SPILLABLEMEMORY): dataDirs: data directory /tmp/x is also the checkpoint "
        "directory; give each its own"]
