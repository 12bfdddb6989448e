"""Apache Kafka 3.7.1 in KRaft mode (one node is broker and controller, no ZooKeeper) as a real peer.

The broker can be stopped and started again on the same log directory and ports, which is what the tests of
"a broker restarted mid-stream loses nothing" need.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from . import free_port, maven, stop_group

__all__ = ["KAFKA_VERSION", "KafkaBroker", "classpath"]

KAFKA_VERSION = "3.7.1"
ARTIFACTS = [f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}", "org.slf4j:slf4j-reload4j:1.7.36"]


def classpath() -> str:
    return str(maven.resolve(f"kafka-{KAFKA_VERSION}", ARTIFACTS) / "lib" / "*")


class KafkaBroker:
    """One KRaft node listening on loopback; ``bootstrap`` is its ``host:port``."""

    def __init__(self, workdir: Path, port: int | None = None, partitions: int = 1,
                 ssl_keystore: Path | None = None, extra_props: dict[str, str] | None = None,
                 jvm: list[str] | None = None):
        # extra_props: more broker settings; a "listeners" / "advertised.listeners" /
        # "listener.security.protocol.map" value there is appended to this class's own
        self.extra_props = dict(extra_props or {})
        self.jvm = list(jvm or [])
        self.workdir = Path(workdir)
        self.port = port or free_port()
        # an SSL listener too, with this keytool key store (tests/peers/keytool.py: its passwords)
        self.ssl_keystore = ssl_keystore
        self.ssl_port = free_port() if ssl_keystore else None
        self.controller_port = free_port()
        self.partitions = partitions
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "kafka.log"
        self._formatted = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ssl_bootstrap(self) -> str:
        """The SSL listener's ``host:port`` (with ``ssl_keystore``)."""
        return f"127.0.0.1:{self.ssl_port}"

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": str(self.partitions),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.flush.interval.messages": "9223372036854775807",
        }
        if self.ssl_keystore is not None:
            from .keytool import STOREPASS

            props["listeners"] += f",SSL://127.0.0.1:{self.ssl_port}"
            props["advertised.listeners"] += f",SSL://127.0.0.1:{self.ssl_port}"
            props["listener.security.protocol.map"] += ",SSL:SSL"
            props.update({"ssl.keystore.location": str(self.ssl_keystore), "ssl.keystore.type": "JKS",
                          "ssl.keystore.password": STOREPASS, "ssl.key.password": "keypass1"})
        for key, value in self.extra_props.items():
            joined = key in ("listeners", "advertised.listeners", "listener.security.protocol.map")
            props[key] = f"{props[key]},{value}" if joined else value
        conf = self.workdir / "server.properties"
        conf.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        log4j = self.workdir / "log4j.properties"
        log4j.write_text("log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
                         "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
                         "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
                         "log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=WARN\n"
                         "log4j.logger.state.change.logger=WARN\nlog4j.logger.kafka.log=WARN\n")
        return conf

    def _java(self, main: str, args: list[str], heap: str = "512m") -> list[str]:
        return ["java", f"-Xmx{heap}", *self.jvm, f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
                "-Dkafka.logs.dir=" + str(self.workdir / "logs"), "-cp", classpath(), main, *args]

    def start(self, timeout: float = 90) -> KafkaBroker:
        conf = self._write_config()
        if not self._formatted:
            cluster = "-"
            while cluster.startswith("-"):  # the storage tool would read a leading '-' as an option
                cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            proc = subprocess.run(self._java("kafka.tools.StorageTool", ["format", "-t", cluster, "-c", str(conf)],
                                             heap="256m"), capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"kafka storage format failed:\n{proc.stdout}\n{proc.stderr}")
            self._formatted = True
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._java("kafka.Kafka", [str(conf)]), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        mark = self.log_path.stat().st_size if self.log_path.exists() else 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kafka exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if "Kafka Server started" in self.log(mark):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"kafka did not start within {timeout} s:\n{self.log()[-4000:]}")

    def log(self, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        """A clean shutdown (SIGTERM), as an operator restarting the broker would do."""
        stop_group(self.proc, timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def create_topic(self, name: str, partitions: int | None = None) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(name, partitions or self.partitions, 1)], operation_timeout=30)
        for f in futures.values():
            f.result(60)
        # wait until the topic's leader is known (metadata propagates asynchronously)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            md = admin.list_topics(name, timeout=10).topics.get(name)
            if md is not None and md.error is None and md.partitions and all(
                    p.leader >= 0 for p in md.partitions.values()):
                return
            time.sleep(0.1)
        raise RuntimeError(f"topic {name} has no leader after 30 s")
