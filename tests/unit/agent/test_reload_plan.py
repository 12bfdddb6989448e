"""Which components a hot reload takes over unchanged (``build(plan, reuse=running)``) and which it rebuilds."""

from __future__ import annotations

from pathlib import Path

from agent import config

BASE = """\
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1 k2 k3
a1.sinkgroups = g1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = i1
a1.sources.r1.interceptors.i1.type = timestamp
a1.sources.r2.type = seq
a1.sources.r2.channels = c2
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channel = c1
a1.sinks.k3.type = logger
a1.sinks.k3.channel = c2
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = failover
"""


def build(tmp_path: Path, text: str, reuse: config.Topology | None = None) -> config.Topology:
    f = tmp_path / "a.conf"
    f.write_text(text)
    topo, problems = config.check([str(f)], "a1", reuse=reuse)
    assert topo is not None, [str(p) for p in problems]
    return topo


def kept(old: config.Topology, new: config.Topology) -> set[str]:
    out = set()
    for kind in ("sources", "channels", "sinks", "groups"):
        for name, comp in getattr(new, kind).items():
            if getattr(old, kind).get(name) is comp:
                out.add(f"{kind}.{name}")
    return out


ALL = {"sources.r1", "sources.r2", "channels.c1", "channels.c2", "sinks.k1", "sinks.k2", "sinks.k3", "groups.g1",
       "groups.k3"}


def test_an_unchanged_file_keeps_everything_even_when_lines_move(tmp_path):
    old = build(tmp_path, BASE)
    assert kept(old, build(tmp_path, BASE, old)) == ALL
    moved = "# a comment shifts every line\n\n" + "\n".join(reversed(BASE.splitlines())) + "\n"
    assert kept(old, build(tmp_path, moved, old)) == ALL


def test_a_sink_change_rebuilds_that_sink_and_its_group_only(tmp_path):
    old = build(tmp_path, BASE)
    new = build(tmp_path, BASE + "a1.sinks.k2.batchSize = 10\n", old)
    assert kept(old, new) == ALL - {"sinks.k2", "groups.g1"}
    new = build(tmp_path, BASE + "a1.sinks.k3.maxBytesToLog = 8\n", old)
    assert kept(old, new) == ALL - {"sinks.k3", "groups.k3"}


def test_a_channel_change_rebuilds_everything_attached_to_it(tmp_path):
    old = build(tmp_path, BASE)
    new = build(tmp_path, BASE + "a1.channels.c1.capacity = 1000\n", old)
    assert kept(old, new) == {"sources.r2", "channels.c2", "sinks.k3", "groups.k3"}


def test_an_interceptor_or_group_change_rebuilds_only_its_owner(tmp_path):
    old = build(tmp_path, BASE)
    new = build(tmp_path, BASE.replace("i1.type = timestamp", "i1.type = host"), old)
    assert kept(old, new) == ALL - {"sources.r1"}
    new = build(tmp_path, BASE + "a1.sinkgroups.g1.processor.maxpenalty = 1000\n", old)
    assert kept(old, new) == ALL - {"groups.g1"}


def test_removed_and_added_components(tmp_path):
    old = build(tmp_path, BASE)
    text = BASE.replace("a1.sources = r1 r2", "a1.sources = r1 r3") + "a1.sources.r3.type = seq\n" \
        "a1.sources.r3.channels = c2\n"
    new = build(tmp_path, text, old)
    assert "sources.r3" not in kept(old, new) and "r2" not in new.sources
    assert kept(old, new) == ALL - {"sources.r2"}
