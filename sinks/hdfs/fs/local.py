"""``file://`` paths (and plain paths) on the local file system."""

from __future__ import annotations

import os

from sinks.hdfs.fs.base import FileSystem

__all__ = ["LocalFileSystem"]


class LocalFileSystem(FileSystem):
    """``file://`` paths (and plain paths): appends are written and fdatasynced before they return."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def create(self, path: str, data: bytes = b"") -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._fds[path] = fd
        if data:
            self.append(path, data)
        _fsync_dir(os.path.dirname(path))

    def append(self, path: str, data: bytes) -> None:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_WRONLY | os.O_APPEND)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fdatasync(fd)

    def close(self, path: str) -> None:
        fd = self._fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        self.close(src)
        if os.path.exists(dst):
            raise FileExistsError(f"{dst} already exists")
        os.rename(src, dst)
        _fsync_dir(os.path.dirname(dst))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def list(self, directory: str) -> list[str]:
        try:
            return os.listdir(directory)
        except FileNotFoundError:
            return []

    def mkdirs(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def delete(self, path: str) -> None:
        self.close(path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        _fsync_dir(os.path.dirname(path))

    def describe(self) -> str:
        return "local file system"


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
