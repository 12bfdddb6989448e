"""The file systems the hdfs sink writes to, one module per transport: local (``file://``), HDFS RPC
(``hdfs://``, hdfs-native) and WebHDFS; ``file_system_for`` picks one for ``hdfs.path``."""

from __future__ import annotations

from urllib.parse import urlparse

from agent.kerberos import Identity
from sinks.hdfs.fs.base import FileSystem
from sinks.hdfs.fs.local import LocalFileSystem
from sinks.hdfs.fs.rpc import NativeHdfsFileSystem
from sinks.hdfs.fs.webhdfs import WebHdfsFileSystem, hadoop_conf, hadoop_user, namenode_http_addresses

__all__ = ["FileSystem", "LocalFileSystem", "NativeHdfsFileSystem", "WebHdfsFileSystem", "file_system_for",
           "namenode_http_addresses"]


def file_system_for(path: str, *, webhdfs: list[str], user: str | None, timeout: float,
                    transport: str = "rpc", kerberos: Identity | None = None) -> tuple[FileSystem, str]:
    """The file system for ``hdfs.path`` and the path within it (escapes untouched); ``hdfs://`` paths use RPC unless
    ``transport`` is ``webhdfs``. As Hadoop's ``Path`` does, a path without a scheme is on ``fs.defaultFS`` of
    $HADOOP_CONF_DIR (the local file system without one), and ``hdfs://host`` without a port is the namenode's RPC
    port 8020 unless ``host`` is an HA nameservice of that configuration. With ``kerberos`` the HDFS transports log
    in as that principal (``user`` is then the user to impersonate, Flume's proxyUser)."""
    if "://" not in path:
        props = hadoop_conf()
        default_fs = props.get("fs.defaultFS") or props.get("fs.default.name") or "file:///"
        if default_fs.startswith("file:"):
            return LocalFileSystem(), path
        if not path.startswith("/"):  # Hadoop resolves a relative path against the user's home directory
            path = f"/user/{user or hadoop_user()}/{path}"
        path = default_fs.rstrip("/") + path
    url = urlparse(path.replace("%{", "%7B").replace("%[", "%5B"))
    rest = path.split("://", 1)[1]
    within = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if url.scheme == "file":
        return LocalFileSystem(), within
    if url.scheme == "hdfs" and transport == "rpc":
        return NativeHdfsFileSystem(_with_rpc_port(url.netloc), user, timeout, kerberos), within
    if url.scheme == "hdfs":
        return WebHdfsFileSystem(namenode_http_addresses(url.netloc, webhdfs), user, timeout, kerberos), within
    if url.scheme in ("webhdfs", "http"):
        return WebHdfsFileSystem([f"http://{url.netloc}"], user, timeout, kerberos), within
    if url.scheme in ("swebhdfs", "https"):  # WebHDFS over TLS (trust: the system's CAs or $REQUESTS_CA_BUNDLE)
        return WebHdfsFileSystem([f"https://{url.netloc}"], user, timeout, kerberos), within
    raise ValueError(f"unsupported file system '{url.scheme}://' (use hdfs://, webhdfs://, swebhdfs:// or file://)")


def _with_rpc_port(authority: str) -> str:
    """``host`` → ``host:8020`` (Hadoop's default namenode RPC port), except an HA nameservice named in
    $HADOOP_CONF_DIR, which the client resolves to its namenodes itself; empty is ``fs.defaultFS``'s."""
    props = hadoop_conf()
    if not authority:
        default_fs = props.get("fs.defaultFS") or props.get("fs.default.name") or ""
        if not default_fs.startswith("hdfs://") or not default_fs[7:].strip("/"):
            raise ValueError("hdfs:/// names no namenode and $HADOOP_CONF_DIR has no hdfs:// fs.defaultFS; write "
                             "hdfs://host:port/path")
        authority = default_fs[7:].split("/", 1)[0]
    if authority.rsplit("]", 1)[-1].count(":"):
        return authority
    nameservices = {n.strip() for n in props.get("dfs.nameservices", "").split(",")}
    if authority in nameservices or f"dfs.ha.namenodes.{authority}" in props:
        return authority
    return f"{authority}:8020"
