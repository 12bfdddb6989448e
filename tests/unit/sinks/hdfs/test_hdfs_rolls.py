"""The hdfs sink's roll rules on file://: count, size, interval, idle, maxOpenFiles, and rolled files closed by the
background closers without stalling the batches."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from agent.core import Event
from conftest import file_hdfs_sink


def closed_files(out: Path) -> list[Path]:
    """Closed files in the order they were opened (Flume's counter in the name)."""
    return sorted((f for f in out.rglob("FlumeData.*") if not f.name.endswith(".tmp")),
                  key=lambda f: int(f.name.split(".")[1]))


def lines(f: Path) -> list[bytes]:
    return f.read_bytes().split(b"\n")[:-1]


def wait_until(cond, timeout: float = 10) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def events(start: int, n: int, body: bytes = b"") -> list[Event]:
    return [Event(body or b"%d" % i) for i in range(start, start + n)]


def test_roll_count_splits_a_batch_and_keeps_the_order(tmp_path):
    s = file_hdfs_sink(tmp_path, hdfs__rollCount="10")
    s.deliver(events(0, 25))
    s.deliver(events(25, 3))
    s.stop()
    files = closed_files(tmp_path)
    assert [len(lines(f)) for f in files] == [10, 10, 8]
    assert [x for f in files for x in lines(f)] == [b"%d" % i for i in range(28)]
    assert not list(tmp_path.glob("*.tmp"))


def test_roll_size_counts_body_bytes(tmp_path):
    s = file_hdfs_sink(tmp_path, hdfs__rollSize="250")
    s.deliver(events(0, 7, body=b"x" * 100))  # a file takes events until its bodies reach 250 bytes: 3 each
    s.stop()
    assert [len(lines(f)) for f in closed_files(tmp_path)] == [3, 3, 1]


def test_roll_interval_closes_a_file_without_further_writes(tmp_path):
    s = file_hdfs_sink(tmp_path, hdfs__rollInterval="1")
    s.deliver(events(0, 5))
    assert list(tmp_path.glob("*.tmp"))
    assert wait_until(lambda: len(closed_files(tmp_path)) == 1 and not list(tmp_path.glob("*.tmp")))
    s.deliver(events(5, 5))  # a new file
    s.stop()
    assert [lines(f) for f in closed_files(tmp_path)] == [[b"%d" % i for i in range(5)],
                                                          [b"%d" % i for i in range(5, 10)]]


def test_idle_timeout_closes_a_quiet_file(tmp_path):
    s = file_hdfs_sink(tmp_path, hdfs__idleTimeout="1")
    s.deliver(events(0, 2))
    time.sleep(0.6)
    s.deliver(events(2, 2))  # writing keeps it open past one idle period
    time.sleep(0.6)
    assert not closed_files(tmp_path)
    assert wait_until(lambda: len(closed_files(tmp_path)) == 1)
    s.stop()
    assert lines(closed_files(tmp_path)[0]) == [b"0", b"1", b"2", b"3"]


def test_max_open_files_closes_the_least_recently_used_bucket(tmp_path):
    s = file_hdfs_sink(tmp_path / "%{h}", hdfs__maxOpenFiles="2")
    s.deliver([Event(b"a1", {"h": "a"}), Event(b"b1", {"h": "b"})])
    s.deliver([Event(b"a2", {"h": "a"})])  # b is now the least recently used
    s.deliver([Event(b"c1", {"h": "c"})])
    assert wait_until(lambda: [f.parent.name for f in closed_files(tmp_path)] == ["b"])
    s.stop()
    got = {f.parent.name: lines(f) for f in closed_files(tmp_path)}
    assert got == {"a": [b"a1", b"a2"], "b": [b"b1"], "c": [b"c1"]}


def test_a_slow_close_does_not_stall_the_batches(tmp_path):
    """Completing a file on the namenode can take half a second; the closers do it while batches go on."""
    s = file_hdfs_sink(tmp_path, hdfs__rollCount="10", hdfs__threadsPoolSize="2")
    real_close = s.fs.close
    release = threading.Event()

    def slow_close(path: str) -> None:
        release.wait(10)
        real_close(path)

    s.fs.close = slow_close  # type: ignore[method-assign]
    t0 = time.monotonic()
    for i in range(5):
        s.deliver(events(10 * i, 10))  # each batch fills and rolls one file
    assert time.monotonic() - t0 < 2  # the sink did not wait for the closes
    assert len(list(tmp_path.glob("*.tmp"))) == 5  # sealed, durable, waiting for their close
    assert all(len(lines(f)) == 10 for f in tmp_path.glob("*.tmp"))
    release.set()
    s.stop()
    files = closed_files(tmp_path)
    assert [x for f in files for x in lines(f)] == [b"%d" % i for i in range(50)]
    assert not list(tmp_path.glob("*.tmp"))
    assert s.counter.connection_closed == 5
