"""What the hdfs sink writes and where: file systems (local, HDFS over its own RPC, WebHDFS) and file formats
(DataStream, CompressedStream, SequenceFile), each producing exactly the bytes Hadoop's own readers expect.

A file system's ``append`` returns only when the bytes are durable: the local one fdatasyncs, HDFS over RPC hsyncs
the open block pipeline (every datanode in it has the bytes on disk), WebHDFS completes an APPEND call (the
datanode pipeline has the data before the call returns).
"""

from __future__ import annotations

import bz2
import getpass
import os
import queue
import struct
import threading
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["FileSystem", "LocalFileSystem", "NativeHdfsFileSystem", "WebHdfsFileSystem", "file_system_for",
           "Codec", "CODECS", "codec_for", "SequenceFileFormat"]


# --------------------------------------------------------------------------------------------------------------
# File systems


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

    def describe(self) -> str:
        return type(self).__name__


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


_USER_LOCK = threading.Lock()
_PROCESS_USER: list[str] = []  # the hdfs.proxyUser an RPC sink of this process exported as HADOOP_USER_NAME


def _short(exc: BaseException) -> str:
    """The first line of an error from the namenode (the client appends the Java stack trace)."""
    return str(exc).split("\n", 1)[0].strip()


class NativeHdfsFileSystem(FileSystem):
    """``hdfs://`` paths over HDFS's own protocols (namenode RPC, datanode data transfer) through ``hdfs-native``, a
    Rust client: no JVM, HA nameservices and ``fs.defaultFS`` from ``$HADOOP_CONF_DIR``. As in Flume, a file stays
    open while the sink writes it: each append goes down the block pipeline and is hsynced before it returns, so
    a batch costs a few milliseconds instead of a WebHDFS APPEND's reopen and close of the last block. The client
    renews the leases of open files and keeps idle pipelines alive with heartbeat packets."""

    def __init__(self, authority: str, user: str | None, timeout: float):
        if user:
            with _USER_LOCK:  # the client reads the simple-auth user from the environment when it connects
                if _PROCESS_USER and _PROCESS_USER[0] != user:
                    raise ValueError(f"another hdfs sink of this agent writes over RPC as '{_PROCESS_USER[0]}'; one "
                                     f"process has one RPC user, so give this sink hdfs.transport = webhdfs")
                _PROCESS_USER[:] = [user]
                os.environ["HADOOP_USER_NAME"] = user
        self.url = f"hdfs://{authority}" if authority else None
        self.timeout = timeout
        self._writers: dict[str, object] = {}  # in-use path -> open hdfs_native FileWriter
        self._lock = threading.Lock()  # guards _writers and the client: the closer threads call in too
        self._workers = threading.local()  # per calling thread: the worker that makes its calls (callTimeout)
        self.client = self._new_client()

    def _new_client(self):  # noqa: ANN202 - hdfs_native.Client
        from hdfs_native import Client

        return Client(self.url, config_dir=os.environ.get("HADOOP_CONF_DIR"))

    def _reset(self, client: object) -> None:
        """A call outlived hdfs.callTimeout: the client may be wedged (a pipeline recovery waiting on a namenode
        that went away), so later calls get a new client; the old one's open files are recovered by lease."""
        with self._lock:
            if self.client is client:
                self.client = self._new_client()
                self._writers.clear()

    def _call(self, what: str, path: str, fn, *args):  # noqa: ANN001, ANN202 - thin wrapper
        """``fn(*args)`` on this thread's worker, at most hdfs.callTimeout; errors become one-line OSErrors."""
        worker = getattr(self._workers, "w", None)
        if worker is None:
            worker = self._workers.w = _CallWorker()
        client = self.client
        try:
            return worker.call(fn, args, self.timeout)
        except TimeoutError:
            self._workers.w = None  # that worker is stuck in the call; the next call gets a fresh one
            self._reset(client)
            raise OSError(f"HDFS {what} {path}: no answer within {self.timeout * 1000:.0f} ms "
                          f"(hdfs.callTimeout)") from None
        except (FileNotFoundError, FileExistsError) as exc:
            raise type(exc)(f"{what} {path}: {_short(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - every client error becomes an OSError with a one-line message
            raise OSError(f"HDFS {what} {path}: {_short(exc)}") from None

    def create(self, path: str, data: bytes = b"") -> None:
        from hdfs_native import WriteOptions

        w = self._call("create", path, self.client.create, path, WriteOptions(overwrite=False))
        with self._lock:
            self._writers[path] = w
        if data:
            self.append(path, data)

    def append(self, path: str, data: bytes) -> None:
        with self._lock:
            w = self._writers.get(path)
        if w is None:  # a file this process did not create (or closed): reopen it for append
            w = self._call("append", path, self.client.append, path)
            with self._lock:
                self._writers[path] = w
        self._call("write", path, _write_and_hsync, w, data)

    def close(self, path: str) -> None:
        with self._lock:
            w = self._writers.pop(path, None)
        if w is None:
            return
        # a broken pipeline cannot complete the file; the sink then has its lease recovered before renaming it
        self._call("close", path, w.close)  # type: ignore[attr-defined]

    def recover_lease(self, path: str, wait: float = 0) -> bool:
        # starts block recovery on the namenode, which closes the file at the length the datanodes hold
        deadline = time.monotonic() + wait
        delay = 0.05
        while True:
            try:
                if self._call("recover lease", path, self.client.recover_lease, path):
                    return True
            except FileNotFoundError:
                return True
            except Exception:  # noqa: BLE001 - the namenode finishes it after the lease's hard limit anyway
                return False
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def rename(self, src: str, dst: str) -> None:
        if self.exists(dst):
            raise FileExistsError(f"{dst} already exists")
        self._call("rename", src, self.client.rename, src, dst)

    def exists(self, path: str) -> bool:
        try:
            self._call("stat", path, self.client.get_file_info, path)
        except FileNotFoundError:
            return False
        return True

    def list(self, directory: str) -> list[str]:
        try:
            client = self.client
            statuses = self._call("list", directory, lambda: list(client.list_status(directory)))
            return [st.path.rsplit("/", 1)[-1] for st in statuses]
        except FileNotFoundError:
            return []

    def mkdirs(self, directory: str) -> None:
        self._call("mkdirs", directory, self.client.mkdirs, directory, 0o755, True)

    def read(self, path: str) -> bytes:
        reader = self._call("open", path, self.client.read, path)
        try:
            return self._call("read", path, reader.read)
        finally:
            reader.close()

    def delete(self, path: str) -> None:
        self._call("delete", path, self.client.delete, path)

    def describe(self) -> str:
        return f"HDFS at {self.url or 'fs.defaultFS'} over RPC (hdfs-native)"


def _write_and_hsync(writer, data: bytes) -> None:  # noqa: ANN001 - an hdfs_native FileWriter
    writer.write(data)
    writer.hsync()


class _CallWorker:
    """A daemon thread that makes one blocking call at a time for its caller, so the caller can give up after a
    timeout (Flume's hdfs.callTimeout); a worker whose call never returns is abandoned, never joined."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="hdfs-call", daemon=True).start()

    def _run(self) -> None:
        while True:
            fn, args, box, done = self._jobs.get()
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box.append((False, exc))
            done.set()

    def call(self, fn, args: tuple, timeout: float):  # noqa: ANN001, ANN201
        box: list = []
        done = threading.Event()
        self._jobs.put((fn, args, box, done))
        if not done.wait(timeout):
            raise TimeoutError
        ok, value = box[0]
        if ok:
            return value
        raise value


class WebHdfsFileSystem(FileSystem):
    """HDFS through the namenode's WebHDFS REST API (the ``hdfs`` package); HA: several namenode addresses."""

    def __init__(self, urls: list[str], user: str | None, timeout: float):
        from hdfs import InsecureClient

        self.urls = urls
        self.user = user or _hadoop_user()
        self.timeout = timeout
        self.client = InsecureClient(";".join(urls), user=self.user, timeout=timeout)
        self._append_at: dict[str, str] = {}  # path -> the datanode URL the namenode redirected its appends to
        self._session = None

    def create(self, path: str, data: bytes = b"") -> None:
        self.client.write(path, data=data, overwrite=False)

    def append(self, path: str, data: bytes) -> None:
        """APPEND straight to the datanode the namenode chose for this file's first append: the redirect is the
        same for every append while the file is open (no token without security), and skipping the namenode hop
        saves about 5 ms per batch. Any failure forgets the location, so the next try asks the namenode again."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        url = self._append_at.get(path)
        try:
            if url is None:
                url = self._locate_append(path)
            r = self._session.post(url, data=data, timeout=self.timeout,
                                   headers={"Content-Type": "application/octet-stream"})
            if r.status_code != 200:
                raise OSError(f"WebHDFS APPEND {path}: HTTP {r.status_code}: {r.text[:300]}")
        except Exception:
            self._append_at.pop(path, None)
            raise
        self._append_at[path] = url

    def _locate_append(self, path: str) -> str:
        from urllib.parse import quote

        last: Exception | None = None
        for base in self.urls:  # HA: the standby answers with an error, try the next namenode
            try:
                r = self._session.post(  # type: ignore[union-attr]
                    f"{base.rstrip('/')}/webhdfs/v1{quote(path)}",
                    params={"op": "APPEND", "user.name": self.user, "noredirect": "true"}, timeout=self.timeout)
                if r.status_code == 200:
                    return r.json()["Location"]
                last = OSError(f"WebHDFS APPEND {path} at {base}: HTTP {r.status_code}: {r.text[:300]}")
            except (OSError, ValueError, KeyError) as exc:
                last = exc
        raise last or OSError(f"no namenode to append {path}")

    def close(self, path: str) -> None:
        self._append_at.pop(path, None)

    def rename(self, src: str, dst: str) -> None:
        if self.exists(dst):
            raise FileExistsError(f"{dst} already exists")
        self.client.rename(src, dst)

    def exists(self, path: str) -> bool:
        return self.client.status(path, strict=False) is not None

    def list(self, directory: str) -> list[str]:
        if self.client.status(directory, strict=False) is None:
            return []
        return self.client.list(directory)

    def mkdirs(self, directory: str) -> None:
        self.client.makedirs(directory)

    def read(self, path: str) -> bytes:
        with self.client.read(path) as r:
            return r.read()

    def delete(self, path: str) -> None:
        self.client.delete(path)

    def describe(self) -> str:
        return f"HDFS via WebHDFS at {', '.join(self.urls)}"


def _hadoop_user() -> str:
    return os.environ.get("HADOOP_USER_NAME") or getpass.getuser()


def _hadoop_conf() -> dict[str, str]:
    """Properties from $HADOOP_CONF_DIR/core-site.xml and hdfs-site.xml (later files win)."""
    props: dict[str, str] = {}
    conf_dir = os.environ.get("HADOOP_CONF_DIR")
    if not conf_dir:
        return props
    for name in ("core-site.xml", "hdfs-site.xml"):
        path = Path(conf_dir) / name
        if not path.exists():
            continue
        for prop in ET.parse(path).getroot().iter("property"):
            key, value = prop.findtext("name"), prop.findtext("value")
            if key and value is not None:
                props[key.strip()] = value.strip()
    return props


def namenode_http_addresses(authority: str, configured: list[str]) -> list[str]:
    """WebHDFS base URLs for ``hdfs://authority``: the sink's setting, else HADOOP_CONF_DIR (HA aware), else the
    authority's host on Hadoop 3's default HTTP port 9870."""
    if configured:
        return [a if "://" in a else f"http://{a}" for a in configured]
    props = _hadoop_conf()
    host = authority.split(":")[0]
    namenodes = props.get(f"dfs.ha.namenodes.{host}")
    if namenodes:
        urls = []
        for nn in namenodes.split(","):
            addr = props.get(f"dfs.namenode.http-address.{host}.{nn.strip()}")
            if addr:
                urls.append(f"http://{addr}")
        if urls:
            return urls
    addr = props.get("dfs.namenode.http-address")
    if addr and not addr.startswith("0.0.0.0"):
        return [f"http://{addr}"]
    return [f"http://{host}:9870"]


def file_system_for(path: str, *, webhdfs: list[str], user: str | None, timeout: float,
                    transport: str = "rpc") -> tuple[FileSystem, str]:
    """The file system for ``hdfs.path`` and the path within it (escapes untouched); ``hdfs://`` paths use RPC unless
    ``transport`` is ``webhdfs``."""
    if "://" not in path:
        return LocalFileSystem(), path
    url = urlparse(path.replace("%{", "%7B").replace("%[", "%5B"))
    rest = path.split("://", 1)[1]
    within = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if url.scheme == "file":
        return LocalFileSystem(), within
    if url.scheme == "hdfs" and transport == "rpc":
        return NativeHdfsFileSystem(url.netloc, user, timeout), within
    if url.scheme == "hdfs":
        return WebHdfsFileSystem(namenode_http_addresses(url.netloc, webhdfs), user, timeout), within
    if url.scheme in ("webhdfs", "http"):
        return WebHdfsFileSystem([f"http://{url.netloc}"], user, timeout), within
    raise ValueError(f"unsupported file system '{url.scheme}://' (use hdfs://, webhdfs:// or file://)")


# --------------------------------------------------------------------------------------------------------------
# Compression codecs, in the stream formats Hadoop's codecs read


class Codec:
    """One Hadoop codec: ``compress(data)`` returns a self-contained piece; pieces concatenate into a valid file."""

    name = ""
    hadoop_class = ""
    extension = ""

    def compress(self, data: bytes) -> bytes:
        raise NotImplementedError


class GzipCodec(Codec):
    name, hadoop_class, extension = "gzip", "org.apache.hadoop.io.compress.GzipCodec", ".gz"

    def compress(self, data: bytes) -> bytes:
        c = zlib.compressobj(6, zlib.DEFLATED, 31)  # one gzip member per batch, as Flume's finish() makes
        return c.compress(data) + c.flush()


class DefaultCodec(Codec):
    name, hadoop_class, extension = "default", "org.apache.hadoop.io.compress.DefaultCodec", ".deflate"

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, 6)


class BZip2Codec(Codec):
    name, hadoop_class, extension = "bzip2", "org.apache.hadoop.io.compress.BZip2Codec", ".bz2"

    def compress(self, data: bytes) -> bytes:
        return bz2.compress(data, 9)


class _BlockCodec(Codec):
    """Hadoop's BlockCompressorStream framing: per block, the uncompressed length, then length-prefixed chunks."""

    chunk = 64 * 1024

    def _raw(self, data: bytes) -> bytes:
        raise NotImplementedError

    def compress(self, data: bytes) -> bytes:
        out = []
        for i in range(0, len(data), self.chunk):
            piece = data[i:i + self.chunk]
            packed = self._raw(piece)
            out.append(struct.pack(">II", len(piece), len(packed)))
            out.append(packed)
        return b"".join(out)


class SnappyCodec(_BlockCodec):
    name, hadoop_class, extension = "snappy", "org.apache.hadoop.io.compress.SnappyCodec", ".snappy"

    def _raw(self, data: bytes) -> bytes:
        import cramjam

        return bytes(cramjam.snappy.compress_raw(data))


class Lz4Codec(_BlockCodec):
    name, hadoop_class, extension = "lz4", "org.apache.hadoop.io.compress.Lz4Codec", ".lz4"

    def _raw(self, data: bytes) -> bytes:
        import cramjam

        return bytes(cramjam.lz4.compress_block(data, store_size=False))


class ZStandardCodec(Codec):
    name, hadoop_class, extension = "zstandard", "org.apache.hadoop.io.compress.ZStandardCodec", ".zst"

    def compress(self, data: bytes) -> bytes:
        import cramjam

        return bytes(cramjam.zstd.compress(data, level=3))


CODECS: dict[str, type[Codec]] = {c.name: c for c in (GzipCodec, DefaultCodec, BZip2Codec, SnappyCodec, Lz4Codec,
                                                      ZStandardCodec)}
UNSUPPORTED = {"lzo", "lzop"}


def codec_for(text: str) -> Codec | None:
    """Flume's codec lookup: Hadoop class name, simple name, or name without "Codec", any case; None for none."""
    low = text.strip().lower()
    if low in ("", "none"):
        return None
    for cls in CODECS.values():
        simple = cls.hadoop_class.rsplit(".", 1)[1].lower()
        if low in (cls.name, cls.hadoop_class.lower(), simple, simple.removesuffix("codec")):
            return cls()
    if low.removesuffix("codec") in UNSUPPORTED or "lzo" in low:
        raise ValueError(f"codec '{text}' (LZO, GPL-licensed) is not supported; use gzip, bzip2, snappy, lz4, "
                         f"zstandard or default")
    raise ValueError(f"unknown codec '{text}'; expected one of {', '.join(CODECS)} (or a Hadoop codec class name)")


# --------------------------------------------------------------------------------------------------------------
# SequenceFile


def _vint(n: int) -> bytes:
    """Hadoop's WritableUtils.writeVLong."""
    if -112 <= n <= 127:
        return struct.pack(">b", n)
    length = -112
    if n < 0:
        n = ~n
        length = -120
    tmp = n
    while tmp:
        tmp >>= 8
        length -= 1
    out = [struct.pack(">b", length)]
    nbytes = -(length + 120) if length < -120 else -(length + 112)
    for idx in range(nbytes, 0, -1):
        out.append(bytes([(n >> ((idx - 1) * 8)) & 0xFF]))
    return b"".join(out)


def _text(s: str) -> bytes:
    b = s.encode()
    return _vint(len(b)) + b


class SequenceFileFormat:
    """Hadoop SequenceFile version 6: key LongWritable (the timestamp header, else now), value BytesWritable
    (``writeFormat = Writable``) or Text (``Text``), as Flume's HDFSWritableSerializer and HDFSTextSerializer write
    them. ``compression``: None, "RECORD" (each value compressed) or "BLOCK" (one compressed block per batch, as
    Hadoop's BlockCompressWriter writes at each hflush). Uncompressed and record files get a sync marker about every
    100 KB; block files before every block, as Hadoop's writers do."""

    SYNC_INTERVAL = 100 * 1024

    def __init__(self, write_format: str, codec: Codec | None = None, compression: str | None = None):
        self.text = write_format.lower() == "text"
        self.codec = codec if compression else None
        self.block = bool(self.codec) and compression == "BLOCK"
        self.sync = os.urandom(16)
        self.since_sync = 0

    def header(self) -> bytes:
        value_class = "org.apache.hadoop.io.Text" if self.text else "org.apache.hadoop.io.BytesWritable"
        out = b"SEQ\x06" + _text("org.apache.hadoop.io.LongWritable") + _text(value_class)
        if self.codec is not None:
            out += b"\x01" + (b"\x01" if self.block else b"\x00") + _text(self.codec.hadoop_class)
        else:
            out += b"\x00\x00"
        return out + struct.pack(">i", 0) + self.sync

    def _kv(self, events: list) -> tuple[list[bytes], list[bytes]]:
        now = int(time.time() * 1000)
        pack = struct.pack
        keys, values = [], []
        for e in events:
            ts = e.headers.get("timestamp") if e.headers else None
            try:
                keys.append(pack(">q", int(ts) if ts is not None else now))
            except ValueError:
                keys.append(pack(">q", now))
            body = e.body
            values.append((_vint(len(body)) + body) if self.text else pack(">i", len(body)) + body)
        return keys, values

    def encode(self, events: list) -> bytes:
        keys, values = self._kv(events)
        if self.block:
            assert self.codec is not None
            c = self.codec.compress
            parts = [b"\xff\xff\xff\xff", self.sync, _vint(len(keys))]
            for buf in (b"".join(_vint(len(k)) for k in keys), b"".join(keys),
                        b"".join(_vint(len(v)) for v in values), b"".join(values)):
                packed = c(buf)
                parts.append(_vint(len(packed)))
                parts.append(packed)
            return b"".join(parts)
        if self.codec is not None:
            values = [self.codec.compress(v) for v in values]
        out = []
        pack = struct.pack
        since = self.since_sync
        for key, value in zip(keys, values, strict=True):
            if since >= self.SYNC_INTERVAL:
                out.append(b"\xff\xff\xff\xff" + self.sync)
                since = 0
            record = pack(">ii", 8 + len(value), 8) + key + value
            out.append(record)
            since += len(record)
        self.since_sync = since
        return b"".join(out)
