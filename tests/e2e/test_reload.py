"""Hot reload of a running agent: only what changed restarts, queued events survive, a bad edit is refused."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

from conftest import assert_exactly_once, free_port, wait_for, wait_for_events

BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
"""

GATED = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = {channel}
a1.channels.c1.capacity = {capacity}
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = gate_sink.GateSink
a1.sinks.k1.channel = c1
a1.sinks.k1.gate = {gate}
a1.sinks.k1.path = {out}
a1.sinks.k1.batchSize = 100
"""


def lines_in(*dirs: Path) -> list[bytes]:
    out: list[bytes] = []
    for d in dirs:
        if d.is_file():
            out += d.read_bytes().splitlines()
        elif d.exists():
            for p in sorted(d.iterdir()):
                out += p.read_bytes().splitlines()
    return out


def metrics(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return json.loads(r.read())


def replace_conf(conf: Path, text: str) -> None:
    """Write the new configuration the way tools do: a temporary file renamed over the old one."""
    tmp = conf.with_suffix(".new")
    tmp.write_text(text)
    os.replace(tmp, conf)


def test_changing_a_sink_under_load_restarts_only_the_sink_and_loses_nothing(run_agent, tmp_path: Path) -> None:
    port = free_port()
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    out1.mkdir()
    out2.mkdir()
    mport = free_port()
    agent = run_agent(BASE.format(port=port, out=out1),
                      args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
    agent.wait_for_port(port)
    sent: list[bytes] = []
    errors: list[BaseException] = []
    half = threading.Event()

    def produce() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port)) as s:  # one connection for the whole run
                for step in range(100):
                    chunk = [b"e-%03d-%04d" % (step, i) for i in range(2000)]
                    s.sendall(b"\n".join(chunk) + b"\n")
                    sent.extend(chunk)
                    if step == 30:
                        half.set()
                    time.sleep(0.02)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    t = threading.Thread(target=produce)
    t.start()
    seen: list[tuple[int, int]] = []  # the channel's put and take counters, read while events flow
    assert half.wait(30)
    replace_conf(agent.conf, BASE.format(port=port, out=out2))  # the sink now writes elsewhere
    while t.is_alive():
        c1 = metrics(mport)["CHANNEL.c1"]
        seen.append((int(c1["EventPutSuccessCount"]), int(c1["EventTakeSuccessCount"])))
        time.sleep(0.05)
    agent.wait_for_log("Configuration reloaded")
    t.join(60)
    assert not errors, errors  # the source was not restarted: its client's connection stayed open
    wait_for_events(sent, lambda: lines_in(out1, out2), logs=[agent])
    assert_exactly_once(sent, lines_in(out1, out2), logs=[agent])  # nothing lost, nothing twice
    assert lines_in(out2), "the new sink.directory is in effect"
    # the kept channel kept counting across the reload: never backwards, takes never ahead of puts, and in the end
    # exactly what was sent
    assert len(seen) > 5 and all(t <= p for p, t in seen)
    assert [p for p, _ in seen] == sorted(p for p, _ in seen) and [t for _, t in seen] == sorted(t for _, t in seen)
    wait_for(lambda: metrics(mport)["CHANNEL.c1"]["EventTakeSuccessCount"] == str(len(sent)), what="counters")
    assert metrics(mport)["CHANNEL.c1"]["EventPutSuccessCount"] == str(len(sent))
    log = agent.log()
    assert "stopped sink group k1" in log and "kept channel c1" in log and "source r1" in log.split("kept", 1)[1]
    assert agent.terminate() == 0


def test_an_invalid_edit_is_refused_and_the_agent_keeps_running(run_agent, tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out"
    out.mkdir()
    agent = run_agent(BASE.format(port=port, out=out))
    agent.wait_for_port(port)
    bad = BASE.format(port=port, out=out).replace("capacity = 100000", "capacity = lots")
    bad = bad.replace("type = file_roll", "type = no_such_sink")
    agent.conf.write_text(bad)  # written in place, not renamed
    agent.wait_for_log("Configuration reload refused")
    log = agent.log()
    assert "agent.conf:10: a1.channels.c1 (memory): capacity:" in log
    assert "agent.conf:12: a1.sinks.k1 (no_such_sink): type:" in log
    still = [b"still-%d" % i for i in range(500)]
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"".join(line + b"\n" for line in still))
    wait_for_events(still, lambda: lines_in(out), what="events through the unchanged agent", logs=[agent])
    # once the file is fixed, the next change is taken
    agent.conf.write_text(BASE.format(port=port, out=out).replace("capacity = 100000", "capacity = 5000"))
    agent.wait_for_log("Configuration reloaded")
    assert agent.terminate() == 0


def _queued_events_survive(run_agent, tmp_path: Path, channel: str, extra: str, change: str, expect: str) -> None:
    port = free_port()
    gate, out = tmp_path / "gate", tmp_path / "out.txt"
    gate.touch()
    conf = GATED.format(port=port, channel=channel, capacity=20000, gate=gate, out=out) + extra
    agent = run_agent(conf)
    agent.wait_for_port(port)
    sent = [b"q-%05d" % i for i in range(5000)]
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"\n".join(sent) + b"\n")
    time.sleep(1.0)  # the source has put them; the gated sink holds one batch, the rest are queued
    replace_conf(agent.conf, conf.replace(*change.split(" => ")))
    agent.wait_for_log("Configuration reloaded", timeout=30)
    assert expect in agent.log()
    gate.unlink()
    wait_for_events(sent, lambda: lines_in(out), what="every queued event", logs=[agent])
    assert agent.terminate() == 0


def test_a_changed_memory_channel_hands_its_queued_events_to_its_replacement(run_agent, tmp_path: Path) -> None:
    _queued_events_survive(run_agent, tmp_path, "memory", "", "capacity = 20000 => capacity = 30000",
                           "Channel c1: moved 4900 queued events into its replacement")


def test_a_changed_file_channel_is_reopened_and_replays(run_agent, tmp_path: Path) -> None:
    extra = f"a1.channels.c1.checkpointDir = {tmp_path / 'cp'}\na1.channels.c1.dataDirs = {tmp_path / 'data'}\n"
    _queued_events_survive(run_agent, tmp_path, "file", extra, "capacity = 20000 => capacity = 30000",
                           "stopped source r1, sink group k1, channel c1")
