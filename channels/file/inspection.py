"""Read-only inspection of a file channel's directories, for ``agent file-channel``: nothing is locked or changed,
so it may run next to a live channel (it then sees the state of the last checkpoint and the log so far)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from channels.file.checkpoint import CHECKPOINT_NAME, read_checkpoint
from channels.file.records import PUTS, Damage, scan_segment, segment_number
from channels.file.replay import ReplayState

__all__ = ["SegmentSurvey", "LogSurvey", "survey"]


@dataclass
class SegmentSurvey:
    """One log segment: its size, its valid records by type, and every stretch that could not be read."""

    path: Path
    size: int
    records: int = 0
    puts: int = 0
    takes: int = 0
    damage: list[Damage] = field(default_factory=list)


@dataclass
class LogSurvey:
    """A file channel's checkpoint and log as they are on disk."""

    checkpoint_path: Path
    checkpoint: dict | None  # the checkpoint's state, None if missing or damaged
    checkpoint_error: str | None  # why a checkpoint that exists could not be read
    segments: list[SegmentSurvey]
    queue_depth: int  # events committed and not taken
    oldest_ms: int | None  # commit time of the oldest queued event

    @property
    def damaged(self) -> int:
        return sum(len(s.damage) for s in self.segments)


def survey(checkpoint_dir: Path, data_dirs: Sequence[Path]) -> LogSurvey:
    """Read the checkpoint and every record of every segment; FileNotFoundError if a data directory is missing."""
    checkpoint_dir = Path(checkpoint_dir)
    segments: dict[int, Path] = {}
    for d in map(Path, data_dirs):
        if not d.is_dir():
            raise FileNotFoundError(f"data directory {d} does not exist")
        for p in d.iterdir():
            n = segment_number(p.name)
            if n is not None:
                segments[n] = p
    error = None
    try:
        checkpoint = read_checkpoint(checkpoint_dir)
    except ValueError as exc:
        error, checkpoint = str(exc), None
    state = ReplayState(checkpoint, 0)
    found = [_survey_segment(number, path, state) for number, path in sorted(segments.items())]
    oldest = None
    for first, rec in sorted(state.recs.items()):
        if state.live.count_in(first, first + rec.count):
            oldest = rec.time_ms
            break
    return LogSurvey(checkpoint_dir / CHECKPOINT_NAME, checkpoint, error, found, state.live.count, oldest)


def _survey_segment(number: int, path: Path, state: ReplayState) -> SegmentSurvey:
    """Check every record of one segment, applying those after the checkpoint to ``state``."""
    seg = SegmentSurvey(path, path.stat().st_size)
    for item in scan_segment(path, number, 0):
        if isinstance(item, Damage):
            seg.damage.append(item)
            continue
        seg.records += 1
        if item.rtype in PUTS:
            seg.puts += 1
        else:
            seg.takes += 1
        if state.after_checkpoint(item):
            state.apply(item)
    return seg
