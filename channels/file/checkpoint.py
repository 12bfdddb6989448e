"""The file channel's checkpoint: the queue's state written atomically, so a restart replays only the log after it.

The checkpoint (``pyflume-checkpoint`` in the checkpoint directory, and in the backup directory with
``useDualCheckpoints``) is JSON followed by a line with its CRC-32, written to a temporary file, fsynced and renamed
into place. Its fields: ``version`` (1), ``channel``, ``time`` (ms), ``next_seq``, ``position`` (segment and offset
the log is replayed from), ``ranges`` (the sequence numbers not yet taken for good), ``records`` (``[first, count,
segment, offset, length, time_ms]`` of each PUT record still holding such events) and ``segments`` (the segments
that existed).
"""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

__all__ = ["CHECKPOINT_NAME", "checkpoint_state", "write_checkpoint", "read_checkpoint", "fsync_dir"]

CHECKPOINT_NAME = "pyflume-checkpoint"


def checkpoint_state(channel: str, next_seq: int, position: tuple[int, int], ranges: list[tuple[int, int]],
                     records: list[list[int]], segments: list[int]) -> dict:
    """The checkpoint's content (the fields the module docstring lists), stamped with the current time."""
    return {
        "version": 1,
        "channel": channel,
        "time": int(time.time() * 1000),
        "next_seq": next_seq,
        "position": list(position),
        "ranges": ranges,
        "records": records,
        "segments": segments,
    }


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(directory: Path, state: dict) -> None:
    """Atomically replace ``directory/pyflume-checkpoint``: write a temporary file, fsync, rename, fsync dir."""
    text = json.dumps(state, separators=(",", ":"))
    data = f"{text}\n{zlib.crc32(text.encode()):08x}\n".encode()
    tmp = directory / (CHECKPOINT_NAME + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / CHECKPOINT_NAME)
    fsync_dir(directory)


def read_checkpoint(directory: Path) -> dict | None:
    """The checkpoint in ``directory``, None when there is none; ValueError when it is damaged."""
    path = directory / CHECKPOINT_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        text, crc, _ = raw.decode().split("\n")
        if int(crc, 16) != zlib.crc32(text.encode()):
            raise ValueError("checksum mismatch")
        state = json.loads(text)
        if state.get("version") != 1:
            raise ValueError(f"unknown checkpoint version {state.get('version')!r}")
        return state
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: damaged checkpoint ({exc})") from None
