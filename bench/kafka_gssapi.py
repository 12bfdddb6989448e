"""``python -m bench.kafka_gssapi``: what Kerberos costs the Kafka sink.

The netcat → memory → Kafka sink case of ``python -m bench`` (100-byte lines, flumeBatchSize 1000, default producer
settings) run by pyflume twice against one broker: through its PLAINTEXT listener (confluent-kafka, librdkafka) and
through its SASL_PLAINTEXT GSSAPI listener (kafka-python, logged in from a keytab given in sasl.jaas.config). The
broker and an MIT KDC are the tests' peers (tests/peers/secure_kafka.py, tests/peers/kdc.py). Runs alternate; the
medians are printed (events/s and CPU seconds of the agent process), each run checked for the exact record count.

    PYTHONPATH=.:tests python -m bench.kafka_gssapi [--events 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench import cases  # noqa: E402
from bench.__main__ import run_once  # noqa: E402
from bench.cases import Ctx, NetcatMemoryKafka  # noqa: E402

_SECURE = None
_REALM: dict = {}


class NetcatMemoryKafkaGssapi(NetcatMemoryKafka):
    """The same case through the broker's Kerberos listener."""

    name = "netcat-memory-kafka-gssapi"
    title = "netcat → memory → Kafka sink over SASL_PLAINTEXT/GSSAPI (100 B messages, flumeBatchSize 1000)"

    def render(self, ctx: Ctx) -> str:
        login = ("com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true "
                 f'keyTab="{_REALM["keytab"]}" principal="{_REALM["principal"]}";')
        base = self.conf.format(port=ctx.port, servers=_SECURE.bootstrap, topic=ctx.extra["topic"])
        return base + ("a1.sinks.k1.kafka.producer.security.protocol = SASL_PLAINTEXT\n"
                       "a1.sinks.k1.kafka.producer.sasl.mechanism = GSSAPI\n"
                       "a1.sinks.k1.kafka.producer.sasl.kerberos.service.name = kafka\n"
                       f"a1.sinks.k1.kafka.producer.sasl.jaas.config = {login}\n")


def main(argv: list[str] | None = None) -> int:
    global _SECURE
    p = argparse.ArgumentParser(prog="python -m bench.kafka_gssapi", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    from peers import secure_kafka
    from peers.kdc import KDC

    work = Path(tempfile.mkdtemp(prefix="bench-kafka-gssapi-"))
    kdc = KDC(work / "kdc").start()
    try:
        os.environ["KRB5_CONFIG"] = str(kdc.krb5_conf)  # the agents inherit it
        os.environ["KRB5CCNAME"] = f"FILE:{work / 'no-tickets'}"
        _REALM.update(principal=kdc.principal("flume/localhost"), keytab=kdc.add("flume/localhost"))
        _SECURE = secure_kafka.start(work / "kafka", kdc)
        cases._KAFKA = _SECURE.broker  # both cases use this broker (the plain one through its PLAINTEXT listener)
        results: dict[str, list[dict]] = {"plaintext (confluent-kafka)": [], "gssapi (kafka-python)": []}
        for _ in range(args.runs):
            results["plaintext (confluent-kafka)"].append(run_once("pyflume", NetcatMemoryKafka(), args.events))
            results["gssapi (kafka-python)"].append(run_once("pyflume", NetcatMemoryKafkaGssapi(), args.events))
        print(f"netcat -> memory -> Kafka sink, {args.events} x 100 B events, median of {args.runs} runs")
        print(f"{'path':30} {'events/s':>10} {'CPU s':>7}")
        for path, runs in results.items():
            eps = statistics.median(r["eps"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            print(f"{path:30} {eps:10,.0f} {cpu:7.2f}")
    finally:
        if _SECURE is not None:
            _SECURE.stop()
        kdc.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
