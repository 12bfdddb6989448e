"""The TAILDIR source with the real ``agent``: rotation by rename and by copytruncate while writing, partial
lines, Flume's position file reused across restarts and SIGKILL."""

from __future__ import annotations

import collections
import json
import os
import shutil
import threading
import time
from pathlib import Path

from conftest import assert_exactly_once, rolled_lines, wait_for, wait_for_events

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = TAILDIR
a1.sources.r1.filegroups = g1 g2
a1.sources.r1.filegroups.g1 = {logs}/app\\\\.log
a1.sources.r1.filegroups.g2 = {logs}/other-.*\\\\.log
a1.sources.r1.headers.g1.kind = app
a1.sources.r1.positionFile = {tmp}/pos/taildir_position.json
a1.sources.r1.writePosInterval = 200
a1.sources.r1.batchSize = 500
a1.sources.r1.maxBackoffSleep = 500
a1.sources.r1.channels = c1
{extra}
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {tmp}/out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
a1.sinks.k1.sink.serializer = {serializer}
"""


def setup(tmp: Path, extra: str = "", serializer: str = "text") -> str:
    for d in ("logs", "out"):
        (tmp / d).mkdir(exist_ok=True)
    return CONF.format(logs=tmp / "logs", tmp=tmp, extra=extra, serializer=serializer)


def test_headers_offsets_and_partial_lines(run_agent, tmp_path: Path) -> None:
    conf = setup(tmp_path, "a1.sources.r1.byteOffsetHeader = true", serializer="header_and_text")
    logs = tmp_path / "logs"
    (logs / "app.log").write_bytes(b"first\r\nsecond\n")
    (logs / "other-1.log").write_bytes(b"x\n")
    (logs / "ignored.txt").write_bytes(b"nope\n")
    agent = run_agent(conf)
    wait_for(lambda: len(rolled_lines(tmp_path / "out")) == 3)
    with open(logs / "app.log", "ab") as f:
        f.write(b"par")
        f.flush()
        time.sleep(0.8)
        assert len(rolled_lines(tmp_path / "out")) == 3  # the partial line waits for its newline
        f.write(b"tial\n")
    wait_for(lambda: len(rolled_lines(tmp_path / "out")) == 4)
    got = sorted(rolled_lines(tmp_path / "out"))
    assert b"{kind=app, byteoffset=0} first" in got  # the \r before \n is stripped
    assert b"{kind=app, byteoffset=7} second" in got
    assert b"{kind=app, byteoffset=14} partial" in got
    assert b"{byteoffset=0} x" in got
    assert agent.terminate() == 0
    positions = json.loads((tmp_path / "pos" / "taildir_position.json").read_text())
    by_file = {e["file"]: e for e in positions}
    assert by_file[str(logs / "app.log")]["pos"] == 22
    assert by_file[str(logs / "app.log")]["inode"] == os.stat(logs / "app.log").st_ino
    assert list(positions[0]) == ["inode", "pos", "file"]  # Flume's key order


def _writer(path: Path, n: int, rotate_every: int, mode: str, stop: threading.Event) -> None:
    f = open(path, "ab")
    rotations = 0
    for i in range(n):
        f.write(b"line-%06d\n" % i)
        if i % 100 == 99:
            f.flush()
            time.sleep(0.002)
        if (i + 1) % rotate_every == 0:
            f.flush()
            rotations += 1
            if mode == "rename":
                f.close()
                os.rename(path, path.with_name(f"app.log.{rotations}"))
                f = open(path, "ab")
            else:  # copytruncate: copy, then truncate the live file in place
                shutil.copyfile(path, path.with_name(f"app.log.{rotations}"))
                f.truncate(0)
                f.seek(0)
    f.close()


def test_rotation_by_rename_while_writing_loses_nothing(run_agent, tmp_path: Path) -> None:
    agent = run_agent(setup(tmp_path))
    time.sleep(0.5)
    n = 30_000
    _writer(tmp_path / "logs" / "app.log", n, 7_000, "rename", threading.Event())
    expected = [b"line-%06d" % i for i in range(n)]
    wait_for_events(expected, lambda: rolled_lines(tmp_path / "out"), timeout=30, logs=[agent])
    # exactly once: the renamed files were read to their end
    assert_exactly_once(expected, rolled_lines(tmp_path / "out"), logs=[agent])
    assert agent.terminate() == 0


def test_copytruncate_is_noticed_and_the_file_read_again_from_the_start(run_agent, tmp_path: Path) -> None:
    agent = run_agent(setup(tmp_path))
    time.sleep(0.5)
    app = tmp_path / "logs" / "app.log"
    app.write_bytes(b"".join(b"old-%04d\n" % i for i in range(5000)))
    wait_for_events([b"old-%04d" % i for i in range(5000)], lambda: rolled_lines(tmp_path / "out"), logs=[agent])
    shutil.copyfile(app, tmp_path / "app.log.1")
    with open(app, "r+b") as f:
        f.truncate(0)
    time.sleep(1.0)
    with open(app, "ab") as f:
        f.write(b"".join(b"new-%02d\n" % i for i in range(50)))
    wait_for_events([b"new-%02d" % i for i in range(50)], lambda: rolled_lines(tmp_path / "out"), logs=[agent])
    assert rolled_lines(tmp_path / "out")[5000:] == [b"new-%02d" % i for i in range(50)]
    assert "truncated" in agent.log()
    assert agent.terminate() == 0


def test_position_file_survives_restart_and_sigkill(run_agent, tmp_path: Path) -> None:
    # a file channel: what the source committed survives the SIGKILL below
    conf = setup(tmp_path).replace("a1.channels.c1.type = memory", f"""a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {tmp_path}/cp
a1.channels.c1.dataDirs = {tmp_path}/data
a1.channels.c1.minimumRequiredSpace = 1048576""")
    app = tmp_path / "logs" / "app.log"
    app.write_bytes(b"".join(b"a-%05d\n" % i for i in range(1000)))
    agent = run_agent(conf)
    wait_for_events([b"a-%05d" % i for i in range(1000)], lambda: rolled_lines(tmp_path / "out"), logs=[agent])
    assert agent.terminate() == 0
    with open(app, "ab") as f:  # written while the agent is down
        f.write(b"".join(b"b-%05d\n" % i for i in range(1000)))
    (tmp_path / "agent.log").rename(tmp_path / "agent-1.log")
    agent = run_agent(conf)
    wait_for_events([b"b-%05d" % i for i in range(1000)], lambda: rolled_lines(tmp_path / "out"), logs=[agent])
    time.sleep(0.5)
    assert len(rolled_lines(tmp_path / "out")) == 2000  # nothing read twice after a clean restart
    # now write a lot and SIGKILL in the middle
    def write_more() -> None:
        with open(app, "ab") as f:
            for k in range(300):
                f.write(b"".join(b"c-%05d-%03d\n" % (k, i) for i in range(100)))
                f.flush()
                time.sleep(0.002)

    t = threading.Thread(target=write_more)
    t.start()
    time.sleep(0.3)
    agent.kill()
    t.join()
    (tmp_path / "agent.log").rename(tmp_path / "agent-2.log")
    agent = run_agent(conf)
    expected = {b"c-%05d-%03d" % (k, i) for k in range(300) for i in range(100)}
    wait_for_events(expected, lambda: rolled_lines(tmp_path / "out"), timeout=30, logs=[agent])
    counts = collections.Counter(rolled_lines(tmp_path / "out"))
    assert all(counts[b"a-%05d" % i] == 1 and counts[b"b-%05d" % i] == 1 for i in range(1000))
    assert agent.terminate() == 0
