"""File channel encryption: Flume's ``encryption.*`` settings, and how an encrypted PUT record is laid out.

Flume's keys are kept: ``encryption.activeKey`` (the alias new records are encrypted with),
``encryption.cipherProvider = AESCTRNOPADDING``, ``encryption.keyProvider = JCEKSFILE`` with
``encryption.keyProvider.keyStoreFile`` (a key store made by ``keytool -genseckey``, read as it is: JCEKS, JKS),
``…keyStorePasswordFile`` (the store password, trimmed), ``…keys`` (the aliases the channel may need, space
separated) and ``…keys.<alias>.passwordFile`` (a key's own password; unset: the store password), as Flume's
JCEFileKeyProvider reads them.

An encrypted PUT record (type ``EPUT``) keeps the plain PUT's first 20 payload bytes (first sequence number,
commit time, event count: what replay needs without a key) and encrypts the rest (lengths, headers, bodies)::

    first_seq u64 | commit time ms u64 | count u32 | alias_len u8 | alias | key check 4 bytes | IV 16 bytes |
    AES-CTR(key, IV)(lengths | header blobs | bodies)

Each record has its own IV, never reused under a key (Flume's AESCTRNoPaddingProvider reuses one IV for every record
of a log file), and names the key alias it was written with (Flume keeps it once per log file), so a key rotation
(a new ``activeKey``, the old key still listed) replays old records with the old key. The key check (the first 4
bytes of SHA-256 over a label and the key) tells a wrong key under the right alias apart from a corrupt record. The
record's CRC covers the encrypted bytes, so a torn tail is found without any key. This is pyflume's own layout,
like the rest of its log: Flume's encrypted files cannot be read, nor can Flume read these.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from agent.keystores import StoreError, load_store, read_password_file
from agent.spec import Conf, Prop

__all__ = ["ENCRYPTION_PROPS", "LogCipher", "KeyProblem", "cipher_from_config", "record_key"]

CIPHER_PROVIDERS = {"AESCTRNOPADDING": "AES in counter mode, no padding (Flume's only cipher provider)."}
KEY_PROVIDERS = {"JCEKSFILE": "Keys from a Java key store file (keytool -genseckey)."}
_AES_CTR_CLASS = "org.apache.flume.channel.file.encryption.aesctrnopaddingprovider"
_JCEKS_CLASS = "org.apache.flume.channel.file.encryption.jcefilekeyprovider"
_PLAIN_HEAD = 20  # first_seq u64, commit time u64, count u32: left in clear
_IV = 16
_CHECK = 4
_MASK = (1 << 128) - 1  # counter mode wraps the whole 128-bit block
_ZEROS = bytes(16)

ENCRYPTION_PROPS = (
    Prop("encryption.activeKey", "str", None, "Alias of the key new log records are encrypted with (set it with "
         "encryption.keyProvider)."),
    Prop("encryption.cipherProvider", "str", None, "AESCTRNOPADDING: AES in counter mode (Flume's only cipher "
         "provider); required with encryption.keyProvider."),
    Prop("encryption.keyProvider", "str", None, "JCEKSFILE: keys from a Java key store file; unset: the log is "
         "not encrypted."),
    Prop("encryption.keyProvider.keyStoreFile", "str", None, "The key store holding the keys (made by keytool "
         "-genseckey; JCEKS, read as it is)."),
    Prop("encryption.keyProvider.keyStorePasswordFile", "str", None, "A file holding the key store's password "
         "(white space around it trimmed); it is also the password of keys without their own passwordFile."),
    Prop("encryption.keyProvider.keys", "list", [], "Aliases of every key the channel may need: the active one and "
         "the older ones still used by queued records (space-separated)."),
    Prop("encryption.keyProvider.keys.", prefix=True, doc="keys.<alias>.passwordFile: a file holding that key's "
         "own password."),
)


class KeyProblem(Exception):
    """A record that cannot be decrypted: its key alias is not available, or the key under it is another one."""


def record_key(payload: bytes | memoryview) -> str:
    """The key alias an encrypted PUT payload was written with."""
    n = payload[_PLAIN_HEAD]
    return bytes(payload[_PLAIN_HEAD + 1:_PLAIN_HEAD + 1 + n]).decode("utf-8", "replace")


def _check_value(key: bytes) -> bytes:
    return hashlib.sha256(b"pyflume file channel key check\0" + key).digest()[:_CHECK]


class LogCipher:
    """The keys of one channel: ``seal`` encrypts a PUT body with the active key, ``open`` decrypts a record with
    the key it names. Thread-safe.

    Setting up an AES context costs about 120 µs, four times the encryption of a 100 KB batch, so ``seal`` keeps one
    counter-mode stream per channel start, from a random 128-bit counter: each record takes the next whole blocks of
    it and stores its first counter value as its IV, which is all ``open`` needs. Counter values never repeat within
    a stream (2^128 blocks), and each start draws a new random one.
    """

    def __init__(self, active: str, keys: Mapping[str, bytes]):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self._cipher = lambda key, iv: Cipher(algorithms.AES(key), modes.CTR(iv))
        self.active = active
        self.keys = dict(keys)
        alias = active.encode("utf-8")
        if len(alias) > 255:
            raise ValueError(f"key alias {active!r} is longer than 255 bytes")
        self._head = bytes([len(alias)]) + alias + _check_value(self.keys[active])
        self._checks = {a: _check_value(k) for a, k in self.keys.items()}
        start = os.urandom(_IV)
        self._counter = int.from_bytes(start, "big")
        self._stream = self._cipher(self.keys[active], start).encryptor()
        self._lock = threading.Lock()

    def seal(self, body: bytes) -> bytes:
        """A plain PUT body (``count u32 | rest``) as the encrypted record's body (everything after the prefix)."""
        n = len(body) - 4
        pad = -n % 16  # the next record starts on a block boundary
        with self._lock:  # once per batch
            iv = (self._counter & _MASK).to_bytes(_IV, "big")
            data = self._stream.update(memoryview(body)[4:])
            if pad:
                self._stream.update(_ZEROS[:pad])
            self._counter += (n + pad) >> 4
        return b"".join((body[:4], self._head, iv, data))

    def check(self, payload: bytes | memoryview) -> None:
        """KeyProblem if the record's key is not here, or is not the key it was written with."""
        alias = record_key(payload)
        pos = _PLAIN_HEAD + 1 + payload[_PLAIN_HEAD]
        if alias not in self.keys:
            raise KeyProblem(f"key '{alias}' is not available (encryption.keyProvider.keys lists "
                             f"{' '.join(sorted(self.keys))})")
        if bytes(payload[pos:pos + _CHECK]) != self._checks[alias]:
            raise KeyProblem(f"the key store's key '{alias}' is not the key the record was written with")

    def open(self, payload: bytes) -> bytes:
        """An encrypted PUT payload as the plain PUT payload it was made from."""
        self.check(payload)
        alias = record_key(payload)
        pos = _PLAIN_HEAD + 1 + payload[_PLAIN_HEAD] + _CHECK
        iv = payload[pos:pos + _IV]
        dec = self._cipher(self.keys[alias], iv).decryptor()
        return b"".join((payload[:_PLAIN_HEAD], dec.update(payload[pos + _IV:]), dec.finalize()))


def cipher_from_config(conf: Conf) -> tuple[LogCipher | None, str | None]:
    """Check Flume's encryption settings (problems go to ``conf`` with their lines) and, when the key store can be
    read here, load its keys. Returns the cipher (None when encryption is off or the store is not readable yet) and
    the store path to load at start when it was not readable now."""
    cfg = conf.typed
    provider = cfg.encryption_key_provider
    active = cfg.encryption_active_key
    cipher_name = cfg.encryption_cipher_provider
    if provider is None:  # as Flume: activeKey and cipherProvider only with a key provider
        for value, prop in ((active, "encryption.activeKey"), (cipher_name, "encryption.cipherProvider")):
            if value is not None:
                conf.error("is set but encryption.keyProvider is not; set encryption.keyProvider = JCEKSFILE (with "
                           "its keyStoreFile, keyStorePasswordFile and keys) or remove it", prop)
        return None, None
    ok = True
    if provider.upper() not in KEY_PROVIDERS and provider.lower().removesuffix("$builder") != _JCEKS_CLASS:
        conf.error(f"'{provider}' is not a key provider; expected JCEKSFILE", "encryption.keyProvider")
        ok = False
    if cipher_name is None:
        conf.error("encryption.cipherProvider is missing; expected AESCTRNOPADDING", "encryption.keyProvider")
        ok = False
    elif cipher_name.upper() not in CIPHER_PROVIDERS and cipher_name.lower().removesuffix("$builder") != _AES_CTR_CLASS:
        conf.error(f"'{cipher_name}' is not a cipher provider; expected AESCTRNOPADDING", "encryption.cipherProvider")
        ok = False
    if not active:
        conf.error("encryption.activeKey is missing: the alias of the key to encrypt with", "encryption.keyProvider")
        ok = False
    store = cfg.encryption_key_provider_key_store_file
    password_file = cfg.encryption_key_provider_key_store_password_file
    for value, prop in ((store, "keyStoreFile"), (password_file, "keyStorePasswordFile")):
        if not value:
            conf.error(f"encryption.keyProvider.{prop} is missing", "encryption.keyProvider")
            ok = False
    if not cfg.encryption_key_provider_keys:
        conf.error("encryption.keyProvider.keys is missing: list the key aliases (at least the active one)",
                   "encryption.keyProvider")
        ok = False
    key_files = _key_password_files(conf)
    if not ok:
        return None, None
    assert store and password_file and active
    missing = [p for p in (store, password_file, *key_files.values()) if not os.path.isfile(p)]
    if missing:
        conf.warn(f"{', '.join(missing)}: not a file here; the channel cannot start until it is",
                  "encryption.keyProvider.keyStoreFile")
        return None, store
    try:
        return load_cipher(store, password_file, active, cfg.encryption_key_provider_keys, key_files), None
    except StoreError as exc:
        conf.error(str(exc), getattr(exc, "prop", "encryption.keyProvider.keyStoreFile"))
        return None, None


def _key_password_files(conf: Conf) -> dict[str, str]:
    files: dict[str, str] = {}
    for key, raw in conf.sub("encryption.keyProvider.keys.").items():
        alias, dot, rest = key.rpartition(".")
        if not dot or rest != "passwordFile":
            conf.warn(f"unknown property 'encryption.keyProvider.keys.{key}'; expected "
                      "encryption.keyProvider.keys.<alias>.passwordFile", f"encryption.keyProvider.keys.{key}")
            continue
        if alias not in conf.typed.encryption_key_provider_keys:
            conf.warn(f"key '{alias}' is not listed in encryption.keyProvider.keys; its password file is unused",
                      f"encryption.keyProvider.keys.{key}")
        files[alias] = raw.value
    return files


def load_cipher(store: str, password_file: str, active: str, aliases: list[str],
                key_files: Mapping[str, str]) -> LogCipher:
    """Open the key store and every listed key (and the active one). StoreError names the file, the alias and the
    property to blame (``exc.prop``), never a password."""
    password = _password(password_file, "encryption.keyProvider.keyStorePasswordFile")
    try:
        ks = load_store(store, password)
    except StoreError as exc:
        exc.prop = ("encryption.keyProvider.keyStorePasswordFile" if "password" in str(exc)  # type: ignore[attr-defined]
                    else "encryption.keyProvider.keyStoreFile")
        raise
    keys: dict[str, bytes] = {}
    for alias in dict.fromkeys([*aliases, active]):
        prop = f"encryption.keyProvider.keys.{alias}.passwordFile" if alias in key_files else \
            "encryption.keyProvider.keys"
        key_password = _password(key_files[alias], prop) if alias in key_files else password
        try:
            key = ks.secret_key(alias, key_password)
        except StoreError as exc:
            exc.prop = prop if "password" in str(exc) else (  # type: ignore[attr-defined]
                "encryption.activeKey" if alias == active else "encryption.keyProvider.keys")
            raise
        if len(key) not in (16, 24, 32):
            err = StoreError(f"{store}: key '{alias}' has {len(key) * 8} bits; AES needs 128, 192 or 256 (keytool "
                             "-genseckey -keyalg AES -keysize 128)")
            err.prop = "encryption.keyProvider.keys"  # type: ignore[attr-defined]
            raise err
        keys[alias] = key
    return LogCipher(active, keys)


def _password(path: str, prop: str) -> str:
    try:
        return read_password_file(Path(path))
    except StoreError as exc:
        exc.prop = prop  # type: ignore[attr-defined]
        raise

