"""``agent graph``: the topology as text and as Graphviz DOT, built the way the agent builds it."""

from __future__ import annotations

from pathlib import Path

from agent import config
from agent.graph import dot, main, text

ROOT = Path(__file__).resolve().parents[3]


def topology(name: str, agent: str):
    topo, problems = config.build(config.plan(config.load([ROOT / "conf" / name]), agent))
    assert topo is not None
    return topo


def test_text_shows_interceptors_selector_groups_and_sinks() -> None:
    out = text(topology("routing.conf", "a1"))
    assert "source r1 (seq)" in out
    assert "interceptors: dc (static)" in out
    assert "selector: multiplexing on header 'datacenter'" in out
    assert "sink group g_west (failover): k_west1, k_west2" in out
    assert "  sink k_east (logger) ← channel east" in out


def test_dot_has_every_edge() -> None:
    out = dot(topology("avro-collector.conf", "collector"))
    assert out.startswith('digraph "collector" {') and out.endswith("}")
    for edge in ('"source:r1" -> "interceptor:r1.host"', '"interceptor:r1.ts" -> "channel:c1"',
                 '"channel:c1" -> "sink:k1"', '"channel:c1" -> "sink:k2"'):
        assert edge in out
    assert 'subgraph "cluster_g1"' in out


def test_invalid_file_prints_problems_and_fails(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("a1.sources = r1\na1.channels = c1\na1.sources.r1.type = nope\na1.sources.r1.channels = c1\n"
                   "a1.channels.c1.type = memory\n")
    assert main(["-f", str(bad), "-n", "a1"]) == 1
    assert "unknown source type 'nope'" in capsys.readouterr().out
