"""Apache Kafka (tests/peers/kafka.py) with a Kerberos listener: SASL_PLAINTEXT with GSSAPI only, on loopback.

The broker logs in as ``kafka/localhost@REALM`` from its own keytab (the ``KafkaServer`` section of a JAAS file given
with ``-Djava.security.auth.login.config``, as Kafka's documentation sets a broker up) and advertises the listener as
``localhost``, the host of its service principal, so clients ask the KDC for ``kafka/localhost``. The PLAINTEXT
listener on 127.0.0.1 stays for the broker's own use and the tests' topic administration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import free_port
from .kafka import KafkaBroker

__all__ = ["SecureKafka", "start"]

SERVICE = "kafka"


@dataclass
class SecureKafka:
    broker: KafkaBroker
    port: int  # the SASL_PLAINTEXT (GSSAPI) listener
    keytab: Path  # kafka/localhost's
    jaas: Path  # the broker's JAAS file
    ssl_port: int | None = None  # the SASL_SSL (GSSAPI over TLS) listener, with ``ssl_keystore``

    @property
    def bootstrap(self) -> str:
        """The Kerberos listener, by the host name of the broker's service principal."""
        return f"localhost:{self.port}"

    @property
    def ssl_bootstrap(self) -> str:
        """The Kerberos listener over TLS (the key store's certificate names localhost)."""
        return f"localhost:{self.ssl_port}"

    def stop(self) -> None:
        self.broker.stop()


def start(workdir: Path, kdc, ssl_keystore: Path | None = None) -> SecureKafka:  # noqa: ANN001 - peers.kdc.KDC
    """A broker with a GSSAPI listener whose principal and keytab are made in ``kdc``'s realm; with
    ``ssl_keystore`` (a JKS of tests/peers/keytool.py) a SASL_SSL listener too."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    principal = kdc.principal(f"{SERVICE}/localhost")
    keytab = kdc.add(f"{SERVICE}/localhost", workdir / "kafka.keytab")
    jaas = workdir / "kafka_server_jaas.conf"
    jaas.write_text("KafkaServer {\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n"
                    f'  storeKey=true\n  keyTab="{keytab}"\n  principal="{principal}";\n}};\n')
    port = free_port()
    props = {
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "advertised.listeners": f"SASL_PLAINTEXT://localhost:{port}",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "GSSAPI",
        "sasl.kerberos.service.name": SERVICE,
    }
    ssl_port = None
    if ssl_keystore is not None:
        from .keytool import STOREPASS

        ssl_port = free_port()
        props["listeners"] += f",SASL_SSL://127.0.0.1:{ssl_port}"
        props["advertised.listeners"] += f",SASL_SSL://localhost:{ssl_port}"
        props["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
        props.update({"ssl.keystore.location": str(ssl_keystore), "ssl.keystore.type": "JKS",
                      "ssl.keystore.password": STOREPASS, "ssl.key.password": "keypass1"})
    jvm = [f"-Djava.security.krb5.conf={kdc.krb5_conf}", f"-Djava.security.auth.login.config={jaas}",
           "-Dsun.security.krb5.disableReferrals=true"]
    broker = KafkaBroker(workdir / "broker", extra_props=props, jvm=jvm).start()
    return SecureKafka(broker, port, keytab, jaas, ssl_port)
