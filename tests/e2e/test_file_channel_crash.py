"""Crash safety of the file channel with the real ``agent`` process: SIGKILL at random moments, restart, and
check that every line acknowledged by the source reached the sink's output (duplicates counted, nothing lost)."""

from __future__ import annotations

import collections
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import free_port, rolled_lines, wait_for_events

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {tmp}/checkpoint
a1.channels.c1.dataDirs = {tmp}/data1,{tmp}/data2
a1.channels.c1.checkpointInterval = 500
a1.channels.c1.maxFileSize = 200000
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.channels.c1.minimumRequiredSpace = 1048576
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {tmp}/out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 250
"""

ENCRYPTION = """\
a1.channels.c1.encryption.activeKey = key-1
a1.channels.c1.encryption.cipherProvider = AESCTRNOPADDING
a1.channels.c1.encryption.keyProvider = JCEKSFILE
a1.channels.c1.encryption.keyProvider.keyStoreFile = {stores.keys_jceks}
a1.channels.c1.encryption.keyProvider.keyStorePasswordFile = {stores.storepass_txt}
a1.channels.c1.encryption.keyProvider.keys = key-1
a1.channels.c1.encryption.keyProvider.keys.key-1.passwordFile = {stores.keypass1_txt}
"""

TOTAL = 150_000
CHUNK = 400


def _send_all(port: int, lines: list[bytes], stop: threading.Event, progress: list[int]) -> None:
    """Send chunk by chunk; a chunk counts as delivered once the source acknowledged each of its lines."""
    i = 0
    while i < len(lines) and not stop.is_set():
        chunk = lines[i:i + CHUNK]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                while i < len(lines):
                    chunk = lines[i:i + CHUNK]
                    s.sendall(b"".join(line + b"\n" for line in chunk))
                    need = 3 * len(chunk)  # "OK\n" per line
                    got = b""
                    while len(got) < need:
                        data = s.recv(need - len(got))
                        if not data:
                            raise ConnectionError("closed")
                        got += data
                    assert got == b"OK\n" * len(chunk)
                    i += len(chunk)
                    progress[0] = i
        except OSError:
            time.sleep(0.05)  # the agent is down: retry the unacknowledged chunk once it is back


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_sigkill_at_random_moments_loses_nothing(run_agent, tmp_path: Path, encrypted: bool, request) -> None:
    port = free_port()
    (tmp_path / "out").mkdir()
    conf = CONF.format(port=port, tmp=tmp_path)
    if encrypted:  # Flume's log encryption, keys made by keytool -genseckey (tests/peers/keytool.py)
        stores = request.getfixturevalue("java_stores")
        conf += ENCRYPTION.format(stores=stores)
    lines = [b"line-%06d-%s" % (i, b"x" * 40) for i in range(TOTAL)]
    stop = threading.Event()
    progress = [0]
    sender = threading.Thread(target=_send_all, args=(port, lines, stop, progress))
    rng = random.Random(1234)
    agent = run_agent(conf)
    agent.wait_for_port(port)
    sender.start()
    kills = 0
    mid_stream = 0
    try:
        for threshold in sorted(rng.sample(range(CHUNK, TOTAL - CHUNK), 5)):
            while progress[0] < threshold and sender.is_alive():
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.01))
            mid_stream += 0 < progress[0] < TOTAL
            agent.kill()  # SIGKILL to the process group
            kills += 1
            (tmp_path / "agent.log").rename(tmp_path / f"agent-{kills}.log")
            agent = run_agent(conf)
            agent.wait_for_port(port, timeout=30)
        sender.join(120)
        assert not sender.is_alive(), "sender did not finish"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(set(rolled_lines(tmp_path / "out"))) < TOTAL:
            time.sleep(0.2)
    finally:
        stop.set()
    torn: list[bytes] = []  # a kill during file_roll's write of a batch can leave its file ending mid-line
    got = rolled_lines(tmp_path / "out", torn)
    assert len(torn) <= kills, f"{len(torn)} torn file tails after {kills} kills"
    for tail in torn:  # each one the start of a line the sink was writing when it was killed
        assert any(line.startswith(tail) for line in lines), f"torn tail {tail[:60]!r} is no line's start"
    counts = collections.Counter(got)
    missing = [line for line in lines if line not in counts]
    dups = sum(c - 1 for c in counts.values())
    assert not missing, f"{len(missing)} acknowledged lines lost, e.g. {missing[:3]}"
    extra = set(counts) - set(lines)
    assert not extra, f"{len(extra)} lines written that were never sent, e.g. {sorted(extra)[:3]}"
    # Only the batch in flight at each kill may repeat: a sink batch (250) and the source chunk (400).
    assert dups <= kills * (250 + CHUNK), f"{dups} duplicates after {kills} kills"
    assert mid_stream >= 3, f"only {mid_stream} kills happened while lines were flowing"
    assert agent.terminate() == 0
    inspect = subprocess.run(
        [*__import__("conftest").agent_command(), "file-channel", "--checkpointDir", str(tmp_path / "checkpoint"),
         "--dataDirs", f"{tmp_path}/data1,{tmp_path}/data2"], capture_output=True, text=True)
    assert inspect.returncode == 0, inspect.stdout + inspect.stderr
    assert "queue depth: 0 events" in inspect.stdout
    if encrypted:
        for data in (tmp_path / "data1", tmp_path / "data2"):
            for segment in data.glob("pyflume-log-*"):
                assert b"line-0" not in segment.read_bytes(), f"plaintext in {segment}"
    print(f"{kills} kills ({mid_stream} mid-stream), {dups} duplicates, {len(torn)} torn tails, "
          f"{len(got)} lines written")


SPILLABLE = CONF.split("a1.channels.c1.type")[0] + """\
a1.channels.c1.type = SPILLABLEMEMORY
a1.channels.c1.memoryCapacity = 1000
a1.channels.c1.overflowCapacity = 100000
a1.channels.c1.overflowTimeout = 0
a1.channels.c1.transactionCapacity = 1000
a1.channels.c1.checkpointDir = {tmp}/checkpoint
a1.channels.c1.dataDirs = {tmp}/data
a1.channels.c1.checkpointInterval = 500
a1.channels.c1.minimumRequiredSpace = 1048576
a1.sinks.k1.type = gate_sink.GateSink
a1.sinks.k1.channel = c1
a1.sinks.k1.gate = {tmp}/gate
a1.sinks.k1.path = {tmp}/out/got
a1.sinks.k1.batchSize = 100
"""


def _send_acked(port: int, lines: list[bytes]) -> None:
    progress = [0]
    _send_all(port, lines, threading.Event(), progress)
    assert progress[0] == len(lines), f"only {progress[0]} of {len(lines)} lines acknowledged"


def test_spillable_channel_sigkill_keeps_the_overflow_and_loses_memory(run_agent, tmp_path: Path) -> None:
    """SIGKILL with the sink stalled: the first 1000 lines filled memory (memoryCapacity), every later one went to
    the overflow. After the restart exactly the overflow's lines arrive, once each and in order; the memory's
    lines are gone, which is what Flume promises for this channel. A clean stop (SIGTERM) loses nothing."""
    port = free_port()
    (tmp_path / "out").mkdir()
    (tmp_path / "gate").touch()  # the sink holds its batch: nothing leaves the channel
    conf = SPILLABLE.format(port=port, tmp=tmp_path)
    lines = [b"line-%06d-%s" % (i, b"x" * 40) for i in range(6000)]
    agent = run_agent(conf)
    agent.wait_for_port(port)
    _send_acked(port, lines[:1000])  # all committed in memory: it is now full, and stays full (the sink waits)
    _send_acked(port, lines[1000:5000])  # so these went to the overflow
    agent.kill()
    (tmp_path / "agent.log").rename(tmp_path / "agent-killed.log")
    (tmp_path / "gate").unlink()
    agent = run_agent(conf)
    got_path = tmp_path / "out" / "got"
    wait_for_events(lines[1000:5000], lambda: got_path.read_bytes().splitlines() if got_path.exists() else [],
                    timeout=60, logs=[agent])
    time.sleep(0.3)  # anything else would have arrived by now
    assert got_path.read_bytes().splitlines() == lines[1000:5000]  # the overflow: all of it, once, in order

    (tmp_path / "gate").touch()
    agent.wait_for_port(port)
    _send_acked(port, lines[5000:])  # in memory only
    assert agent.terminate() == 0  # a clean stop moves the memory queue into the overflow
    (tmp_path / "agent.log").rename(tmp_path / "agent-stopped.log")
    (tmp_path / "gate").unlink()
    agent = run_agent(conf)
    wait_for_events(lines[1000:], lambda: got_path.read_bytes().splitlines(), timeout=60, logs=[agent])
    assert got_path.read_bytes().splitlines() == lines[1000:]
    assert agent.terminate() == 0
