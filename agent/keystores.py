"""Java key stores read as they are: JKS, JCEKS and PKCS12 files made by ``keytool``, and PEM files.

Every key or trust store option of pyflume (the TLS sources and sinks, Kafka's ``ssl.keystore.*`` /
``ssl.truststore.*``, Flume's global ``-Djavax.net.ssl.*`` / ``FLUME_SSL_*``, the file channel's encryption keys,
Hadoop's credential store) reads its file here. What a file is comes from its first bytes, not from its name or a
declared type: keytool has written PKCS12 by default since Java 9, also into files named ``*.jks``.

- JKS and JCEKS (private keys, trusted certificates, JCEKS secret keys) are read with ``pyjks``;
- PKCS12 (private key, certificate chain, trusted certificates) with ``cryptography``;
- PEM (certificates and a private key in one file) with ``cryptography``.

Passwords are taken as Java takes them: the store password checks the store's integrity (JKS/JCEKS: a store read
without one is not checked, as ``KeyStore.load(in, null)``), the key password decrypts one entry. Errors
(:class:`StoreError`) name the file and what is wrong, never a password.

Private keys only leave this module as objects or as PEM bytes in memory (:func:`pem_bundle`); nothing here writes
a file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["StoreError", "KeyStore", "store_kind", "load_store", "pem_bundle", "certificates_pem",
           "read_password_file"]

_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_DECRYPTED: dict[tuple[bytes, str, str, bytes], bytes] = {}  # see KeyStore._decrypted
_JCEKS_MAGIC = b"\xce\xce\xce\xce"


class StoreError(ValueError):
    """A key store that cannot be used: missing, unreadable, corrupt, wrong password, missing alias."""


def store_kind(path: str | Path) -> str | None:
    """"JKS", "JCEKS", "PKCS12" or "PEM" by the file's first bytes; None when unreadable or none of these."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if head[:4] == _JKS_MAGIC:
        return "JKS"
    if head[:4] == _JCEKS_MAGIC:
        return "JCEKS"
    if head[:1] == b"\x30":  # a DER SEQUENCE: PKCS#12
        return "PKCS12"
    if head.lstrip().startswith(b"-----BEGIN"):
        return "PEM"
    return None


def read_password_file(path: str | Path) -> str:
    """A password file as Flume reads one: UTF-8, surrounding white space trimmed. StoreError if unreadable."""
    try:
        return Path(path).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read the password file {path}: {getattr(exc, 'strerror', None) or exc}") from None


@dataclass
class KeyStore:
    """The entries of one store file. Private and secret keys stay encrypted until asked for with their password."""

    path: str
    kind: str
    certificates: list[Any] = field(default_factory=list)  # trusted certificates (x509.Certificate)
    _private: dict[str, Any] = field(default_factory=dict)  # alias -> pyjks entry, or (key, chain) when decrypted
    _secret: dict[str, Any] = field(default_factory=dict)  # alias -> pyjks SecretKeyEntry
    _digest: bytes = b""  # of the file's bytes: what decrypted entries are cached under

    @property
    def aliases(self) -> list[str]:
        return sorted([*self._private, *self._secret])

    @property
    def private_aliases(self) -> list[str]:
        return sorted(self._private)

    def private_key(self, password: str | None, alias: str | None = None) -> tuple[Any, list[Any]]:
        """The private key and its certificate chain (leaf first) of ``alias``, else of the first key entry, as
        Java's key manager picks one. ``password`` is the key password (Flume's TLS sources use the store's)."""
        if not self._private:
            raise StoreError(f"{self.path} ({self.kind}) holds no private key entry; a key store for a TLS server "
                             "or client certificate needs one (keytool -genkeypair)")
        if alias is None:
            alias = sorted(self._private)[0]
        elif alias not in self._private:
            raise StoreError(f"{self.path} has no private key '{alias}'; it has {', '.join(self.private_aliases)}")
        entry = self._private[alias]
        if isinstance(entry, tuple):
            return entry
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        pkcs8 = self._decrypted(entry, alias, password, "private key")
        key = serialization.load_der_private_key(pkcs8, None)
        chain = [x509.load_der_x509_certificate(der) for _kind, der in entry.cert_chain]
        return key, chain

    def _decrypted(self, entry: Any, alias: str, password: str | None, what: str) -> bytes:
        """A JKS/JCEKS entry's key bytes. JCEKS protects keys with 200,000 rounds of MD5 (over a second in Python),
        so a key opened once is kept for this process, under the file's digest, the alias and the password's
        digest: the check at configuration time and the start that follows (or a reload) open it once."""
        pw = hashlib.sha256((password or "").encode("utf-8", "surrogatepass")).digest()
        cache_key = (self._digest, alias, what, pw)
        found = _DECRYPTED.get(cache_key)
        if found is not None:
            return found
        try:
            entry.decrypt(password or "")
        except Exception:  # noqa: BLE001 - pyjks raises several kinds; the message must not echo the password
            raise StoreError(f"{self.path}: the key password does not open {what} '{alias}'") from None
        value = bytes(entry.pkey_pkcs8 if what == "private key" else entry.key)
        if len(_DECRYPTED) >= 64:
            _DECRYPTED.clear()
        _DECRYPTED[cache_key] = value
        return value

    def secret_key(self, alias: str, password: str | None) -> bytes:
        """The bytes of secret key ``alias`` (a JCEKS ``keytool -genseckey`` or Hadoop credential entry)."""
        entry = self._secret.get(alias)
        if entry is None:
            others = ", ".join(sorted(self._secret)) or "none"
            raise StoreError(f"{self.path} ({self.kind}) has no secret key '{alias}' (secret keys in it: {others})")
        return self._decrypted(entry, alias, password, "secret key")

    def trusted(self) -> list[Any]:
        """Every certificate a trust manager made from this store would trust: trusted entries and, as Java does,
        the leaf certificate of each private key entry that was already decrypted (PKCS12/PEM)."""
        out = list(self.certificates)
        for entry in self._private.values():
            if isinstance(entry, tuple) and entry[1]:
                out.append(entry[1][0])
        return out


def load_store(path: str | Path, password: str | None) -> KeyStore:
    """Read a store file of any supported kind. ``password`` is the store password (None: not checked, for JKS
    and JCEKS trust stores). Raises StoreError naming the file and the problem, never the password."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    kind = store_kind(path)
    if kind in ("JKS", "JCEKS"):
        return _load_java(path, data, password, kind)
    if kind == "PKCS12":
        return _load_pkcs12(path, data, password)
    if kind == "PEM":
        return _load_pem(path, data, password)
    raise StoreError(f"{path} is not a key store: expected a JKS, JCEKS or PKCS12 file made by keytool, or PEM")


def _load_java(path: str, data: bytes, password: str | None, kind: str) -> KeyStore:
    try:
        import jks
    except ImportError:
        raise StoreError(f"{path} is a {kind} key store, which needs the Python package 'pyjks' (pip install "
                         "pyjks)") from None
    try:
        raw = jks.KeyStore.loads(data, password, try_decrypt_keys=False)
    except jks.util.KeystoreSignatureException:
        raise StoreError(f"{path}: the store password is wrong (the {kind} integrity check fails)") from None
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt file fails in many ways inside pyjks
        raise StoreError(f"{path} is a corrupt {kind} key store ({type(exc).__name__})") from None
    from cryptography import x509

    store = KeyStore(path, kind, _digest=hashlib.sha256(data).digest())
    try:
        store.certificates = [x509.load_der_x509_certificate(e.cert) for e in raw.certs.values()]
    except ValueError:
        raise StoreError(f"{path}: a trusted certificate entry cannot be parsed") from None
    store._private = dict(raw.private_keys)
    store._secret = dict(raw.secret_keys)
    return store


def _load_pkcs12(path: str, data: bytes, password: str | None) -> KeyStore:
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        p12 = pkcs12.load_pkcs12(data, password.encode() if password else None)
    except ValueError:
        what = "the store password is wrong, or the file is corrupt" if password else \
            "it needs its store password, or the file is corrupt"
        raise StoreError(f"{path} (PKCS12): {what}") from None
    store = KeyStore(path, "PKCS12", [c.certificate for c in p12.additional_certs])
    if p12.key is not None and p12.cert is not None:
        alias = (p12.cert.friendly_name or b"1").decode("utf-8", "replace")
        store._private[alias] = (p12.key, [p12.cert.certificate])
    elif p12.cert is not None:
        store.certificates.append(p12.cert.certificate)
    return store


def _load_pem(path: str, data: bytes, password: str | None) -> KeyStore:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certs = x509.load_pem_x509_certificates(data) if b"CERTIFICATE-----" in data else []
    except ValueError:
        raise StoreError(f"{path}: a PEM certificate cannot be parsed") from None
    store = KeyStore(path, "PEM")
    if b"PRIVATE KEY-----" in data:
        start = data.index(b"-----BEGIN", data.index(b"PRIVATE KEY-----") - 40)
        end = data.index(b"-----", data.index(b"-----END", start) + 8) + 5
        try:
            key = serialization.load_pem_private_key(data[start:end], password.encode() if password else None)
        except (ValueError, TypeError):
            raise StoreError(f"{path}: the PEM private key cannot be read (wrong or missing password, or "
                             "corrupt)") from None
        store._private["1"] = (key, certs)
    else:
        store.certificates = certs
    return store


def pem_bundle(key: Any, chain: list[Any], passphrase: bytes | None = None) -> tuple[bytes, bytes]:
    """The certificate chain and the private key as PEM bytes (the key encrypted with ``passphrase`` if given), for
    libraries that take PEM (librdkafka's ``ssl.certificate.pem`` / ``ssl.key.pem``, Python's ssl)."""
    from cryptography.hazmat.primitives import serialization

    enc = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    certs = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    return certs, key_pem


def certificates_pem(certs: list[Any]) -> str:
    """Certificates as one PEM text (``ssl.SSLContext.load_verify_locations(cadata=…)``, librdkafka's
    ``ssl.ca.pem``)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certs)

