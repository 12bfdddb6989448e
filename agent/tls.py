"""TLS for listening sources (avro, http, syslogtcp, multiport_syslogtcp) and the protocol settings of clients.

Flume's keys are kept: ``ssl``, ``keystore``, ``keystore-password``, ``keystore-type``, ``include-protocols``,
``exclude-protocols``, ``include-cipher-suites``, ``exclude-cipher-suites``, and Flume's global defaults for a key
the component leaves unset: the system property on the command line (``-Djavax.net.ssl.keyStore``,
``keyStorePassword``, ``keyStoreType``, ``trustStore``…, ``-Dflume.ssl.include.protocols``, ``exclude.protocols``,
``include.cipherSuites``, ``exclude.cipherSuites``), else the environment variable (``FLUME_SSL_KEYSTORE_PATH``,
``FLUME_SSL_KEYSTORE_PASSWORD``, ``FLUME_SSL_KEYSTORE_TYPE``, ``FLUME_SSL_TRUSTSTORE_PATH``…,
``FLUME_SSL_INCLUDE_PROTOCOLS``, ``FLUME_SSL_EXCLUDE_PROTOCOLS``, ``FLUME_SSL_INCLUDE_CIPHERSUITES``,
``FLUME_SSL_EXCLUDE_CIPHERSUITES``); global lists may be separated by commas. Key and trust stores are read as
they are, whatever their declared type: JKS, JCEKS and PKCS12 files made by keytool, or PEM (``agent.keystores``).
pyflume adds ``ssl.certificate`` + ``ssl.key`` for separate PEM files.

Without include-protocols, TLSv1.2 and TLSv1.3 are offered (what Java 17, Flume's runtime, enables by default).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Mapping

from agent.keystores import StoreError, certificates_pem, load_store, pem_bundle, store_kind
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
    """What a key or trust store file is, by its first bytes: "JKS", "JCEKS", "PKCS12", "PEM"; None if unreadable.

    keytool writes PKCS12 by default since Java 9, also to files named *.jks with ``keystore-type = JKS`` left in
    the configuration (Java reads them either way), so the file's content decides, not its name or declared type."""
    return store_kind(path)


def load_trust_store(ctx: ssl.SSLContext, path: str, password: str | None) -> None:
    """Trust the certificates of a JKS, JCEKS, PKCS12 or PEM trust store. Raises OSError or ValueError (StoreError)
    with the reason, never the password."""
    if store_kind(path) == "PEM":
        ctx.load_verify_locations(path)
        return
    certs = load_store(path, password).trusted()
    if not certs:
        raise StoreError(f"the trust store {path} holds no certificate")
    ctx.load_verify_locations(cadata=certificates_pem(certs))


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
             "With ssl: the key store file: JKS, JCEKS or PKCS12 made by keytool, or PEM. Unset: "
             "-Djavax.net.ssl.keyStore, else FLUME_SSL_KEYSTORE_PATH (Flume's global settings)."),
        Prop("keystore-password", "str", None,
             "Password of the key store" + (" (also keystorePassword, deprecated)" if deprecated_names else "")
             + "; unset: -Djavax.net.ssl.keyStorePassword, else FLUME_SSL_KEYSTORE_PASSWORD.",
             aliases=("keystorePassword",) if deprecated_names else ()),
        Prop("keystore-type", "str", "JKS",
             "JKS, JCEKS, PKCS12 or PEM (certificate chain and key in one file). The file's content decides when "
             "it can be read, as keytool writes PKCS12 by default (even to a file named *.jks). Unset: "
             "-Djavax.net.ssl.keyStoreType, else FLUME_SSL_KEYSTORE_TYPE."),
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
            conf.error("ssl is true but no key store is set: set keystore (JKS, PKCS12 or PEM) or ssl.certificate "
                       "and ssl.key (PEM files)", "ssl")
        elif found is None and self.keystore.lower().endswith(".pem"):
            self.keystore_type = "PEM"  # not readable yet: go by the name
        elif found is None and self.keystore_type not in ("JKS", "JCEKS", "PKCS12", "PEM"):
            conf.error(f"keystore-type {ktype!r} is not supported; expected JKS, JCEKS, PKCS12 or PEM",
                       "keystore-type")
        elif found is not None:
            self._check_store(conf)
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
                self._load_store(ctx)
        except (OSError, ssl.SSLError, ValueError) as exc:
            where = self.certificate or self.keystore
            raise OSError(f"cannot load the TLS certificate and key from {where}: {exc}") from None
        return ctx

    def _check_store(self, conf: Conf) -> None:
        """At configuration time: the store opens with keystore-password and holds a private key that the same
        password decrypts (Java's key manager uses the store password for the key too)."""
        prop = "keystore-password" if conf.is_set("keystore-password") else "keystore"
        if self.password is None and self.keystore_type != "PEM":
            conf.error(f"keystore-password must be set when ssl is true (it opens the {self.keystore_type} key "
                       "store)", "keystore-password")
            return
        try:
            self._key_and_chain()
        except StoreError as exc:
            conf.error(str(exc), prop)

    def _key_and_chain(self) -> tuple[object, list]:
        assert self.keystore is not None
        key, chain = load_store(self.keystore, self.password).private_key(self.password)
        if not chain:
            raise StoreError(f"{self.keystore}: the private key has no certificate")
        return key, chain

    def _load_store(self, ctx: ssl.SSLContext) -> None:
        key, chain = self._key_and_chain()
        secret = os.urandom(24).hex()
        pem_certs, pem_key = pem_bundle(key, chain, secret.encode())
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


#: The trust keys of a TLS client (the avro and thrift sinks), before ``CLIENT_TLS_PROPS``.
CLIENT_TRUST_PROPS = (
    Prop("ssl", "bool", False, "Connect with TLS."),
    Prop("trust-all-certs", "bool", False, "Do not verify the server's certificate."),
    Prop("truststore", "str", None, "The certificates to trust: a JKS, JCEKS or PKCS12 trust store made by "
         "keytool, or a PEM file (read by content, whatever the file is called). Unset: "
         "-Djavax.net.ssl.trustStore, else FLUME_SSL_TRUSTSTORE_PATH, else the system's CAs."),
    Prop("truststore-password", "str", None, "Password of the trust store (unset: "
         "-Djavax.net.ssl.trustStorePassword, else FLUME_SSL_TRUSTSTORE_PASSWORD)."),
    Prop("truststore-type", "str", "JKS", "Accepted: the file's content says what it is (JKS, JCEKS, PKCS12 or "
         "PEM)."),
)


def client_context(conf: Conf) -> ssl.SSLContext | None:
    """The TLS context of a client configured with ``CLIENT_TRUST_PROPS`` and ``CLIENT_TLS_PROPS``; None without
    ``ssl``. A trust store that cannot be read is a configuration error on ``truststore``."""
    if not conf["ssl"]:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # Flume's clients do not verify host names either
    if conf["trust-all-certs"]:
        ctx.verify_mode = ssl.CERT_NONE
    elif truststore := setting(conf, "truststore"):  # the component's own, else Flume's global one
        try:  # JKS, JCEKS, PKCS12 or PEM by the file's content; the declared type is not needed
            load_trust_store(ctx, truststore, setting(conf, "truststore-password"))
        except (OSError, ValueError, ssl.SSLError) as exc:
            wrong_password = isinstance(exc, StoreError) and "password" in str(exc)
            conf.error(f"cannot load {truststore}: {exc}",
                       "truststore-password" if wrong_password and conf.is_set("truststore-password") else "truststore")
    else:
        ctx.load_default_certs()
    apply_client_protocols(ctx, conf)
    return ctx
