"""TLS for listening sources (avro, http, syslogtcp, multiport_syslogtcp) and the protocol settings of clients.

Flume's keys are kept: ``ssl``, ``keystore``, ``keystore-password``, ``keystore-type``, ``include-protocols``,
``exclude-protocols``, ``include-cipher-suites``, ``exclude-cipher-suites``, and Flume's global defaults for a key
the component leaves unset: the system property on the command line (``-Djavax.net.ssl.keyStore``,
``keyStorePassword``, ``keyStoreType``, ``trustStore``…, ``-Dflume.ssl.include.protocols``, ``exclude.protocols``,
``include.cipherSuites``, ``exclude.cipherSuites``), else the environment variable (``FLUME_SSL_KEYSTORE_PATH``,
``FLUME_SSL_KEYSTORE_PASSWORD``, ``FLUME_SSL_KEYSTORE_TYPE``, ``FLUME_SSL_TRUSTSTORE_PATH``…,
``FLUME_SSL_INCLUDE_PROTOCOLS``, ``FLUME_SSL_EXCLUDE_PROTOCOLS``, ``FLUME_SSL_INCLUDE_CIPHERSUITES``,
``FLUME_SSL_EXCLUDE_CIPHERSUITES``); global lists may be separated by commas. Key stores are
PKCS12 (read with the ``cryptography`` package) or PEM; a Java keystore (JKS) cannot be read and is rejected with
the keytool line that converts it. pyflume adds ``ssl.certificate`` + ``ssl.key`` for separate PEM files.

Without include-protocols, TLSv1.2 and TLSv1.3 are offered (what Java 17, Flume's runtime, enables by default).
"""

from __future__ import annotations

import importlib.util
import os
import ssl
import tempfile
from collections.abc import Mapping

from agent.spec import Conf, Prop

__all__ = ["HANDSHAKE_TIMEOUT", "TLS_VERSIONS", "ServerTls", "server_tls_props", "CLIENT_TLS_PROPS",
           "apply_client_protocols", "use_system_properties", "global_setting", "setting", "list_setting",
           "store_format", "load_trust_store", "CLIENT_TRUST_PROPS", "client_context"]

#: Seconds an accepted client has to finish its TLS handshake: a client that connects and says nothing must not
#: hold a connection thread for good.
HANDSHAKE_TIMEOUT = 30.0

TLS_VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}

# Flume's global SSL settings (SSLUtil): a component key left unset falls back to the system property given on the
# command line (-Dkey=value), then to the environment variable.
_GLOBAL = {
    "keystore": ("javax.net.ssl.keyStore", "FLUME_SSL_KEYSTORE_PATH"),
    "keystore-password": ("javax.net.ssl.keyStorePassword", "FLUME_SSL_KEYSTORE_PASSWORD"),
    "keystore-type": ("javax.net.ssl.keyStoreType", "FLUME_SSL_KEYSTORE_TYPE"),
    "truststore": ("javax.net.ssl.trustStore", "FLUME_SSL_TRUSTSTORE_PATH"),
    "truststore-password": ("javax.net.ssl.trustStorePassword", "FLUME_SSL_TRUSTSTORE_PASSWORD"),
    "truststore-type": ("javax.net.ssl.trustStoreType", "FLUME_SSL_TRUSTSTORE_TYPE"),
    "include-protocols": ("flume.ssl.include.protocols", "FLUME_SSL_INCLUDE_PROTOCOLS"),
    "exclude-protocols": ("flume.ssl.exclude.protocols", "FLUME_SSL_EXCLUDE_PROTOCOLS"),
    "include-cipher-suites": ("flume.ssl.include.cipherSuites", "FLUME_SSL_INCLUDE_CIPHERSUITES"),
    "exclude-cipher-suites": ("flume.ssl.exclude.cipherSuites", "FLUME_SSL_EXCLUDE_CIPHERSUITES"),
}
_system_properties: dict[str, str] = {}


def use_system_properties(props: Mapping[str, str]) -> None:
    """Remember the agent's -D system properties that carry global SSL settings (called when a topology is built)."""
    names = {sysprop for sysprop, _ in _GLOBAL.values()}
    _system_properties.clear()
    _system_properties.update({k: v for k, v in props.items() if k in names})


def global_setting(key: str) -> str | None:
    """The global value of a component TLS key: its system property, else its environment variable."""
    sysprop, env = _GLOBAL[key]
    value = _system_properties.get(sysprop)
    return value if value is not None else os.environ.get(env)


def store_format(path: str) -> str | None:
    """What a key or trust store file is, by its first bytes: "JKS" (or JCEKS), "PKCS12", "PEM"; None if unreadable.

    keytool writes PKCS12 by default since Java 9, also to files named *.jks with ``keystore-type = JKS`` left in
    the configuration (Java reads them either way), so the file's content decides, not its name or declared type."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if head[:4] in (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce"):
        return "JKS"
    if head[:1] == b"\x30":  # a DER SEQUENCE: PKCS#12
        return "PKCS12"
    if head.lstrip().startswith(b"-----BEGIN"):
        return "PEM"
    return None


def load_trust_store(ctx: ssl.SSLContext, path: str, password: str | None) -> None:
    """Trust the CA certificates of a PEM file or a PKCS12 trust store (keytool's default format); a JKS one must be
    converted first. Raises OSError or ValueError with the reason."""
    kind = store_format(path)
    if kind == "PKCS12":
        from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

        with open(path, "rb") as f:
            data = f.read()
        store = pkcs12.load_pkcs12(data, password.encode() if password else None)
        certs = [c.certificate for c in store.additional_certs] + ([store.cert.certificate] if store.cert else [])
        if not certs:
            raise ValueError("the PKCS12 trust store holds no certificate")
        ctx.load_verify_locations(cadata="".join(c.public_bytes(Encoding.PEM).decode() for c in certs))
    elif kind == "JKS":
        raise ValueError("a Java keystore (JKS) cannot be read by pyflume; convert it with keytool -importkeystore "
                         "-srckeystore trust.jks -destkeystore trust.p12 -deststoretype PKCS12, or export its CA "
                         "certificate to PEM (keytool -exportcert -rfc)")
    else:
        ctx.load_verify_locations(path)


def setting(conf: Conf, key: str, default: str | None = None) -> str | None:
    """A TLS key as Flume reads it: the component's own value, else the global one, else ``default``."""
    if conf.is_set(key):
        return conf[key]
    value = global_setting(key)
    return value if value is not None else default


def list_setting(conf: Conf, key: str) -> list[str]:
    """A TLS list key: the component's own (space-separated), else the global one (commas or spaces), else the
    key's default."""
    if conf.is_set(key):
        return list(conf[key])
    value = global_setting(key)
    return value.replace(",", " ").split() if value is not None else list(conf[key])


def server_tls_props(what: str, deprecated_names: bool = False) -> tuple[Prop, ...]:
    """The TLS keys of a listening source; ``what`` names what is served (\"HTTPS\", \"TLS\"). With
    ``deprecated_names``, the HTTP source's old spellings (enableSSL, keystorePassword, excludeProtocols)."""
    return (
        Prop("ssl", "bool", False,
             f"Serve {what} (no client certificates are requested, as in Flume)"
             + (" (also read as enableSSL, Flume's deprecated name)." if deprecated_names else "."),
             aliases=("enableSSL",) if deprecated_names else ()),
        Prop("keystore", "str", None,
             "With ssl: the key store file, PKCS12 or PEM (see keystore-type). Unset: -Djavax.net.ssl.keyStore, "
             "else FLUME_SSL_KEYSTORE_PATH (Flume's global settings)."),
        Prop("keystore-password", "str", None,
             "Password of the key store" + (" (also keystorePassword, deprecated)" if deprecated_names else "")
             + "; unset: -Djavax.net.ssl.keyStorePassword, else FLUME_SSL_KEYSTORE_PASSWORD.",
             aliases=("keystorePassword",) if deprecated_names else ()),
        Prop("keystore-type", "str", "JKS",
             "PKCS12 (read with the cryptography package), or PEM (certificate chain and key in one file). The "
             "file's content decides when it can be read: keytool's default PKCS12 (since Java 9, even in a file "
             "named *.jks) works with the type left at JKS. A real JKS file cannot be read by pyflume: convert it "
             "to PKCS12 with keytool. Unset: -Djavax.net.ssl.keyStoreType, else FLUME_SSL_KEYSTORE_TYPE."),
        Prop("ssl.certificate", "str", None,
             "pyflume: PEM file with the server certificate chain (instead of keystore)."),
        Prop("ssl.key", "str", None,
             "pyflume: PEM file with the private key of ssl.certificate (keystore-password decrypts it)."),
        Prop("exclude-protocols", "list", ["SSLv3"],
             "TLS versions not to offer" + (" (also excludeProtocols, deprecated)" if deprecated_names else "")
             + "; SSLv3 is always excluded. Unset: -Dflume.ssl.exclude.protocols, else FLUME_SSL_EXCLUDE_PROTOCOLS.",
             aliases=("excludeProtocols",) if deprecated_names else ()),
        Prop("include-protocols", "list", [],
             "TLS versions to offer (empty: TLSv1.2 and TLSv1.3). Unset: -Dflume.ssl.include.protocols, else "
             "FLUME_SSL_INCLUDE_PROTOCOLS."),
        Prop("exclude-cipher-suites", "list", [], "Cipher suites not to offer (OpenSSL names). Unset: "
             "-Dflume.ssl.exclude.cipherSuites, else FLUME_SSL_EXCLUDE_CIPHERSUITES."),
        Prop("include-cipher-suites", "list", [], "Cipher suites to offer (OpenSSL names; empty: the defaults). "
             "Unset: -Dflume.ssl.include.cipherSuites, else FLUME_SSL_INCLUDE_CIPHERSUITES."),
    )


class ServerTls:
    """A listening source's TLS settings, checked when the configuration is read; ``context()`` reads the key
    material when the source starts (so a renewed certificate is picked up by a restart or a reload)."""

    def __init__(self, conf: Conf):
        self.certificate: str | None = conf.get("ssl.certificate")
        self.key: str | None = conf.get("ssl.key")
        self.keystore: str | None = setting(conf, "keystore")
        self.password: str | None = setting(conf, "keystore-password")
        ktype = setting(conf, "keystore-type", "JKS") or "JKS"
        self.keystore_type = ktype.upper()
        found = store_format(self.keystore) if self.keystore and not self.certificate else None
        if found is not None:
            self.keystore_type = found  # what the file is: keytool's PKCS12 named *.jks is read as it is
        for path, prop in ((self.certificate, "ssl.certificate"), (self.key, "ssl.key"),
                           (None if self.certificate else self.keystore, "keystore")):
            if path and not os.path.isfile(path):
                where = "" if conf.is_set(prop) else " (Flume's global setting: -Djavax.net.ssl.keyStore or " \
                                                      "FLUME_SSL_KEYSTORE_PATH)"
                conf.warn(f"{path}{where} is not a file here: the source cannot start until it is", prop)
        if self.key and not self.certificate:
            conf.error("ssl.key needs ssl.certificate (the PEM certificate chain)", "ssl.key")
        elif self.certificate:
            pass  # PEM files; keystore settings unused
        elif not self.keystore:
            conf.error("ssl is true but no key store is set: set keystore (PKCS12 or PEM) or ssl.certificate and "
                       "ssl.key (PEM files)", "ssl")
        elif found is None and self.keystore.lower().endswith(".pem"):
            self.keystore_type = "PEM"  # not readable yet: go by the name
        elif self.keystore_type == "JKS":
            conf.error("a Java keystore (JKS) cannot be read by pyflume; convert it with keytool -importkeystore "
                       "-srckeystore ks.jks -destkeystore ks.p12 -deststoretype PKCS12 and set keystore-type = "
                       "PKCS12, or give PEM files in ssl.certificate and ssl.key",
                       "keystore-type" if conf.is_set("keystore-type") else "keystore")
        elif self.keystore_type == "PKCS12":
            if importlib.util.find_spec("cryptography") is None:
                conf.error("keystore-type PKCS12 needs the Python package 'cryptography', which is not installed; "
                           "install it, or convert the keystore to PEM (openssl pkcs12 -in ks.p12 -out ks.pem "
                           "-nodes) and set keystore-type = PEM", "keystore-type")
            if self.password is None:
                conf.error("keystore-password must be set when ssl is true (it opens the PKCS12 keystore)",
                           "keystore-password")
        elif self.keystore_type != "PEM":
            conf.error(f"keystore-type {ktype!r} is not supported; expected PKCS12 or PEM (JKS must be converted)",
                       "keystore-type")
        exclude = set(list_setting(conf, "exclude-protocols")) | {"SSLv3"}
        include = list_setting(conf, "include-protocols")
        for name in list(include) + sorted(exclude):
            if name != "SSLv3" and name not in TLS_VERSIONS:
                conf.warn(f"unknown TLS protocol {name!r}; known: {', '.join(TLS_VERSIONS)}",
                          "include-protocols" if name in include else "exclude-protocols")
        offered = [v for v in TLS_VERSIONS if (v in include if include else v in ("TLSv1.2", "TLSv1.3"))
                   and v not in exclude]
        self.versions = offered
        if not offered:
            conf.error("no TLS protocol is left to offer after include-protocols and exclude-protocols",
                       "include-protocols" if include else "exclude-protocols")
        else:
            names = list(TLS_VERSIONS)
            span = names[names.index(offered[0]):names.index(offered[-1]) + 1]
            if span != offered:
                conf.warn(f"TLS versions can only be enabled as a range here; offering {span[0]} to {span[-1]}",
                          "exclude-protocols")
        self.include_ciphers: list[str] = list_setting(conf, "include-cipher-suites")
        self.exclude_ciphers: list[str] = list_setting(conf, "exclude-cipher-suites")
        try:
            self._base()
        except ssl.SSLError:
            conf.error("no cipher suite matches include-cipher-suites / exclude-cipher-suites; give OpenSSL names "
                       "such as ECDHE-RSA-AES128-GCM-SHA256", "include-cipher-suites")

    def _base(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self.versions:
            ctx.minimum_version = TLS_VERSIONS[self.versions[0]]
            ctx.maximum_version = TLS_VERSIONS[self.versions[-1]]
        if self.include_ciphers or self.exclude_ciphers:
            spec = ":".join(self.include_ciphers) if self.include_ciphers else "DEFAULT"
            ctx.set_ciphers(spec + "".join(f":!{c}" for c in self.exclude_ciphers))
        return ctx

    def context(self, session_tickets: bool = True) -> ssl.SSLContext:
        """The server context, key material loaded. ``session_tickets=False`` for one-way protocols (syslog): a
        TLS 1.3 server sends its tickets after the handshake, and a client that never reads them and closes at
        once makes its kernel answer with a reset, which discards the messages the server had not read yet."""
        ctx = self._base()
        if not session_tickets:
            ctx.num_tickets = 0
        try:
            if self.certificate:
                ctx.load_cert_chain(self.certificate, self.key or None, self.password)
            elif self.keystore_type == "PEM":
                assert self.keystore is not None
                ctx.load_cert_chain(self.keystore, None, self.password)
            else:
                self._load_pkcs12(ctx)
        except (OSError, ssl.SSLError, ValueError) as exc:
            where = self.certificate or self.keystore
            raise OSError(f"cannot load the TLS certificate and key from {where}: {exc}") from None
        return ctx

    def _load_pkcs12(self, ctx: ssl.SSLContext) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12

        assert self.keystore is not None and self.password is not None
        with open(self.keystore, "rb") as f:
            key, cert, chain = pkcs12.load_key_and_certificates(f.read(), self.password.encode())
        if key is None or cert is None:
            raise ValueError("the PKCS12 keystore holds no private key with its certificate")
        secret = os.urandom(24).hex()
        pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.BestAvailableEncryption(secret.encode()))
        pem_certs = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *chain])
        # ssl loads only from files: a private directory, the key encrypted with a one-time password, removed at once
        with tempfile.TemporaryDirectory(prefix="pyflume-tls-") as tmp:
            cert_path = os.path.join(tmp, "cert.pem")
            key_path = os.path.join(tmp, "key.pem")
            for path, data in ((cert_path, pem_certs), (key_path, pem_key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            ctx.load_cert_chain(cert_path, key_path, secret)


#: The protocol keys of a TLS client (the avro sink).
CLIENT_TLS_PROPS = (
    Prop("exclude-protocols", "list", ["SSLv3"], "TLS protocol versions not to use (space-separated)."),
    Prop("include-protocols", "list", [], "TLS protocol versions to allow (empty: all the others)."),
    Prop("include-cipher-suites", "list", [], "Cipher suites to allow (OpenSSL names; empty: the defaults)."),
    Prop("exclude-cipher-suites", "list", [], "Accepted; list the suites to keep in include-cipher-suites."),
)


def apply_client_protocols(ctx: ssl.SSLContext, conf: Conf) -> None:
    """The protocol and cipher lists of a TLS client, its own or the global ones."""
    include = [v for v in list_setting(conf, "include-protocols") if v in TLS_VERSIONS]
    exclude = list_setting(conf, "exclude-protocols")
    allowed = [v for v in (include or list(TLS_VERSIONS)) if v not in exclude]
    if allowed:
        ctx.minimum_version = min(TLS_VERSIONS[v] for v in allowed)
        ctx.maximum_version = max(TLS_VERSIONS[v] for v in allowed)
    ciphers = list_setting(conf, "include-cipher-suites")
    if ciphers:
        ctx.set_ciphers(":".join(ciphers))


#: The TLS keys of a Flume Avro client (the avro sink, ``avro-client --rpcProps``), read by :func:`client_context`.
CLIENT_TRUST_PROPS = (
    Prop("ssl", "bool", False, "Connect with TLS."),
    Prop("trust-all-certs", "bool", False, "Do not verify the server's certificate."),
    Prop("truststore", "str", None, "The CA certificates to trust: a PKCS12 trust store (keytool's default "
         "format since Java 9, whatever the file is called) or a PEM file; a JKS one must be converted. Unset: "
         "-Djavax.net.ssl.trustStore, else FLUME_SSL_TRUSTSTORE_PATH, else the system's CAs."),
    Prop("truststore-password", "str", None, "Password of a PKCS12 trust store (unset: "
         "-Djavax.net.ssl.trustStorePassword, else FLUME_SSL_TRUSTSTORE_PASSWORD)."),
    Prop("truststore-type", "str", "JKS", "Accepted: the file's content says what it is (PKCS12 or PEM)."),
)


def client_context(conf: Conf) -> ssl.SSLContext:
    """The TLS context of a Flume Avro client (the avro sink, ``avro-client --rpcProps``) from its ``trust-all-certs``,
    ``truststore`` (its own, else Flume's global one, else the system's CAs), ``truststore-password`` and protocol
    keys. A trust store that cannot be loaded is reported with ``conf.error``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # Flume's client does not verify host names either
    if conf.get("trust-all-certs"):
        ctx.verify_mode = ssl.CERT_NONE
    elif truststore := setting(conf, "truststore"):
        try:  # PEM or PKCS12 by the file's content (keytool's default); the declared type is not needed
            load_trust_store(ctx, truststore, setting(conf, "truststore-password"))
        except (OSError, ValueError, ssl.SSLError) as exc:
            conf.error(f"cannot load {truststore}: {exc}", "truststore")
    else:
        ctx.load_default_certs()
    apply_client_protocols(ctx, conf)
    return ctx
