"""Key stores made by the JDK's own ``keytool``, as a Flume user makes them (no store here is written by Python).

One set is made per test session (each keytool run starts a JVM, about half a second):

- ``server.jks`` (JKS), ``server.jceks`` (JCEKS), ``server.p12`` (PKCS12): one EC key pair for 127.0.0.1, alias
  ``server``, store password ``storepass``, key password ``keypass1`` (JKS/JCEKS; PKCS12 keys have the store's),
  as Kafka's ``ssl.key.password`` allows; ``server-same.jks`` has the key password equal to the store password,
  as Flume's TLS sources need; ``server.pem`` is its certificate;
- ``trust.jks`` / ``trust.p12``: that certificate as a trusted entry, password ``changeit``;
- ``keys.jceks``: AES secret keys ``key-0`` (key password ``keypass0``) and ``key-1`` (``keypass1``), store password
  ``storepass``: a file channel's encryption keys;
- password files ``storepass.txt``, ``keypass0.txt``, ``keypass1.txt`` (with a trailing newline, as ``echo``
  writes them).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["missing_keytool_reason", "keytool", "JavaStores", "make_stores"]

STOREPASS = "storepass"
TRUSTPASS = "changeit"


def missing_keytool_reason() -> str | None:
    return None if shutil.which("keytool") else "keytool (part of the JDK that runs the peers) is not on PATH"


def keytool(*args: str) -> None:
    fast_jvm = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-J-Xshare:auto")  # a short-lived JVM starts sooner
    proc = subprocess.run(["keytool", *fast_jvm, *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"keytool {' '.join(args[:1])} failed:\n{proc.stdout}{proc.stderr}")


@dataclass(frozen=True)
class JavaStores:
    dir: Path

    def __getattr__(self, name: str) -> Path:  # stores.server_jks -> dir/server.jks
        stem, _, ext = name.rpartition("_")
        return self.dir / f"{stem.replace('_', '-')}.{ext}"


def make_stores(d: Path) -> JavaStores:
    d.mkdir(parents=True, exist_ok=True)
    dname = ("-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1,dns:localhost", "-keyalg", "EC", "-groupname",
             "secp256r1", "-validity", "3", "-alias", "server")
    keytool("-genkeypair", "-keystore", str(d / "server.jks"), "-storetype", "JKS", "-storepass", STOREPASS,
            "-keypass", "keypass1", *dname)
    for name, kind, keypass in (("server.jceks", "JCEKS", "keypass1"), ("server.p12", "PKCS12", STOREPASS),
                                ("server-same.jks", "JKS", STOREPASS)):  # the same key pair in the other kinds
        keytool("-importkeystore", "-noprompt", "-srckeystore", str(d / "server.jks"), "-srcstorepass", STOREPASS,
                "-srcalias", "server", "-srckeypass", "keypass1", "-destkeystore", str(d / name), "-deststoretype",
                kind, "-deststorepass", STOREPASS, "-destkeypass", keypass)
    keytool("-exportcert", "-keystore", str(d / "server.jks"), "-storepass", STOREPASS, "-alias", "server", "-rfc",
            "-file", str(d / "server.pem"))
    for kind, name in (("JKS", "trust.jks"), ("PKCS12", "trust.p12")):
        keytool("-importcert", "-noprompt", "-keystore", str(d / name), "-storetype", kind, "-storepass",
                TRUSTPASS, "-alias", "ca", "-file", str(d / "server.pem"))
    for alias, keypass in (("key-0", "keypass0"), ("key-1", "keypass1")):
        keytool("-genseckey", "-keystore", str(d / "keys.jceks"), "-storetype", "JCEKS", "-storepass", STOREPASS,
                "-alias", alias, "-keypass", keypass, "-keyalg", "AES", "-keysize", "128")
    for word in (STOREPASS, "keypass0", "keypass1"):
        (d / f"{word}.txt").write_text(word + "\n")
    return JavaStores(d)
