"""``hdfs://`` (with ``hdfs.transport = webhdfs``) and ``webhdfs://`` paths over the namenode's WebHDFS REST API,
and where to find the namenodes' HTTP addresses."""

from __future__ import annotations

import getpass
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from agent.kerberos import Identity, KerberosLoginError, Login
from sinks.hdfs.fs.base import FileSystem

__all__ = ["WebHdfsFileSystem", "namenode_http_addresses"]


class WebHdfsFileSystem(FileSystem):
    """HDFS through the namenode's WebHDFS REST API (the ``hdfs`` package); HA: several namenode addresses. With
    Kerberos every request authenticates with SPNEGO as the login's principal (``requests-gssapi``; the service
    principal is ``HTTP/<host of the URL>``, so name the namenode by the host name its principal has), appends go to
    the datanode with the delegation token the namenode put in the redirect, and ``user`` becomes ``doas``."""

    def __init__(self, urls: list[str], user: str | None, timeout: float, kerberos: Identity | None = None):
        self.urls = urls
        self.kerberos = kerberos
        self.user = user if kerberos else (user or hadoop_user())
        self.timeout = timeout
        self._client: object | None = None  # made on first use: with Kerberos, after the login
        self._append_at: dict[str, str] = {}  # path -> the datanode URL the namenode redirected its appends to
        self._session = None
        self._login: Login | None = None
        self._creds_of = -1  # the login's renewal count the SPNEGO credentials were made for

    @property
    def client(self):  # noqa: ANN201 - an hdfs.Client
        if self.kerberos is not None:
            self._authenticate()
        if self._client is None:
            from hdfs import Client, InsecureClient

            if self.kerberos is None:
                self._client = InsecureClient(";".join(self.urls), user=self.user, timeout=self.timeout)
            else:
                self._client = Client(";".join(self.urls), timeout=self.timeout, session=self._http())
        return self._client

    def _http(self):  # noqa: ANN202 - a requests.Session
        if self._session is None:
            import requests

            self._session = requests.Session()
            if self.kerberos is not None and self.user:
                self._session.params = {"doas": self.user}
        return self._session

    def _authenticate(self) -> None:
        """Log in (or notice a renewal) and give the session SPNEGO credentials from the login's cache."""
        from agent.kerberos import login

        if self._login is None:
            self._login = login(self.kerberos)  # type: ignore[arg-type]
        try:
            ccache = self._login.ensure()
        except KerberosLoginError as exc:
            raise OSError(f"WebHDFS at {', '.join(self.urls)}: {exc}") from None
        if self._creds_of != self._login.renewals:
            import gssapi
            from requests_gssapi import HTTPSPNEGOAuth

            name = gssapi.Name(self._login.principal, gssapi.NameType.kerberos_principal)
            creds = gssapi.Credentials(name=name, usage="initiate",
                                       store={"ccache": ccache, "client_keytab": self._login.keytab})
            self._http().auth = HTTPSPNEGOAuth(creds=creds)
            self._creds_of = self._login.renewals

    def shutdown(self) -> None:
        if self._login is not None:
            from agent.kerberos import release

            release(self._login)
            self._login = None

    def create(self, path: str, data: bytes = b"") -> None:
        self.client.write(path, data=data, overwrite=False)

    def append(self, path: str, data: bytes) -> None:
        """APPEND straight to the datanode the namenode chose for this file's first append: the redirect is the
        same for every append while the file is open (no token without security), and skipping the namenode hop
        saves about 5 ms per batch. Any failure forgets the location, so the next try asks the namenode again."""
        if self.kerberos is not None:
            self._authenticate()
        session = self._http()
        url = self._append_at.get(path)
        try:
            if url is None:
                url = self._locate_append(path)
            r = session.post(url, data=data, timeout=self.timeout,
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
                params = {"op": "APPEND", "noredirect": "true"}
                if self.kerberos is None:
                    params["user.name"] = self.user
                r = self._http().post(f"{base.rstrip('/')}/webhdfs/v1{quote(path)}", params=params,
                                      timeout=self.timeout)
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
        who = f" as {self.kerberos.principal} (Kerberos, SPNEGO)" if self.kerberos else ""
        return f"HDFS via WebHDFS at {', '.join(self.urls)}{who}"


def hadoop_user() -> str:
    return os.environ.get("HADOOP_USER_NAME") or getpass.getuser()


def hadoop_conf() -> dict[str, str]:
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
    props = hadoop_conf()
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
