"""``hdfs://`` paths over HDFS's own RPC and data transfer protocols, through the ``hdfs-native`` client."""

from __future__ import annotations

import os
import queue
import threading
import time

from agent.kerberos import Identity, KerberosLoginError, Login
from agent.kerberos import login as kerberos_login
from agent.kerberos import release as release_login
from sinks.hdfs.fs.base import FileSystem

__all__ = ["NativeHdfsFileSystem"]

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

    def __init__(self, authority: str, user: str | None, timeout: float, kerberos: Identity | None = None):
        if user:
            # the client reads the simple-auth user (with Kerberos: the user to impersonate) from the environment
            var = "HADOOP_PROXY_USER" if kerberos else "HADOOP_USER_NAME"
            with _USER_LOCK:
                if _PROCESS_USER and _PROCESS_USER[0] != user:
                    raise ValueError(f"another hdfs sink of this agent writes over RPC as '{_PROCESS_USER[0]}'; one "
                                     f"process has one RPC user, so give this sink hdfs.transport = webhdfs")
                _PROCESS_USER[:] = [user]
                os.environ[var] = user
        self.url = f"hdfs://{authority}" if authority else None
        self.timeout = timeout
        self.kerberos = kerberos
        self._login: Login | None = None
        self._writers: dict[str, object] = {}  # in-use path -> open hdfs_native FileWriter
        self._lock = threading.Lock()  # guards _writers and the client: the closer threads call in too
        self._workers = threading.local()  # per calling thread: the worker that makes its calls (callTimeout)
        self._client: object | None = None  # made on first use: with Kerberos, after the login

    @property
    def client(self):  # noqa: ANN201 - hdfs_native.Client
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = self._new_client()
                    except KerberosLoginError as exc:
                        raise OSError(f"HDFS at {self.url or 'fs.defaultFS'}: {exc}") from None
        return self._client

    def _new_client(self):  # noqa: ANN202 - hdfs_native.Client
        from hdfs_native import Client

        if self.kerberos is None:
            return Client(self.url, config_dir=os.environ.get("HADOOP_CONF_DIR"))
        # the client refreshes its tickets from the keytab into the login's private cache when they run out
        return Client(self.url, config_dir=os.environ.get("HADOOP_CONF_DIR"),
                      kerberos_principal=self.kerberos.principal, kerberos_keytab=self.kerberos.keytab,
                      kerberos_cache=self._ensure_login())

    def _ensure_login(self) -> str:
        """The Kerberos login's cache, logging in first when needed (KerberosLoginError while it fails)."""
        if self._login is None:
            self._login = kerberos_login(self.kerberos)  # type: ignore[arg-type]
        return self._login.ensure()

    def shutdown(self) -> None:
        if self._login is not None:
            release_login(self._login)
            self._login = None

    def _reset(self, client: object) -> None:
        """A call outlived hdfs.callTimeout: the client may be wedged (a pipeline recovery waiting on a namenode
        that went away), so later calls get a new client; the old one's open files are recovered by lease."""
        with self._lock:
            if self._client is client:
                self._client = None  # made again by the next call
                self._writers.clear()

    def _call(self, what: str, path: str, fn, *args):  # noqa: ANN001, ANN202 - thin wrapper
        """``fn(*args)`` on this thread's worker, at most hdfs.callTimeout; errors become one-line OSErrors."""
        if self.kerberos is not None:
            try:
                self._ensure_login()
            except KerberosLoginError as exc:
                raise OSError(f"HDFS {what} {path}: {exc}") from None
        worker = getattr(self._workers, "w", None)
        if worker is None:
            worker = self._workers.w = _CallWorker()
        client = self._client
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
        who = f" as {self.kerberos.principal} (Kerberos)" if self.kerberos else ""
        return f"HDFS at {self.url or 'fs.defaultFS'} over RPC (hdfs-native){who}"


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
