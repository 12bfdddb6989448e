"""``agent graph --conf-file F --name N [--dot]``: the topology an agent would run, as text or Graphviz DOT.

Sources → interceptors → selector → channels → sink groups → sinks, built exactly as the agent builds them (so
what it prints is what would run), without starting anything.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from agent import config
from agent.config import Topology

__all__ = ["text", "dot", "main"]


def _type(comp: object) -> str:
    return getattr(comp, "alias", None) or type(comp).__name__


def _routes(src: object) -> tuple[list[str], list[str], list[str]]:
    """(lines describing the selector, required channel names, optional channel names)."""
    cp = src.channel_processor  # type: ignore[attr-defined]
    sel = cp.selector
    kind = _type(sel)
    lines, required, optional = [], [], []
    if hasattr(sel, "mapping"):
        lines.append(f"selector: {kind} on header '{sel.header}'")
        for value, chans in sel.mapping.items():
            lines.append(f"  {value} → {', '.join(c.name for c in chans)}")
            required += [c.name for c in chans]
        for value, chans in sel.optional.items():
            lines.append(f"  {value} → optional {', '.join(c.name for c in chans)}")
            optional += [c.name for c in chans]
        if sel.default:
            lines.append(f"  (default) → {', '.join(c.name for c in sel.default)}")
            required += [c.name for c in sel.default]
    else:
        required = [c.name for c in sel.required]
        optional = [c.name for c in sel.optional]
        desc = ", ".join(required) + (f" (optional: {', '.join(optional)})" if optional else "")
        lines.append(f"selector: {kind} → {desc}")
    return lines, list(dict.fromkeys(required)), list(dict.fromkeys(optional))


def text(topo: Topology) -> str:
    out = [f"agent {topo.name}"]
    for name, src in topo.sources.items():
        out.append(f"  source {name} ({_type(src)})")
        cp = src.channel_processor
        if cp is not None:
            if cp.interceptors:
                out.append("    interceptors: " + " → ".join(f"{i.name} ({_type(i)})" for i in cp.interceptors))
            lines, _, _ = _routes(src)
            out += ["    " + line for line in lines]
    for name, ch in topo.channels.items():
        cap = f", capacity {ch.capacity}" if getattr(ch, "capacity", 0) else ""
        out.append(f"  channel {name} ({_type(ch)}{cap})")
    for name, proc in topo.groups.items():
        solo = len(proc.sinks) == 1 and proc.sinks[0].name == name and _type(proc) == "default"
        indent = "  " if solo else "    "
        if not solo:
            out.append(f"  sink group {name} ({_type(proc)}): {', '.join(s.name for s in proc.sinks)}")
        for s in proc.sinks:
            out.append(f"{indent}sink {s.name} ({_type(s)}) ← channel {s.channel.name if s.channel else '?'}")
    return "\n".join(out)


def _id(kind: str, name: str) -> str:
    return f'"{kind}:{name}"'


def dot(topo: Topology) -> str:
    out = [f'digraph "{topo.name}" {{', "  rankdir=LR;", "  node [fontname=Helvetica];"]
    for name, src in topo.sources.items():
        out.append(f'  {_id("source", name)} [shape=box, label="{name}\\n{_type(src)}"];')
    for name, ch in topo.channels.items():
        out.append(f'  {_id("channel", name)} [shape=cylinder, label="{name}\\n{_type(ch)}"];')
    for name, src in topo.sources.items():
        cp = src.channel_processor
        if cp is None:
            continue
        prev = _id("source", name)
        for i in cp.interceptors:
            node = _id("interceptor", f"{name}.{i.name}")
            out.append(f'  {node} [shape=ellipse, label="{i.name}\\n{_type(i)}"];')
            out.append(f"  {prev} -> {node};")
            prev = node
        _, required, optional = _routes(src)
        for c in required:
            out.append(f"  {prev} -> {_id('channel', c)};")
        for c in optional:
            out.append(f'  {prev} -> {_id("channel", c)} [style=dashed, label="optional"];')
    for gname, proc in topo.groups.items():
        out.append(f'  subgraph "cluster_{gname}" {{ label="{gname} ({_type(proc)})";')
        for s in proc.sinks:
            out.append(f'    {_id("sink", s.name)} [shape=box, label="{s.name}\\n{_type(s)}"];')
        out.append("  }")
        for s in proc.sinks:
            if s.channel is not None:
                out.append(f"  {_id('channel', s.channel.name)} -> {_id('sink', s.name)};")
    out.append("}")
    return "\n".join(out)


def main(argv: Sequence[str], prog: str = "agent graph") -> int:
    p = argparse.ArgumentParser(prog=prog, description="Print the topology an agent would run (nothing starts).")
    p.add_argument("-f", "--conf-file", required=True, action="append", help="properties file (repeatable)")
    p.add_argument("-n", "--name", required=True, help="agent name")
    p.add_argument("--dot", action="store_true", help="Graphviz DOT instead of text")
    args = p.parse_args(list(argv))
    cf = config.load(args.conf_file)
    topo, problems = config.build(config.plan(cf, args.name))
    errors = [x for x in problems if x.severity == "error"]
    if topo is None or errors:
        for x in errors:
            print(x)
        return 1
    print(dot(topo) if args.dot else text(topo))
    return 0
