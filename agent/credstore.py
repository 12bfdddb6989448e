"""Flume's ``hadoop`` config filter: secrets from a Hadoop credential store (made by ``hadoop credential create``).

Keys as Flume's HadoopCredentialStoreConfigFilter reads them: ``credential.provider.path`` (a comma-separated list of
providers; file stores ``jceks://file/<path>`` and ``localjceks://file/<path>`` are read here) and
``credstore.java-keystore-provider.password-file`` (a file holding the store password; Flume looks it up on the
classpath, pyflume takes it as a path, relative ones from the configuration file's directory). The store password is
Hadoop's: the environment variable ``HADOOP_CREDSTORE_PASSWORD``, else the password file, else Hadoop's default
``none``. A credential is the secret key of its alias (aliases are case-insensitive, as in a JCEKS store), decoded
as UTF-8.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from agent.keystores import KeyStore, StoreError, load_store, read_password_file

__all__ = ["PROVIDER_PATH", "PASSWORD_FILE", "FILTER_CLASS", "CredentialStores", "MissingStore",
           "open_credential_stores"]

PROVIDER_PATH = "credential.provider.path"
PASSWORD_FILE = "credstore.java-keystore-provider.password-file"
FILTER_CLASS = "org.apache.flume.configfilter.HadoopCredentialStoreConfigFilter"
_DEFAULT_PASSWORD = "none"  # Hadoop's AbstractJavaKeyStoreProvider.KEYSTORE_PASSWORD_DEFAULT


class MissingStore(StoreError):
    """A credential store file that is not on this machine (yet): the references stay as written."""


class CredentialStores:
    """The providers of one ``hadoop`` filter, asked in order as Hadoop's ``Configuration.getPassword`` does."""

    def __init__(self, stores: list[tuple[KeyStore, str]]):
        self._stores = stores

    def get(self, alias: str) -> str:
        """The secret of ``alias``; KeyError with a message naming the stores (never a secret) when none has it."""
        for store, password in self._stores:
            if alias.lower() in store.aliases:
                return store.secret_key(alias.lower(), password).decode("utf-8")
        where = ", ".join(f"{s.path} ({', '.join(s.aliases) or 'empty'})" for s, _ in self._stores)
        raise KeyError(f"no credential '{alias}' in {where}")


def open_credential_stores(provider_path: str, password_file: str | None, base_dir: Path,
                           environ: Mapping[str, str] = os.environ) -> CredentialStores:
    """Open every provider of ``provider_path``. StoreError names the provider and what is wrong; its ``prop``
    attribute says which filter property to blame."""
    password = environ.get("HADOOP_CREDSTORE_PASSWORD")
    if password is None and password_file:
        path = Path(password_file)
        try:
            password = read_password_file(path if path.is_absolute() or path.exists() else base_dir / path)
        except StoreError as exc:
            exc.prop = PASSWORD_FILE  # type: ignore[attr-defined]
            raise
    if password is None:
        password = _DEFAULT_PASSWORD
    stores = []
    for uri in (p.strip() for p in provider_path.split(",")):
        if not uri:
            continue
        parts = urlsplit(uri)
        if parts.scheme not in ("jceks", "localjceks") or parts.netloc != "file":
            err = StoreError(f"provider '{uri}' is not supported: pyflume reads file-based credential stores, "
                             "jceks://file/<path> or localjceks://file/<path>")
            err.prop = PROVIDER_PATH  # type: ignore[attr-defined]
            raise err
        if not os.path.isfile(unquote(parts.path)):
            err = MissingStore(f"{unquote(parts.path)} is not a file here: the references to this filter stay as "
                               "written until it is")
            err.prop = PROVIDER_PATH  # type: ignore[attr-defined]
            raise err
        try:
            store = load_store(unquote(parts.path), password)
        except StoreError as exc:
            exc.prop = (PASSWORD_FILE if password_file and "password" in str(exc)  # type: ignore[attr-defined]
                        else PROVIDER_PATH)
            if "password" in str(exc):
                exc.args = (f"{exc} (the store password comes from HADOOP_CREDSTORE_PASSWORD, else {PASSWORD_FILE}, "
                            "else Hadoop's default)",)
            raise
        stores.append((store, password))
    if not stores:
        err = StoreError(f"{PROVIDER_PATH} names no provider; expected jceks://file/<path to the store>")
        err.prop = PROVIDER_PATH  # type: ignore[attr-defined]
        raise err
    return CredentialStores(stores)
