"""The file channel: transactions, durability across restarts and crashes, torn and corrupt logs, limits."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from agent.core import ChannelException, ChannelFullException, Event
from agent.file_channel_cli import report as inspect
from agent.spec import Conf
from channels.file import FileChannel
from channels.file.checkpoint import CHECKPOINT_NAME
from conftest import put_events as put
from conftest import take_events as take


def make(tmp: Path, name: str = "c1", free_space=None, **props: str) -> FileChannel:
    raw = {"checkpointDir": str(tmp / "cp"), "dataDirs": str(tmp / "data"), "keep-alive": "0"}
    raw.update(props)
    conf = Conf.from_dict(FileChannel.spec, **{k.replace(".", "__"): v for k, v in raw.items()})
    return FileChannel(name, conf, free_space=free_space)


def drain(ch: FileChannel, batch: int = 1000) -> list[Event]:
    out: list[Event] = []
    while True:
        got = take(ch, batch)
        if not got:
            return out
        out += got


def evs(start: int, end: int, headers: bool = False) -> list[Event]:
    return [Event(b"event-%d" % i, {"n": str(i), "é": "ü"} if headers else None) for i in range(start, end)]


def bodies(events: list[Event]) -> list[bytes]:
    return [e.body for e in events]


def test_round_trip_with_headers_and_order(tmp_path: Path) -> None:
    ch = make(tmp_path)
    ch.start()
    try:
        sent = evs(0, 500, headers=True) + [Event(b"", {}), Event(b"\x00\xff" * 100)]
        put(ch, sent[:250])
        put(ch, sent[250:])
        assert ch.size() == len(sent)
        assert drain(ch, 100) == sent
        assert ch.size() == 0
        m = ch.metrics()
        assert m["EventPutSuccessCount"] == str(len(sent)) and m["Closed"] == "0" and m["Unhealthy"] == "0"
    finally:
        ch.stop()


def test_rollback_returns_takes_to_the_head_and_discards_puts(tmp_path: Path) -> None:
    ch = make(tmp_path)
    ch.start()
    try:
        put(ch, evs(0, 10))
        with ch.transaction() as tx:
            assert bodies(tx.take_batch(4)) == bodies(evs(0, 4))
            tx.rollback()
        with ch.transaction() as tx:
            tx.put_batch(evs(100, 105))
            tx.rollback()
        assert bodies(drain(ch)) == bodies(evs(0, 10))
    finally:
        ch.stop()


def test_restart_after_clean_stop_keeps_the_queue(tmp_path: Path) -> None:
    ch = make(tmp_path)
    ch.start()
    put(ch, evs(0, 1000, headers=True))
    assert bodies(take(ch, 300)) == bodies(evs(0, 300))
    ch.stop()
    ch2 = make(tmp_path)
    ch2.start()
    try:
        assert ch2.size() == 700
        assert drain(ch2) == evs(300, 1000, headers=True)
    finally:
        ch2.stop()


def test_crash_copy_replays_every_commit(tmp_path: Path) -> None:
    """A copy of the directories taken while the channel runs is what a crash leaves: every commit is in it."""
    ch = make(tmp_path / "live", checkpointInterval="100000")
    ch.start()
    try:
        for i in range(0, 5000, 500):
            put(ch, evs(i, i + 500))
        take(ch, 1200)
        ch.checkpoint()  # checkpoint in the middle, then more log after it
        put(ch, evs(5000, 5300))
        take(ch, 100)
        shutil.copytree(tmp_path / "live", tmp_path / "crash")
    finally:
        ch.stop()
    ch2 = make(tmp_path / "crash")
    ch2.start()
    try:
        assert bodies(drain(ch2)) == bodies(evs(1300, 5300))
    finally:
        ch2.stop()


def _segment(tmp: Path) -> Path:
    (seg,) = sorted((tmp / "data").glob("pyflume-log-*"))
    return seg


def test_torn_tail_at_every_offset_of_the_last_record(tmp_path: Path, caplog) -> None:
    base = tmp_path / "base"
    ch = make(base, checkpointOnClose="false")
    ch.start()
    put(ch, evs(0, 20, headers=True))
    put(ch, evs(20, 40))
    size_before_last = _segment(base).stat().st_size
    put(ch, evs(40, 43, headers=True))
    ch.stop()
    data = _segment(base).read_bytes()
    assert len(data) > size_before_last
    caplog.set_level(logging.WARNING)
    for cut in range(size_before_last, len(data)):
        trial = tmp_path / f"cut{cut}"
        shutil.copytree(base, trial)
        _segment(trial).write_bytes(data[:cut])
        ch2 = make(trial)
        ch2.start()
        try:
            assert bodies(drain(ch2)) == bodies(evs(0, 40)), cut
        finally:
            ch2.stop()
        if cut > size_before_last:
            assert _segment(trial).stat().st_size >= size_before_last  # truncated back to the last good record
        shutil.rmtree(trial)
    assert "torn record" in caplog.text


def test_corrupt_bytes_in_the_middle_lose_only_that_record(tmp_path: Path, caplog) -> None:
    ch = make(tmp_path, checkpointOnClose="false")
    ch.start()
    put(ch, evs(0, 10))
    middle_start = _segment(tmp_path).stat().st_size
    put(ch, evs(10, 20))
    middle_end = _segment(tmp_path).stat().st_size
    put(ch, evs(20, 30))
    ch.stop()
    seg = _segment(tmp_path)
    data = bytearray(seg.read_bytes())
    data[(middle_start + middle_end) // 2] ^= 0xFF
    seg.write_bytes(bytes(data))
    caplog.set_level(logging.ERROR)
    ch2 = make(tmp_path)
    ch2.start()
    try:
        assert bodies(drain(ch2)) == bodies(evs(0, 10) + evs(20, 30))
    finally:
        ch2.stop()
    assert f"offset {middle_start}" in caplog.text and "corrupt" in caplog.text
    lines: list[str] = []
    assert inspect(tmp_path / "cp", [tmp_path / "data"], lines.append) == 1
    assert any("DAMAGED" in line for line in lines)


def test_capacity_is_claimed_at_put(tmp_path: Path) -> None:
    ch = make(tmp_path, capacity="100", transactionCapacity="100")
    ch.start()
    try:
        put(ch, evs(0, 60))
        with ch.transaction() as tx:
            with pytest.raises(ChannelFullException):
                tx.put_batch(evs(60, 101))
            tx.put_batch(evs(60, 100))  # what fits still goes in
            tx.commit()
        assert ch.size() == 100
    finally:
        ch.stop()


def test_segments_roll_and_drained_ones_are_deleted(tmp_path: Path) -> None:
    ch = make(tmp_path, maxFileSize="65536", checkpointInterval="100000")
    ch.start()
    try:
        for i in range(0, 20000, 1000):
            put(ch, evs(i, i + 1000))
        segments = sorted((tmp_path / "data").glob("pyflume-log-*"))
        assert len(segments) > 5
        assert bodies(drain(ch)) == bodies(evs(0, 20000))
        ch.checkpoint()
        left = sorted((tmp_path / "data").glob("pyflume-log-*"))
        assert len(left) == 1
    finally:
        ch.stop()


def test_several_data_dirs_are_used_in_turn(tmp_path: Path) -> None:
    dirs = f"{tmp_path}/d1, {tmp_path}/d2"
    ch = make(tmp_path, dataDirs=dirs, maxFileSize="4096")
    ch.start()
    for i in range(0, 400, 50):
        put(ch, evs(i, i + 50))
    ch.stop()
    assert list((tmp_path / "d1").glob("pyflume-log-*")) and list((tmp_path / "d2").glob("pyflume-log-*"))
    ch2 = make(tmp_path, dataDirs=dirs, maxFileSize="4096")
    ch2.start()
    try:
        assert bodies(drain(ch2)) == bodies(evs(0, 400))
    finally:
        ch2.stop()


def test_second_channel_on_the_same_directories_is_refused(tmp_path: Path) -> None:
    ch = make(tmp_path)
    ch.start()
    try:
        other = make(tmp_path, name="c2")
        with pytest.raises(ChannelException, match="in use by another file channel.*channel c1"):
            other.start()
    finally:
        ch.stop()


def test_low_disk_space_refuses_puts_and_recovers(tmp_path: Path) -> None:
    free = {"bytes": 10 << 30}
    ch = make(tmp_path, free_space=lambda _p: free["bytes"])
    ch.start()
    try:
        put(ch, evs(0, 10))
        free["bytes"] = 100 << 20  # below the default 500 MB
        ch._space_checked = 0
        with ch.transaction() as tx, pytest.raises(ChannelFullException, match="minimumRequiredSpace"):
            tx.put_batch(evs(10, 20))
        assert bodies(take(ch, 5)) == bodies(evs(0, 5))  # takes still work
        free["bytes"] = 10 << 30
        ch._space_checked = 0
        put(ch, evs(10, 20))
        assert bodies(drain(ch)) == bodies(evs(5, 20))
    finally:
        ch.stop()


def test_dual_checkpoint_is_used_when_the_primary_is_damaged(tmp_path: Path) -> None:
    props = {"useDualCheckpoints": "true", "backupCheckpointDir": str(tmp_path / "backup")}
    ch = make(tmp_path, **props)
    ch.start()
    put(ch, evs(0, 100))
    take(ch, 40)
    ch.stop()
    (tmp_path / "cp" / CHECKPOINT_NAME).write_text("garbage")
    ch2 = make(tmp_path, **props)
    ch2.start()
    try:
        assert bodies(drain(ch2)) == bodies(evs(40, 100))
    finally:
        ch2.stop()


def test_apache_flume_directories_are_refused(tmp_path: Path) -> None:
    (tmp_path / "cp").mkdir()
    (tmp_path / "cp" / "checkpoint.meta").write_bytes(b"x")
    ch = make(tmp_path)
    with pytest.raises(ChannelException, match="Apache Flume file channel"):
        ch.start()


def test_inspect_reports_depth_and_age(tmp_path: Path) -> None:
    ch = make(tmp_path)
    ch.start()
    put(ch, evs(0, 100))
    take(ch, 30)
    ch.stop()
    lines: list[str] = []
    assert inspect(tmp_path / "cp", [tmp_path / "data"], lines.append) == 0
    text = "\n".join(lines)
    assert "queue depth: 70 events" in text and "every record verified" in text and "oldest queued event" in text
    assert os.path.exists(tmp_path / "cp" / "in_use.lock")
