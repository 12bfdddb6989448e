"""``agent file-channel``: what is in a pyflume file channel's directories (queue depth, log segments, oldest
event age, every record's checksum), read without locking or changing them."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main", "report"]


def main(argv: Sequence[str], prog: str = "agent file-channel") -> int:
    p = argparse.ArgumentParser(prog=prog, description="Inspect a pyflume file channel: queue depth, log segments, "
                                "oldest event age, and every record's checksum. Exit status 1 if damage is found.")
    p.add_argument("--checkpointDir", required=True, help="the channel's checkpointDir")
    p.add_argument("--dataDirs", required=True, help="the channel's dataDirs, comma-separated")
    args = p.parse_args(list(argv))
    dirs = [Path(d.strip()).expanduser() for d in args.dataDirs.split(",") if d.strip()]
    return report(Path(args.checkpointDir).expanduser(), dirs)


def report(checkpoint_dir: Path, data_dirs: Sequence[Path], out: Callable[[str], None] = print) -> int:
    """Print queue depth, segments, oldest event age and every record's checksum result; 0 if the log is sound."""
    from channels.file import survey

    try:
        found = survey(checkpoint_dir, data_dirs)
    except FileNotFoundError as exc:
        out(str(exc))
        return 1
    if found.checkpoint_error is not None:
        out(f"checkpoint: {found.checkpoint_error}")
    state = found.checkpoint
    if state:
        age = time.time() - state["time"] / 1000
        out(f"checkpoint: {found.checkpoint_path}, written {age:.0f} s ago, "
            f"log position segment {state['position'][0]} offset {state['position'][1]}")
    else:
        out("checkpoint: none (the whole log is replayed)")
    out(f"{'segment':<40} {'bytes':>12} {'records':>8} {'puts':>8} {'takes':>8}  checksums")
    for seg in found.segments:
        out(f"{str(seg.path):<40} {seg.size:>12} {seg.records:>8} {seg.puts:>8} {seg.takes:>8}  "
            f"{'ok' if not seg.damage else 'DAMAGED'}")
        for damage in seg.damage:
            out(f"  {damage}")
    out(f"queue depth: {found.queue_depth} events")
    if found.oldest_ms is not None:
        out(f"oldest queued event committed {time.time() - found.oldest_ms / 1000:.1f} s ago")
    damaged = found.damaged
    out("checksums: every record verified" if not damaged else f"checksums: {damaged} damaged stretches (see above)")
    return 1 if damaged else 0
