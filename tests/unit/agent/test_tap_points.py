"""Tap internals a user cannot see from ``agent tap`` but relies on: the hot path is left as it was when the last
tap goes, a slow reader never blocks the batch, the access list, the header filter."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from agent import config, tap
from agent.core import Event
from agent.runners import Agent
from tests.conftest import free_port, put_events, take_events, wait_for

CONF = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"""


def test_the_hooks_are_removed_when_the_last_tap_leaves(tmp_path: Path):
    f = tmp_path / "a.conf"
    f.write_text(CONF.format(port=free_port()))
    mport = free_port()
    topo, problems = config.check([str(f)], "a1", {"flume.monitoring.type": "http",
                                                   "flume.monitoring.port": str(mport)})
    assert topo is not None, [str(p) for p in problems]
    agent = Agent(topo)
    agent.start()
    points = (topo.sources["r1"].channel_processor, topo.channels["c1"], topo.sinks["k1"])
    try:
        assert [p.tap for p in points] == [None, None, None]
        url = f"http://127.0.0.1:{mport}/tap?point=r1&point=c1&point=k1"
        first, second = urllib.request.urlopen(url, timeout=10), urllib.request.urlopen(url, timeout=10)
        for stream in (first, second):
            assert json.loads(stream.readline())["points"] == ["source:r1", "channel:c1", "sink:k1"]
        assert all(len(p.tap.taps) == 2 for p in points)
        first.close()
        wait_for(lambda: all(p.tap is not None and len(p.tap.taps) == 1 for p in points), 10, "one tap left")
        more = [urllib.request.urlopen(url, timeout=10) for _ in range(tap.MAX_TAPS - 1)]
        with pytest.raises(urllib.error.HTTPError) as refused:  # one too many
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 503
        assert json.loads(refused.value.read())["error"] == \
            "this agent already serves 16 taps; try again when one of them ends"
        for stream in [second, *more]:
            stream.close()
        wait_for(lambda: all(p.tap is None for p in points), 10, "the hooks to go")
    finally:
        agent.stop()


def test_a_slow_reader_never_blocks_the_batch_and_is_told_what_it_missed():
    t = tap.Tap(["channel:c1"], rate=100)
    events = [Event(b"x" * 10_000, {"n": str(i)}) for i in range(500)]
    for _ in range(30):  # 1.5 s of batches that nobody reads: the queue keeps the newest 2 s at the rate
        t.offer("channel:c1", events)
        time.sleep(0.05)
    samples = t.drain(0)
    stats = t.stats()
    assert len(samples) == 200
    assert stats["dropped"] == stats["sampled"] - 200 > 0
    assert stats["seen"] == 15_000
    assert all(len(s["body"]) <= 4 * tap.DEFAULT_MAX_BODY // 3 + 4 for s in samples)


@pytest.mark.parametrize("client, allow, ok", [
    ("127.0.0.1", None, True),
    ("127.4.5.6", None, True),
    ("::1", None, True),
    ("::ffff:127.0.0.1", None, True),
    ("192.0.2.7", None, False),
    ("2001:db8::1", None, False),
    ("192.0.2.7", "192.0.2.0/24", True),
    ("127.0.0.1", "192.0.2.0/24", False),
    ("127.0.0.1", "none", False),
])
def test_who_may_tap(client: str, allow: str | None, ok: bool):
    assert tap._client_allowed(client, tap.allowed_networks(allow)) is ok


@pytest.mark.parametrize("conditions, headers, ok", [
    (["tenant"], {"tenant": "a"}, True),
    (["tenant"], {}, False),
    (["tenant=b*"], {"tenant": "beta"}, True),
    (["tenant=b*"], {"tenant": "alpha"}, False),
    (["tenant=B*"], {"tenant": "beta"}, False),
    (["tenant=b*", "zone"], {"tenant": "beta"}, False),
    (["tenant=b*", "zone=eu-?"], {"tenant": "beta", "zone": "eu-1"}, True),
    (["empty="], {"empty": ""}, True),
])
def test_header_filter(conditions: list[str], headers: dict[str, str], ok: bool):
    assert tap.HeaderFilter(conditions).matches(headers) is ok


def test_a_channel_tap_sees_puts_and_nothing_else(tmp_path: Path):
    f = tmp_path / "a.conf"
    f.write_text(CONF.format(port=free_port()))
    topo, _ = config.check([str(f)], "a1")
    ch = topo.channels["c1"]
    ch.start()
    hub = tap.TapHub(lambda: topo)
    t = tap.Tap(hub.resolve(["channel:c1"]), rate=100)
    hub.attach(t)
    put_events(ch, [Event(b"one"), Event(b"two")])
    assert [s["size"] for s in t.drain(1)] == [3, 3]
    take_events(ch, 10)
    assert t.drain(0.1) == []
    hub.detach(t)
    assert ch.tap is None
    ch.stop()
