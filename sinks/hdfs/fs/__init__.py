"""The file systems the hdfs sink writes to, one module per transport: local (``file://``), HDFS RPC
(``hdfs://``, hdfs-native) and WebHDFS; ``file_system_for`` picks one for ``hdfs.path``."""

from __future__ import annotations

from urllib.parse import urlparse

from agent.kerberos import Identity
from sinks.hdfs.fs.base import FileSystem
from sinks.hdfs.fs.local import LocalFileSystem
from sinks.hdfs.fs.rpc import NativeHdfsFileSystem
from sinks.hdfs.fs.webhdfs import WebHdfsFileSystem, namenode_http_addresses

__all__ = ["FileSystem", "LocalFileSystem", "NativeHdfsFileSystem", "WebHdfsFileSystem", "file_system_for",
           "namenode_http_addresses"]


def file_system_for(path: str, *, webhdfs: list[str], user: str | None, timeout: float,
                    transport: str = "rpc", kerberos: Identity | None = None) -> tuple[FileSystem, str]:
    """The file system for ``hdfs.path`` and the path within it (escapes untouched); ``hdfs://`` paths use RPC unless
    ``transport`` is ``webhdfs``. With ``kerberos`` the HDFS transports log in as that principal (``user`` is then
    the user to impersonate, Flume's proxyUser)."""
    if "://" not in path:
        return LocalFileSystem(), path
    url = urlparse(path.replace("%{", "%7B").replace("%[", "%5B"))
    rest = path.split("://", 1)[1]
    within = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if url.scheme == "file":
        return LocalFileSystem(), within
    if url.scheme == "hdfs" and transport == "rpc":
        return NativeHdfsFileSystem(url.netloc, user, timeout, kerberos), within
    if url.scheme == "hdfs":
        return WebHdfsFileSystem(namenode_http_addresses(url.netloc, webhdfs), user, timeout, kerberos), within
    if url.scheme in ("webhdfs", "http"):
        return WebHdfsFileSystem([f"http://{url.netloc}"], user, timeout, kerberos), within
    if url.scheme in ("swebhdfs", "https"):  # WebHDFS over TLS (trust: the system's CAs or $REQUESTS_CA_BUNDLE)
        return WebHdfsFileSystem([f"https://{url.netloc}"], user, timeout, kerberos), within
    raise ValueError(f"unsupported file system '{url.scheme}://' (use hdfs://, webhdfs://, swebhdfs:// or file://)")
