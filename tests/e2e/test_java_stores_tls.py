"""TLS between pyflume agents and to pyflume's listeners with the stores a Flume user made with keytool, read as
they are (no conversion): an avro sink verifying against a JKS trust store into an avro source serving a JKS key
store; an HTTPS source serving keytool's PKCS12 with ``keystore-type`` left at JKS (read by content); a syslog TLS
source taking Flume's global JKS key store from ``FLUME_SSL_*``. Every line arrives once, and the clients verify
the server certificate (nothing trusts all)."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.request
from pathlib import Path

from conftest import assert_exactly_once, free_port, rolled_lines, send_lines, wait_for_events

RECEIVER = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = {type}
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.sources.r1.ssl = true
{tls}a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.channels.c1.keep-alive = 1
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
"""

SENDER = """\
s1.sources = r1
s1.channels = c1
s1.sinks = k1
s1.sources.r1.type = netcat
s1.sources.r1.bind = 127.0.0.1
s1.sources.r1.port = {port}
s1.sources.r1.ack-every-event = false
s1.sources.r1.channels = c1
s1.channels.c1.type = memory
s1.channels.c1.capacity = 100000
s1.channels.c1.transactionCapacity = 1000
s1.sinks.k1.type = avro
s1.sinks.k1.channel = c1
s1.sinks.k1.hostname = 127.0.0.1
s1.sinks.k1.port = {target}
s1.sinks.k1.batch-size = 500
s1.sinks.k1.ssl = true
s1.sinks.k1.truststore = {trust}
s1.sinks.k1.truststore-password = changeit
s1.sinks.k1.truststore-type = JKS
"""


def _client_context(stores) -> ssl.SSLContext:  # noqa: ANN001
    return ssl.create_default_context(cafile=str(stores.server_pem))  # 127.0.0.1 is in the certificate


def test_avro_sink_to_avro_source_with_jks_on_both_ends(run_agent, tmp_path: Path, java_stores) -> None:
    port, nc, out = free_port(), free_port(), tmp_path / "out"
    out.mkdir()
    tls = (f"a1.sources.r1.keystore = {java_stores.server_same_jks}\na1.sources.r1.keystore-password = storepass\n"
           "a1.sources.r1.keystore-type = JKS\n")
    receiver = run_agent(RECEIVER.format(type="avro", port=port, tls=tls, out=out))
    receiver.wait_for_port(port)
    sender = run_agent(SENDER.format(port=nc, target=port, trust=java_stores.trust_jks), name="s1")
    sender.wait_for_port(nc)
    lines = [b"jks-%06d" % i for i in range(20_000)]
    send_lines(nc, lines)
    wait_for_events(lines, lambda: rolled_lines(out), logs=[receiver, sender])
    assert sender.terminate() == 0 and receiver.terminate() == 0
    assert_exactly_once(lines, rolled_lines(out), logs=[receiver, sender])
    assert "storepass" not in receiver.log() + sender.log()


def test_https_source_serves_keytools_pkcs12_declared_as_jks(run_agent, tmp_path: Path, java_stores) -> None:
    port, out = free_port(), tmp_path / "out"
    out.mkdir()
    tls = (f"a1.sources.r1.keystore = {java_stores.server_p12}\na1.sources.r1.keystore-password = storepass\n"
           "a1.sources.r1.keystore-type = JKS\n")
    agent = run_agent(RECEIVER.format(type="http", port=port, tls=tls, out=out))
    agent.wait_for_port(port)
    sent = [f"https-{i}".encode() for i in range(300)]
    for start in range(0, len(sent), 100):
        body = json.dumps([{"body": b.decode()} for b in sent[start:start + 100]]).encode()
        req = urllib.request.Request(f"https://127.0.0.1:{port}/", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=_client_context(java_stores), timeout=30) as resp:
            assert resp.status == 200
    wait_for_events(sent, lambda: rolled_lines(out), logs=[agent])
    assert agent.terminate() == 0


def test_syslog_tls_source_takes_the_global_key_store(run_agent, tmp_path: Path, java_stores, monkeypatch) -> None:
    """FLUME_SSL_KEYSTORE_* point at a JKS store, as Flume's global settings; the source sets only ssl = true."""
    monkeypatch.setenv("FLUME_SSL_KEYSTORE_PATH", str(java_stores.server_same_jks))
    monkeypatch.setenv("FLUME_SSL_KEYSTORE_PASSWORD", "storepass")
    monkeypatch.setenv("FLUME_SSL_KEYSTORE_TYPE", "JKS")
    port, out = free_port(), tmp_path / "out"
    out.mkdir()
    agent = run_agent(RECEIVER.format(type="syslogtcp", port=port, tls="", out=out))
    agent.wait_for_port(port)
    sent = [f"<13>Nov 30 01:02:03 host app: tls-{i}".encode() for i in range(500)]
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with _client_context(java_stores).wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"".join(line + b"\n" for line in sent))
    want = [f"app: tls-{i}".encode() for i in range(500)]
    wait_for_events(want, lambda: rolled_lines(out), logs=[agent])
    assert agent.terminate() == 0
