"""Flume's ``kafka.producer.*`` / ``kafka.consumer.*`` pass-through keys, translated for librdkafka.

Flume hands these keys to the Java Kafka client. pyflume's Kafka components use librdkafka (confluent-kafka),
whose configuration shares most names with the Java client (bootstrap.servers, acks, linger.ms, batch.size,
compression.type, security.protocol, sasl.*, fetch.*, session.timeout.ms, ...). The rest is translated here, and a
key that has no librdkafka meaning is reported with what to write instead, so a Flume file either works or says
exactly why not. Shared by the Kafka source, sink and channel.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable

from agent import tls
from agent.keystores import StoreError, certificates_pem, load_store, pem_bundle
from agent.spec import Conf

__all__ = ["client_config", "client_hooks", "java_stores_as_pem", "check_client_config", "consumer_defaults",
           "flush_timeout", "uses_gssapi"]

# Java client keys that mean nothing to librdkafka or are handled by pyflume itself: dropped silently.
_DROPPED = {
    "key.serializer", "value.serializer", "key.deserializer", "value.deserializer",  # bytes/str, as in Flume
    "max.poll.records",  # batches are sized by batchSize here
    "interceptor.classes", "metric.reporters", "partitioner.class",
    "ssl.truststore.type", "ssl.keystore.type", "ssl.protocol", "ssl.enabled.protocols", "ssl.trustmanager.algorithm",
    "ssl.keymanager.algorithm", "sasl.login.class", "sasl.client.callback.handler.class",
}
# Renamed keys: Java name -> librdkafka name (a value translator may follow).
_RENAMED: dict[str, tuple[str, Callable[[str], str] | None]] = {
    "max.request.size": ("message.max.bytes", None),
    "buffer.memory": ("queue.buffering.max.kbytes", lambda v: str(max(1, int(v) // 1024))),
    "sasl.mechanism": ("sasl.mechanisms", None),
    "partition.assignment.strategy": ("partition.assignment.strategy", lambda v: ",".join(
        {"rangeassignor": "range", "roundrobinassignor": "roundrobin",
         "cooperativestickyassignor": "cooperative-sticky"}.get(p.strip().rsplit(".", 1)[-1].lower(), p.strip())
        for p in v.split(","))),
    "ssl.endpoint.identification.algorithm": ("ssl.endpoint.identification.algorithm",
                                              lambda v: v.lower() or "none"),
}
# librdkafka reports some keys by their internal names
# Java key/trust store keys, read by pyflume (agent.keystores) and handed over as PEM in memory
_JAVA_STORE_KEYS = {"ssl.truststore.location", "ssl.truststore.password", "ssl.keystore.location",
                    "ssl.keystore.password", "ssl.key.password"}
_ALIASES = {"request.required.acks": "acks", "queue.buffering.max.ms": "linger.ms",
            "queue.buffering.max.kbytes": "buffer.memory", "message.max.bytes": "max.request.size",
            "sasl.mechanisms": "sasl.mechanism"}
_JAAS = re.compile(r'(username|password)\s*=\s*"((?:[^"\\]|\\.)*)"')



def client_config(conf: Conf, prefix: str, *, component_prop: str | None = None) -> dict[str, str]:
    """The librdkafka settings for the keys under ``prefix`` (``kafka.producer.``), problems recorded on ``conf``."""
    out: dict[str, str] = {}
    stores: dict[str, str] = {}
    for key, raw in conf.sub(prefix).items():
        full = prefix + key
        value = raw.value
        if key in _DROPPED:
            continue
        if key == "ssl.disableTLSHostnameVerification":  # Flume's own switch
            if value.strip().lower() == "true":
                out["ssl.endpoint.identification.algorithm"] = "none"
            continue
        if key == "sasl.jaas.config":
            found = dict(_JAAS.findall(value))
            if "PlainLoginModule" in value or "ScramLoginModule" in value:
                if "username" in found:
                    out["sasl.username"] = found["username"]
                if "password" in found:
                    out["sasl.password"] = found["password"]
                continue
            if "Krb5LoginModule" in value:
                out[_JAAS_KEY] = value  # read with the rest of the Kerberos settings below
                continue
            conf.error("only PLAIN, SCRAM and Kerberos (Krb5LoginModule) JAAS logins can be translated", full)
            continue
        if key in _JAVA_STORE_KEYS:
            stores[key] = value  # read below and handed to librdkafka as PEM in memory
            continue
        if key in _RENAMED:
            name, fn = _RENAMED[key]
            try:
                out[name] = fn(value) if fn else value
            except ValueError:
                conf.error(f"'{value}' is not valid here", full)
            continue
        out[key] = value
    if stores:
        java_stores_as_pem(stores, out, lambda message, key: conf.error(message, prefix + key),
                           missing=lambda message, key: conf.warn(message, prefix + key))
    if out.get("security.protocol", "").upper() in ("SSL", "SASL_SSL"):
        _add_global_ssl(conf, prefix, out)
    jaas = out.pop(_JAAS_KEY, None)
    if uses_gssapi(out):
        from agent.kafka_gssapi import kerberos_settings

        kerberos_settings(conf, prefix, out, jaas)
    return out


_JAAS_KEY = "sasl.jaas.config"


def uses_gssapi(settings: dict[str, object]) -> bool:
    """Whether a client's settings ask for Kerberos: those go through agent.kafka_gssapi, not librdkafka."""
    return str(settings.get("sasl.mechanisms", "")).strip().upper() == "GSSAPI"


def _add_global_ssl(conf: Conf, prefix: str, out: dict[str, str]) -> None:
    """Flume's global SSL settings (-Djavax.net.ssl.*, else FLUME_SSL_*) fill what the client leaves unset, as
    Flume's KafkaSSLUtil does: the key store and the trust store, any kind, read as the client's own are. One that
    cannot be read is a warning: the client connects without it."""
    stores: dict[str, str] = {}
    if not {"ssl.keystore.location", "ssl.certificate.pem", "ssl.certificate.location"} & out.keys():
        if keystore := tls.global_setting("keystore"):
            stores["ssl.keystore.location"] = keystore
            if (password := tls.global_setting("keystore-password")) is not None:
                stores["ssl.keystore.password"] = password
    if not {"ssl.ca.location", "ssl.ca.pem"} & out.keys():
        if truststore := tls.global_setting("truststore"):
            stores["ssl.truststore.location"] = truststore
            if (password := tls.global_setting("truststore-password")) is not None:
                stores["ssl.truststore.password"] = password

    def warn(message: str, key: str) -> None:
        conf.warn(f"Flume's global SSL setting (javax.net.ssl.* / FLUME_SSL_*): {message}; the client connects "
                  "without it", prefix + "security.protocol")

    java_stores_as_pem(stores, out, warn)


def java_stores_as_pem(stores: dict[str, str], out: dict[str, str], problem: Callable[[str, str], None],
                       missing: Callable[[str, str], None] | None = None) -> None:
    """Java's ``ssl.keystore.*`` / ``ssl.truststore.*`` / ``ssl.key.password`` settings as librdkafka's in-memory
    PEM settings (``ssl.certificate.pem``, ``ssl.key.pem``, ``ssl.ca.pem``): the stores are read here, whatever
    their kind (JKS, JCEKS, PKCS12, PEM), and no key is written to disk. ``problem(message, key)`` is told what
    cannot be read, naming the Java key to blame (never a password). With ``missing``, a store that is not a file
    here is only reported to it (a warning at --check, as for the TLS sources) and its path handed to librdkafka,
    whose client then fails to start with the file's name, unless the file is there by then."""
    for key, native in (("ssl.truststore.location", "ssl.ca.location"), ("ssl.keystore.location",
                                                                          "ssl.keystore.location")):
        location = stores.get(key)
        if missing is not None and location and not os.path.exists(location):
            missing(f"{location} is not a file here: the client cannot start until it is", key)
            out[native] = location
            stores.pop(key)
    if location := stores.get("ssl.truststore.location"):
        password = stores.get("ssl.truststore.password")
        try:
            certs = load_store(location, password).trusted()
            if not certs:
                raise StoreError(f"the trust store {location} holds no certificate")
            out["ssl.ca.pem"] = certificates_pem(certs)
        except StoreError as exc:
            problem(str(exc), "ssl.truststore.password" if password and "password" in str(exc)
                    else "ssl.truststore.location")
    if location := stores.get("ssl.keystore.location"):
        password = stores.get("ssl.keystore.password")
        key_password = stores.get("ssl.key.password", password)
        try:
            store = load_store(location, password)
        except StoreError as exc:
            problem(str(exc), "ssl.keystore.password" if password and "password" in str(exc)
                    else "ssl.keystore.location")
            return
        try:
            key, chain = store.private_key(key_password)
        except StoreError as exc:
            problem(str(exc), "ssl.key.password" if "ssl.key.password" in stores else "ssl.keystore.location")
            return
        certs, key_pem = pem_bundle(key, chain)
        out["ssl.certificate.pem"] = certs.decode()
        out["ssl.key.pem"] = key_pem.decode()


def check_client_config(conf: Conf, settings: dict[str, str], kind: str) -> None:
    """Let librdkafka itself refuse unknown names and bad values now, at configuration time, not at start.

    Builds a throw-away client (``kind`` is ``producer`` or ``consumer``) without connecting: bootstrap.servers is
    replaced by an unused placeholder and the client is closed at once.
    """
    if uses_gssapi(settings):
        from agent.kafka_gssapi import check_settings

        check_settings(conf, settings, kind)
        return
    try:
        import confluent_kafka
    except ImportError:
        conf.error("the Kafka components need confluent-kafka (pip install confluent-kafka)")
        return
    probe = dict(settings)
    for key in ("ssl.ca.location", "ssl.keystore.location"):  # a Java store not on this machine: already a warning
        java = {r.value for k, r in conf.prefixed.items() if k.endswith(("ssl.truststore.location",
                                                                           "ssl.keystore.location"))}
        if probe.get(key) in java and not os.path.exists(probe[key]):
            del probe[key]
    probe["bootstrap.servers"] = "127.0.0.1:9"
    probe["log_level"] = "0"
    probe.pop("transactional.id", None)
    if kind == "consumer":
        probe.setdefault("group.id", "probe")
    try:
        client = confluent_kafka.Producer(probe) if kind == "producer" else confluent_kafka.Consumer(probe)
    except (confluent_kafka.KafkaException, ValueError, TypeError) as exc:
        msg = str(exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else exc)
        m = re.search(r'property:? "([^"]+)"', msg)
        key = _ALIASES.get(m.group(1), m.group(1)) if m else None
        prop = next((k for k in conf.prefixed if key and k.endswith("." + key)), None)
        conf.error(f"librdkafka refuses the {kind} settings: {msg}", prop)
        return
    if kind == "consumer":
        client.close()


def client_hooks(log: logging.Logger, what: str, settings: dict[str, str],
                 note: Callable[[object], None] | None = None) -> dict[str, object]:
    """Callbacks for a librdkafka client: errors logged once per 10 s per kind (a broker that is down produces a
    connection error every few milliseconds) and passed to ``note`` (see agent.kafka_clients), librdkafka's own
    log at warning level and above into ``log``."""
    from agent.core import _rate_limited

    def on_error(err) -> None:  # noqa: ANN001 - librdkafka's KafkaError
        if note is not None:
            note(err)
        _rate_limited(log, f"{what}: {err.name()}: {err.str()}")

    hooks: dict[str, object] = {"error_cb": on_error, "logger": _LibrdkafkaLog(log.getChild("librdkafka"))}
    if "log_level" not in settings:
        hooks["log_level"] = 4  # syslog warning; librdkafka's errors also reach error_cb
    return hooks


class _LibrdkafkaLog:
    """librdkafka's own log lines, at most one per 10 s per facility and client: a broker that is down makes
    librdkafka log a connection failure (``FAIL``) every few hundred milliseconds."""

    def __init__(self, logger: logging.Logger, every: float = 10.0):
        self.logger = logger
        self.every = every
        self._last: dict[tuple[int, str], float] = {}

    def log(self, level: int, fmt: str, *args: object) -> None:
        key = (level, str(args[0]) if args else fmt)  # confluent-kafka passes (facility, client name, message)
        now = time.monotonic()
        if now - self._last.get(key, -self.every) >= self.every:
            self._last[key] = now
            self.logger.log(level, fmt, *args)


def consumer_defaults(settings: dict[str, str]) -> None:
    """Prefetch settings for a consumer whose records are handled in Python, unless the user set them.

    librdkafka fetches ahead until ``queued.min.messages`` are queued, then waits ``fetch.queue.backoff.ms``
    (default 1 s) before fetching again. A Python consumer drains 100,000 queued records in well under a second and
    would then sit idle for the rest of it: measured on this machine, 150k records/s with the defaults, 1.1M with a
    10 ms backoff and a 20,000-record queue (which also holds less memory).
    """
    settings.setdefault("fetch.queue.backoff.ms", "10")
    settings.setdefault("queued.min.messages", "20000")


def flush_timeout(settings: dict[str, str]) -> float:
    """How long a producer flush may wait: a little longer than librdkafka takes to fail a record
    (message.timeout.ms, 300 s by default; Java's delivery.timeout.ms accepted), so that when flush returns every
    record has its delivery report."""
    ms = settings.get("message.timeout.ms") or settings.get("delivery.timeout.ms") or "300000"
    return int(ms) / 1000.0 + 5.0

