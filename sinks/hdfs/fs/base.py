"""What the hdfs sink needs from a file system. Paths are absolute strings within the file system.

A file system's ``append`` returns only when the bytes are durable: the local one fdatasyncs, HDFS over RPC hsyncs
the open block pipeline (every datanode in it has the bytes on disk), WebHDFS completes an APPEND call (the
datanode pipeline has the data before the call returns).
"""

from __future__ import annotations

__all__ = ["FileSystem"]


class FileSystem:
    """The operations the sink needs. Paths are absolute strings within the file system."""

    def create(self, path: str, data: bytes = b"") -> None:
        raise NotImplementedError

    def append(self, path: str, data: bytes) -> None:
        raise NotImplementedError

    def close(self, path: str) -> None:
        """The sink is done appending to ``path`` (release any handle)."""

    def recover_lease(self, path: str, wait: float = 0) -> bool:
        """``path`` may have been left open by a writer that is gone: have it closed (HDFS: lease recovery), waiting
        up to ``wait`` seconds for that; True once it is closed."""
        return True

    def rename(self, src: str, dst: str) -> None:
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def list(self, directory: str) -> list[str]:
        """Names in ``directory``; [] when it does not exist."""
        raise NotImplementedError

    def mkdirs(self, directory: str) -> None:
        raise NotImplementedError

    def read(self, path: str) -> bytes:
        raise NotImplementedError

    def delete(self, path: str) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        """The sink stopped: release what the file system holds for it (a Kerberos login)."""

    def describe(self) -> str:
        return type(self).__name__
