"""Kafka over Kerberos (``sasl.mechanism = GSSAPI``): kafka-python clients behind confluent-kafka's interface.

confluent-kafka's wheels bundle a librdkafka built without Cyrus SASL, so it cannot speak GSSAPI; Debian's librdkafka
is older than confluent-kafka accepts. A client whose settings ask for GSSAPI is therefore a kafka-python client
(pure Python, maintained; its SASL mechanism here is pyflume's own, using the ``gssapi`` package on the private
credential cache of agent.kerberos). The Kafka source, sink and channel do not know which client they hold:
``Producer`` and ``Consumer`` here take the same settings (librdkafka's names, as agent.kafka_conf makes them) and
offer the calls of confluent-kafka's classes the components use (produce / flush / poll; subscribe / consume /
commit / close), so each component keeps one code path and its at-least-once rules (the sink commits its channel
transaction after every delivery report; the source and channel commit offsets after the channel commit).

Principal and keytab come from the JAAS login Flume users already have: ``kafka.*.sasl.jaas.config`` (a
``Krb5LoginModule`` line), else the ``KafkaClient`` section of ``-Djava.security.auth.login.config=FILE`` (on the
agent's command line or in ``JAVA_OPTS``); with ``useKeyTab=true`` the agent logs in from the keytab into a private
cache (agent.kerberos: renewal, backoff, one principal per agent). Without a keytab login the client uses the default
ticket cache (``KRB5CCNAME``), as ``useTicketCache=true`` does in Java.
"""

from __future__ import annotations

import logging
import os
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent import kerberos
from agent.spec import Conf

__all__ = ["Consumer", "Producer", "check_settings", "identities", "kerberos_settings", "translate"]

log = logging.getLogger("agent.kafka_gssapi")

_IDENTITY = "pyflume.kerberos.identity"  # the checked agent.kerberos.Identity, when the login uses a keytab
_KRB5 = "Krb5LoginModule"


# Configuration ---------------------------------------------------------------------------------------------------
def _prop(conf: Conf, prefix: str, *names: str) -> str | None:
    """The full name of the first of ``names`` set under ``prefix`` (the line to blame), if any."""
    for name in names:
        if prefix + name in conf.prefixed:
            return prefix + name
    return None


def kerberos_settings(conf: Conf, prefix: str, out: dict, jaas: str | None) -> None:
    """Check a GSSAPI client's Kerberos settings and add the login to ``out`` (see module). Problems go to ``conf``
    at the ``sasl.jaas.config`` line, or at ``sasl.mechanism`` when the JAAS file is to blame (naming its line)."""
    mech = _prop(conf, prefix, "sasl.mechanism", "sasl.mechanisms")
    if str(out.get("security.protocol", "")).upper() not in ("SASL_PLAINTEXT", "SASL_SSL"):
        conf.error(f"sasl.mechanism GSSAPI needs security.protocol = SASL_PLAINTEXT or SASL_SSL (it is "
                   f"'{out.get('security.protocol', 'PLAINTEXT')}')", _prop(conf, prefix, "security.protocol") or mech)
    if jaas is not None:
        blame = prefix + "sasl.jaas.config"
        try:
            entries = kerberos.parse_jaas("KafkaClient {\n" + jaas.rstrip().rstrip(";") + ";\n};", blame)["KafkaClient"]
        except kerberos.JaasError as exc:
            conf.error(f"not a JAAS login module line: {exc}", blame)
            return
        where = lambda entry, key: blame  # noqa: E731
    else:
        path = kerberos.jaas_file()
        blame = mech
        if path is None:
            conf.warn("no JAAS login for Kerberos (neither -Djava.security.auth.login.config=FILE with a KafkaClient "
                      f"section nor {prefix}sasl.jaas.config): the client uses the default ticket cache "
                      "(KRB5CCNAME), as useTicketCache=true does; see docs/kerberos.md#kafka-gssapi", mech)
            _service_name(conf, prefix, out, {}, mech)
            return
        try:
            entries = kerberos.jaas_section(path, "KafkaClient")
        except kerberos.JaasError as exc:
            conf.error(f"-Djava.security.auth.login.config: {exc}", mech)
            return
        if entries is None:
            conf.error(f"the JAAS file {path} has no KafkaClient section, which the Kafka clients log in with",
                       mech)
            return
        where = lambda entry, key: entry.lines.get(key, entry.where) + ", KafkaClient"  # noqa: E731
    entry = next((e for e in entries if e.module.endswith(_KRB5)), None)
    if entry is None:
        conf.error(f"the KafkaClient login has no {_KRB5}, which sasl.mechanism GSSAPI needs", blame)
        return
    opts = entry.options
    _service_name(conf, prefix, out, opts, blame)
    if opts.get("useKeyTab", "false").lower() != "true":
        if opts.get("useTicketCache", "false").lower() != "true":
            conf.error(f"{_KRB5} with neither useKeyTab=true nor useTicketCache=true would ask for a password, which "
                       "an agent cannot type: set useKeyTab=true, keyTab and principal", blame)
        return  # the default ticket cache, as Java's useTicketCache
    principal, keytab = opts.get("principal", "").strip(), opts.get("keyTab", "").strip()
    if not principal or not keytab:
        missing = "principal" if not principal else "keyTab"
        conf.error(f"useKeyTab=true ({where(entry, 'useKeyTab')}) needs {missing} too", blame)
        return
    ident = kerberos.checked_identity(conf, principal, keytab, blame, blame,
                                      f"principal ({where(entry, 'principal')})", f"keyTab ({where(entry, 'keyTab')})")
    if ident is not None:
        out[_IDENTITY] = ident
        out["sasl.kerberos.principal"] = ident.principal
        out["sasl.kerberos.keytab"] = ident.keytab


def _service_name(conf: Conf, prefix: str, out: dict, opts: dict[str, str], blame: str | None) -> None:
    """The broker's service name: sasl.kerberos.service.name, else the JAAS serviceName; Kafka's Java client
    refuses to start without one, so does --check."""
    if not out.get("sasl.kerberos.service.name"):
        if opts.get("serviceName"):
            out["sasl.kerberos.service.name"] = opts["serviceName"]
        else:
            conf.error("set sasl.kerberos.service.name (the brokers' principal name, usually 'kafka'): Kafka's "
                       f"client needs it, as in Flume ({prefix}sasl.kerberos.service.name)", blame)


def identities(*settings: dict) -> list[kerberos.Identity]:
    """The keytab logins of these clients' settings (for the one-principal-per-agent rule)."""
    out: list[kerberos.Identity] = []
    for s in settings:
        ident = s.get(_IDENTITY)
        if ident is not None and ident not in out:
            out.append(ident)
    return out


def _ms(v: str) -> int:
    return int(v)


def _bool(v: str) -> bool:
    if str(v).lower() not in ("true", "false"):
        raise ValueError(v)
    return str(v).lower() == "true"


def _acks(v: str) -> int:
    return -1 if v.strip().lower() == "all" else int(v)


def _reset(v: str) -> str:
    v = v.strip().lower()
    out = {"smallest": "earliest", "beginning": "earliest", "largest": "latest", "end": "latest"}.get(v, v)
    if out not in ("earliest", "latest"):
        raise ValueError(v)
    return out


def _compression(v: str) -> str | None:
    v = v.strip().lower()
    if v not in ("none", "gzip", "snappy", "lz4", "zstd"):
        raise ValueError(v)
    return None if v == "none" else v


def _assignors(v: str) -> tuple:
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    known = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
             "sticky": StickyPartitionAssignor, "stickyassignor": StickyPartitionAssignor}
    return tuple(known[p.strip().lower()] for p in v.split(",") if p.strip())


# librdkafka name (as agent.kafka_conf writes it) -> (kafka-python option, converter); both client kinds
_COMMON: dict[str, tuple[str, Callable]] = {
    "bootstrap.servers": ("bootstrap_servers", lambda v: [s.strip() for s in v.split(",") if s.strip()]),
    "client.id": ("client_id", str),
    "security.protocol": ("security_protocol", lambda v: v.strip().upper()),
    "sasl.mechanisms": ("sasl_mechanism", lambda v: v.strip().upper()),
    "sasl.kerberos.service.name": ("sasl_kerberos_service_name", str),
    "request.timeout.ms": ("request_timeout_ms", _ms),
    "retry.backoff.ms": ("retry_backoff_ms", _ms),
    "reconnect.backoff.ms": ("reconnect_backoff_ms", _ms),
    "reconnect.backoff.max.ms": ("reconnect_backoff_max_ms", _ms),
    "metadata.max.age.ms": ("metadata_max_age_ms", _ms),
    "topic.metadata.refresh.interval.ms": ("metadata_max_age_ms", _ms),
    "connections.max.idle.ms": ("connections_max_idle_ms", _ms),
    "receive.buffer.bytes": ("receive_buffer_bytes", int),
    "send.buffer.bytes": ("send_buffer_bytes", int),
    "max.in.flight.requests.per.connection": ("max_in_flight_requests_per_connection", int),
    "ssl.cipher.suites": ("ssl_ciphers", str),
}
_PRODUCER: dict[str, tuple[str, Callable]] = {
    "acks": ("acks", _acks),
    "linger.ms": ("linger_ms", _ms),
    "batch.size": ("batch_size", int),
    "compression.type": ("compression_type", _compression),
    "message.max.bytes": ("max_request_size", int),
    "retries": ("retries", int),
    "delivery.timeout.ms": ("delivery_timeout_ms", _ms),
    "message.timeout.ms": ("delivery_timeout_ms", _ms),
    "enable.idempotence": ("enable_idempotence", _bool),
    "max.block.ms": ("max_block_ms", _ms),
}
_CONSUMER: dict[str, tuple[str, Callable]] = {
    "group.id": ("group_id", str),
    "group.instance.id": ("group_instance_id", str),
    "auto.offset.reset": ("auto_offset_reset", _reset),
    "enable.auto.commit": ("enable_auto_commit", _bool),
    "session.timeout.ms": ("session_timeout_ms", _ms),
    "heartbeat.interval.ms": ("heartbeat_interval_ms", _ms),
    "max.poll.interval.ms": ("max_poll_interval_ms", _ms),
    "fetch.min.bytes": ("fetch_min_bytes", int),
    "fetch.max.bytes": ("fetch_max_bytes", int),
    "fetch.wait.max.ms": ("fetch_max_wait_ms", _ms),
    "fetch.max.wait.ms": ("fetch_max_wait_ms", _ms),
    "max.partition.fetch.bytes": ("max_partition_fetch_bytes", int),
    "isolation.level": ("isolation_level", lambda v: v.strip().lower()),
    "check.crcs": ("check_crcs", _bool),
    "partition.assignment.strategy": ("partition_assignment_strategy", _assignors),
}
# librdkafka tuning that has no kafka-python counterpart and changes nothing a Flume user relies on
_IGNORED = {"enable.auto.offset.store", "fetch.queue.backoff.ms", "queued.min.messages", "delivery.report.only.error",
            "log_level", "queue.buffering.max.kbytes", "sasl.kerberos.principal", "sasl.kerberos.keytab",
            "sasl.kerberos.kinit.cmd", "sasl.kerberos.min.time.before.relogin", _IDENTITY}
_SSL = {"ssl.ca.pem", "ssl.ca.location", "ssl.certificate.pem", "ssl.key.pem", "ssl.certificate.location",
        "ssl.key.location", "ssl.key.password", "ssl.endpoint.identification.algorithm", "ssl.keystore.location"}
# Java names for the error messages (agent.kafka_conf renamed them)
_JAVA = {"sasl.mechanisms": "sasl.mechanism", "message.max.bytes": "max.request.size",
         "queue.buffering.max.kbytes": "buffer.memory", "ssl.ca.location": "ssl.truststore.location",
         "ssl.ca.pem": "ssl.truststore.location", "ssl.certificate.pem": "ssl.keystore.location",
         "ssl.key.pem": "ssl.keystore.location"}


def translate(settings: dict, kind: str) -> tuple[dict, list[tuple[str, str]]]:
    """kafka-python's options for librdkafka-style ``settings`` of a ``kind`` ("producer" or "consumer") client,
    and the (key, message) problems of the settings it cannot honour."""
    table = {**_COMMON, **(_PRODUCER if kind == "producer" else _CONSUMER)}
    opts: dict = {}
    problems: list[tuple[str, str]] = []
    for key, value in settings.items():
        if key in _IGNORED or key in _SSL or not isinstance(key, str) or callable(value):
            continue
        if key == "transactional.id":
            problems.append((key, "transactions are not available with Kerberos (GSSAPI) here; remove it"))
            continue
        if key not in table:
            problems.append((key, f"kafka-python, the client pyflume uses for Kerberos (GSSAPI), has no "
                                  f"{kind} setting '{_JAVA.get(key, key)}'; remove it (see "
                                  "docs/kerberos.md#kafka-gssapi)"))
            continue
        name, convert = table[key]
        try:
            opts[name] = convert(str(value) if not isinstance(value, bool) else str(value).lower())
        except (ValueError, KeyError, TypeError):
            problems.append((key, f"'{value}' is not a valid value here"))
    if str(settings.get("security.protocol", "")).upper() == "SASL_SSL":
        try:
            opts["ssl_context"] = _ssl_context(settings)
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(("ssl.ca.location", f"the TLS settings cannot be used: {exc}"))
    if kind == "consumer":
        opts["enable_auto_commit"] = False
    else:
        opts.setdefault("enable_idempotence", False)  # librdkafka's default (kafka-python's is true)
    return opts, problems


def _ssl_context(settings: dict) -> ssl.SSLContext:
    """A client TLS context from librdkafka's settings: CA and client certificate as PEM (in memory, as
    agent.kafka_conf hands them over, or files), host name checks unless turned off."""
    ctx = ssl.create_default_context(cafile=settings.get("ssl.ca.location"), cadata=settings.get("ssl.ca.pem"))
    if str(settings.get("ssl.endpoint.identification.algorithm", "https")).lower() == "none":
        ctx.check_hostname = False
    if settings.get("ssl.keystore.location"):  # a Java key store that was not there at configuration time
        raise ValueError(f"the key store {settings['ssl.keystore.location']} is not a file here")
    cert, key = settings.get("ssl.certificate.pem"), settings.get("ssl.key.pem")
    if cert and key:
        # Python's ssl loads a key only from a file: one readable by this user alone, removed at once
        with tempfile.TemporaryDirectory(prefix="pyflume-tls-") as d:
            path = Path(d) / "client.pem"
            path.touch(mode=0o600)
            path.write_text(key + "\n" + cert)
            ctx.load_cert_chain(str(path))
    elif settings.get("ssl.certificate.location"):
        ctx.load_cert_chain(settings["ssl.certificate.location"], settings.get("ssl.key.location"),
                            settings.get("ssl.key.password"))
    return ctx


def check_settings(conf: Conf, settings: dict, kind: str) -> None:
    """--check for a GSSAPI client: kafka-python and gssapi importable, every setting translatable."""
    mech = next((k for k in conf.prefixed if k.endswith((".sasl.mechanism", ".sasl.mechanisms"))), None)
    try:
        import gssapi  # noqa: F401
        import kafka  # noqa: F401
    except ImportError as exc:
        conf.error(f"Kafka with Kerberos (GSSAPI) needs kafka-python and gssapi ({exc}): pip install "
                   "'pyflume-agent[kerberos]'", mech)
        return
    probe = dict(settings)
    java = {r.value for k, r in conf.prefixed.items() if k.endswith(("ssl.truststore.location",
                                                                       "ssl.keystore.location"))}
    for key in ("ssl.ca.location", "ssl.keystore.location"):  # a Java store not on this machine: already a warning
        if probe.get(key) in java and not os.path.exists(probe[key]):
            del probe[key]
    _, problems = translate(probe, kind)
    for key, message in problems:
        java = _JAVA.get(key, key)
        prop = next((k for k in conf.prefixed if k.endswith("." + java) or k.endswith("." + key)), mech)
        conf.error(message, prop)


# SASL/GSSAPI --------------------------------------------------------------------------------------------------
_active: list[kerberos.Login] = []  # the agent's keytab login (one principal per agent), newest last
_active_lock = threading.Lock()


def _credentials():  # noqa: ANN202
    """The initiator credentials: the keytab login's private cache, or the default cache without one."""
    import gssapi

    with _active_lock:
        login = _active[-1] if _active else None
    if login is None:
        return None
    cache = login.ensure()  # KerberosLoginError: this connection attempt fails, kafka-python retries with backoff
    name = gssapi.Name(login.principal, gssapi.NameType.kerberos_principal)
    return gssapi.Credentials(name=name, usage="initiate", store={"ccache": cache})


def _mechanism():  # noqa: ANN202
    from kafka.net.sasl.abc import SaslMechanism

    class Gssapi(SaslMechanism):
        """RFC 4752 over Kafka's SASL exchange: context tokens, then the security layer reply (authentication
        only, no authorization id, as Kafka's Java client sends it)."""

        def __init__(self, **config):  # noqa: ANN003
            import gssapi

            host = config.get("sasl_kerberos_domain_name") or config.get("host") or "localhost"
            self.target = f"{config.get('sasl_kerberos_service_name') or 'kafka'}@{host}"
            name = gssapi.Name(self.target, gssapi.NameType.hostbased_service)
            self.ctx = gssapi.SecurityContext(name=name, creds=_credentials(), usage="initiate")
            self.token: bytes = self.ctx.step(None) or b""
            self.last = False  # the security layer reply is the next (last) token
            self.sent_last = False
            self.done = False

        def auth_bytes(self) -> bytes:
            if self.last:
                self.sent_last = True
            return self.token

        def receive(self, auth_bytes: bytes) -> None:
            if self.sent_last:
                self.done = True
            elif not self.ctx.complete:
                self.token = self.ctx.step(auth_bytes) or b""
            elif not auth_bytes:
                self.token = b""
            else:
                offer = self.ctx.unwrap(auth_bytes).message
                if len(offer) != 4 or not offer[0] & 1:
                    raise ValueError("the broker offers no SASL security layer without protection")
                self.token = self.ctx.wrap(struct.pack(">B", 1) + offer[1:], False).message
                self.last = True

        def is_done(self) -> bool:
            return self.done

        def is_authenticated(self) -> bool:
            return self.done

        def auth_details(self) -> str:
            return f"Kerberos (GSSAPI) as {self.ctx.initiator_name} to {self.target}"

    return Gssapi


_registered: list[bool] = []


class _Quiet(logging.Handler):
    """kafka-python's own log lines, each logger and level at most once per 10 s, passed on to the agent's
    handlers: a broker or KDC that cannot be reached makes it log every reconnect attempt, many times a second."""

    EVERY = 10.0

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[tuple[str, int], float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = (record.name, record.levelno)
        now = time.monotonic()
        if now - self._last.get(key, -self.EVERY) >= self.EVERY:
            self._last[key] = now
            logging.getLogger().handle(record)


def _register() -> None:
    if not _registered:
        from kafka.net.sasl import register_sasl_mechanism

        register_sasl_mechanism("GSSAPI", _mechanism(), overwrite=True)
        kafka_log = logging.getLogger("kafka")
        if kafka_log.level == logging.NOTSET:  # as librdkafka's log: warnings and above, unless set otherwise
            kafka_log.setLevel(logging.WARNING)
        kafka_log.addHandler(_Quiet())
        kafka_log.propagate = False
        _registered.append(True)


class _Login:
    """A client's hold on the agent's keytab login (released when the client closes)."""

    def __init__(self, settings: dict):
        _register()
        ident = settings.get(_IDENTITY)
        self.login = kerberos.login(ident) if ident is not None else None
        if self.login is not None:
            with _active_lock:
                _active.append(self.login)

    def release(self) -> None:
        if self.login is not None:
            with _active_lock:
                _active.remove(self.login)
            kerberos.release(self.login)
            self.login = None


# confluent-kafka's interface ------------------------------------------------------------------------------------
class _Error:
    """What confluent-kafka's KafkaError offers the components: ``str()``, ``name()``, ``code()``."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def str(self) -> str:
        return str(self.exc) or type(self.exc).__name__

    def name(self) -> str:
        return type(self.exc).__name__

    def code(self) -> int:
        return -1


class _Message:
    """A consumed record with confluent-kafka's Message accessors."""

    __slots__ = ("r",)

    def __init__(self, record):  # noqa: ANN001
        self.r = record

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self.r.topic

    def partition(self) -> int:
        return self.r.partition

    def offset(self) -> int:
        return self.r.offset

    def value(self) -> bytes | None:
        return self.r.value

    def key(self) -> bytes | None:
        return self.r.key

    def timestamp(self) -> tuple[int, int]:
        return (1, self.r.timestamp)

    def headers(self) -> list[tuple[str, bytes]] | None:
        return list(self.r.headers) or None


class _Sent:
    __slots__ = ("t",)

    def __init__(self, topic: str):
        self.t = topic

    def topic(self) -> str:
        return self.t


def _split_hooks(config: dict) -> tuple[dict, dict]:
    hooks = {k: config[k] for k in ("on_delivery", "error_cb", "logger", "log_level", "on_commit") if k in config}
    return {k: v for k, v in config.items() if k not in hooks}, hooks


class _Lazy:
    """Builds the kafka-python client on first use, not at start: its constructor waits for a broker (up to
    BOOTSTRAP seconds) and raises when none answers. While no broker answers, ``client()`` gives None at once for
    RETRY seconds after a failed try; the failure goes to librdkafka's ``error_cb`` hook (logged once per 10 s)."""

    BOOTSTRAP = 10.0
    RETRY = 2.0

    def __init__(self, config: dict, kind: str):
        settings, self.hooks = _split_hooks(config)
        opts, problems = translate(settings, kind)
        if problems:
            raise ValueError("; ".join(f"{k}: {m}" for k, m in problems))
        opts.setdefault("bootstrap_timeout_ms", int(self.BOOTSTRAP * 1000))
        self.opts = opts
        self.kind = kind
        self._login = _Login(settings)
        self._client = None
        self._retry_at = 0.0

    def _build(self):  # noqa: ANN202
        raise NotImplementedError

    def client(self):  # noqa: ANN201
        if self._client is None and time.monotonic() >= self._retry_at:
            try:
                self._client = self._build()
            except Exception as exc:  # noqa: BLE001 - KafkaTimeoutError: no broker answered; login failures
                self._retry_at = time.monotonic() + self.RETRY
                error_cb = self.hooks.get("error_cb")
                if error_cb is not None:
                    error_cb(_Error(exc))
                else:
                    log.warning("Kafka %s (GSSAPI): %s", self.kind, exc)
        return self._client

    def release(self) -> None:
        self._login.release()


class Producer(_Lazy):
    """A kafka-python producer with the calls of confluent_kafka.Producer the sink and channel make: ``produce``
    (never blocks on a full queue: kafka-python waits inside send), ``flush(timeout)`` giving the number of records
    without a delivery report yet, ``on_delivery(err, msg)`` for failed records only."""

    def __init__(self, config: dict):
        super().__init__(config, "producer")
        self._on_delivery = self.hooks.get("on_delivery")
        self._pending: list = []

    def _build(self):  # noqa: ANN202
        from kafka import KafkaProducer

        return KafkaProducer(**self.opts)

    def _failed(self, topic: str, exc: BaseException) -> None:
        if self._on_delivery is not None:
            self._on_delivery(_Error(exc), _Sent(topic))

    def produce(self, topic: str, value: bytes | None = None, key: str | bytes | None = None, *, partition=None,
                timestamp=None, headers=None) -> None:  # noqa: ANN001
        kp = self.client()
        if kp is None:
            self._failed(topic, ConnectionError("no Kafka broker answered (see the log above)"))
            return
        if isinstance(key, str):
            key = key.encode()
        try:
            future = kp.send(topic, value=value, key=key, headers=headers, partition=partition,
                             timestamp_ms=timestamp)
        except Exception as exc:  # noqa: BLE001 - metadata not available in max.block.ms, record too large, ...
            self._failed(topic, exc)
            return
        future.add_errback(lambda exc, t=topic: self._failed(t, exc))
        self._pending.append(future)

    def _left(self) -> int:
        self._pending = [f for f in self._pending if not f.is_done]
        return len(self._pending)

    def flush(self, timeout: float | None = None) -> int:
        from kafka.errors import KafkaTimeoutError

        if self._pending and self._client is not None:
            try:
                self._client.flush(timeout=timeout)
            except KafkaTimeoutError:
                pass
        return self._left()

    def poll(self, timeout: float = 0) -> int:
        return 0

    def purge(self) -> None:
        self._pending = []

    def __len__(self) -> int:
        return self._left()

    def shutdown(self, timeout: float = 5.0) -> None:
        try:
            if self._client is not None:
                self._client.close(timeout=timeout)
        finally:
            self.release()


class Consumer(_Lazy):
    """A kafka-python consumer with the calls of confluent_kafka.Consumer the source and channel make:
    ``subscribe(topics, on_revoke=)`` (a name starting with ``^`` is a pattern), ``consume(n, timeout)``,
    ``commit(offsets=[TopicPartition], asynchronous=True)`` reporting failures to ``on_commit``, ``close``."""

    def __init__(self, config: dict):
        super().__init__(config, "consumer")
        self._on_commit = self.hooks.get("on_commit")
        self._subscription: tuple[list[str], object] | None = None
        self._last: dict = {}  # the offsets of the newest commit request, committed again (waiting) at close

    def _build(self):  # noqa: ANN202
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        kc = KafkaConsumer(**self.opts)
        if self._subscription is not None:
            topics, on_revoke = self._subscription
            owner = self

            class Listener(ConsumerRebalanceListener):
                def on_partitions_revoked(self, revoked) -> None:  # noqa: ANN001
                    if on_revoke is not None and revoked:
                        on_revoke(owner, list(revoked))

                def on_partitions_assigned(self, assigned) -> None:  # noqa: ANN001
                    pass

            if len(topics) == 1 and topics[0].startswith("^"):
                kc.subscribe(pattern=topics[0], listener=Listener())
            else:
                kc.subscribe(topics=topics, listener=Listener())
        return kc

    def subscribe(self, topics: list[str], on_revoke=None) -> None:  # noqa: ANN001
        """Remembered, and made when the client is built (at the first consume)."""
        self._subscription = (list(topics), on_revoke)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[_Message]:
        kc = self.client()
        if kc is None:
            time.sleep(max(min(timeout, self.RETRY), 0))
            return []
        batches = kc.poll(timeout_ms=max(int(timeout * 1000), 0), max_records=num_messages)
        return [_Message(r) for records in batches.values() for r in records]

    def commit(self, offsets=None, asynchronous: bool = True) -> None:  # noqa: ANN001
        from kafka import OffsetAndMetadata, TopicPartition

        kc = self._client
        if kc is None:
            return  # nothing was read by this consumer
        wanted = {TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(tp.offset, "", -1) for tp in offsets or ()}
        self._last.update(wanted)
        on_commit = self._on_commit

        def done(_offsets, response) -> None:  # noqa: ANN001
            if isinstance(response, BaseException) and on_commit is not None:
                on_commit(_Error(response), None)

        if asynchronous:
            kc.commit_async(offsets=wanted, callback=done)
        else:
            kc.commit(offsets=wanted)

    def assignment(self) -> list:
        return list(self._client.assignment()) if self._client is not None else []

    def close(self) -> None:
        try:
            kc = self._client
            if kc is not None:
                if self._last:
                    try:
                        kc.commit(offsets=dict(self._last), timeout_ms=5000)
                    except Exception as exc:  # noqa: BLE001 - the records are read again (at-least-once)
                        log.debug("the last offsets could not be committed at close: %s", exc)
                kc.close(autocommit=False)
        finally:
            self.release()
