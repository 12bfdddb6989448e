"""The file channel's directories: one channel at a time (a lock file), never an Apache Flume channel's, free space."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from agent.core import ChannelException

__all__ = ["lock_dir", "refuse_flume_dir", "free_bytes"]

_FLUME_MARKERS = ("checkpoint.meta", "inflightputs", "inflighttakes", "log-1.meta")


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def lock_dir(directory: Path, channel: str) -> int:
    """Lock ``directory`` for ``channel`` (``in_use.lock``, naming the holder); returns the lock's descriptor."""
    path = directory / "in_use.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
        os.close(fd)
        raise ChannelException(
            f"channel {channel}: directory {directory} is in use by another file channel ({holder or 'unknown'}; "
            f"lock file {path}). Two channels must not share directories: give each its own checkpointDir and "
            f"dataDirs"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}, channel {channel}\n".encode(), 0)
    return fd


def refuse_flume_dir(directory: Path) -> None:
    for m in _FLUME_MARKERS:
        if (directory / m).exists():
            raise ChannelException(
                f"{directory} holds an Apache Flume file channel ({m}); pyflume uses its own log format and "
                f"cannot read it. Drain that channel with Flume first, or give pyflume new directories"
            )
