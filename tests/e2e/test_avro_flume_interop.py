"""Avro RPC against a real Apache Flume 1.11: Flume's avro sink and avro-client into pyflume's avro source, and
pyflume's avro sink into Flume's avro source: plain, with deflate, over TLS, and both (TLS inside zlib)."""

from __future__ import annotations

import socket
import time

import pytest

from agent.core import Event
from agent.rpc import RpcClient
from conftest import agent_command, assert_exactly_once, free_port, rolled_lines, self_signed, wait_for_events
from peers.flume import FlumeAgent, avro_client

pytestmark = pytest.mark.peer

RECEIVER = """\
{a}.sources = r1
{a}.channels = c1
{a}.sinks = k1
{a}.sources.r1.type = avro
{a}.sources.r1.bind = 127.0.0.1
{a}.sources.r1.port = {port}
{a}.sources.r1.compression-type = {compression}
{a}.sources.r1.channels = c1
{tls}{a}.channels.c1.type = memory
{a}.channels.c1.capacity = 100000
{a}.channels.c1.transactionCapacity = 1000
{a}.sinks.k1.type = file_roll
{a}.sinks.k1.channel = c1
{a}.sinks.k1.sink.directory = {out}
{a}.sinks.k1.sink.rollInterval = 0
{a}.sinks.k1.sink.batchSize = 1000
{a}.sinks.k1.sink.serializer = header_and_text
"""

SENDER = """\
{a}.sources = r1
{a}.channels = c1
{a}.sinks = k1
{a}.sources.r1.type = netcat
{a}.sources.r1.bind = 127.0.0.1
{a}.sources.r1.port = {port}
{a}.sources.r1.ack-every-event = false
{a}.sources.r1.channels = c1
{a}.sources.r1.interceptors = st
{a}.sources.r1.interceptors.st.type = static
{a}.sources.r1.interceptors.st.key = from
{a}.sources.r1.interceptors.st.value = {a}-\\u00e9
{a}.channels.c1.type = memory
{a}.channels.c1.capacity = 100000
{a}.channels.c1.transactionCapacity = 1000
{a}.sinks.k1.type = avro
{a}.sinks.k1.channel = c1
{a}.sinks.k1.hostname = 127.0.0.1
{a}.sinks.k1.port = {target}
{a}.sinks.k1.batch-size = 500
{a}.sinks.k1.compression-type = {compression}
{tls}"""

N = 100_000


def transport(mode: str, tmp, side: str, a: str) -> dict[str, str]:  # noqa: ANN001
    """Template values for one side ("source" or "sink") of a link: deflate, TLS (a PKCS12 key store, which Flume
    and pyflume both read, and a sink that trusts any certificate), or neither."""
    if not mode.startswith("tls"):
        return {"compression": mode, "tls": ""}
    compression = "deflate" if mode == "tls+deflate" else "none"  # Flume 1.11 runs TLS inside the zlib stream
    if side == "sink":
        return {"compression": compression,
                "tls": f"{a}.sinks.k1.ssl = true\n{a}.sinks.k1.trust-all-certs = true\n"}
    _, _, p12 = self_signed(tmp)
    return {"compression": compression, "tls": f"{a}.sources.r1.ssl = true\n{a}.sources.r1.keystore = {p12}\n"
                                               f"{a}.sources.r1.keystore-type = PKCS12\n"
                                               f"{a}.sources.r1.keystore-password = secret\n"}


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"port {port} not open")


def send_lines(port: int) -> list[bytes]:
    lines = [f"event-{i:06d} ü" for i in range(N)]
    lines = [line.encode() for line in lines]
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"\n".join(lines) + b"\n")
    return lines


@pytest.mark.parametrize("compression", ["none", "deflate", "tls", "tls+deflate"])
def test_flume_avro_sink_into_pyflume_avro_source(compression, tmp_path, flume_classpath, run_agent) -> None:
    port, nc = free_port(), free_port()
    out = tmp_path / "out"
    out.mkdir()
    ours = run_agent(RECEIVER.format(a="py", port=port, out=out, **transport(compression, tmp_path, "source", "py")),
                     name="py")
    ours.wait_for_port(port)
    conf = tmp_path / "flume.conf"
    conf.write_text(SENDER.format(a="fl", port=nc, target=port, **transport(compression, tmp_path, "sink", "fl")))
    with FlumeAgent(conf, "fl", log_path=tmp_path / "flume.log") as flume:
        wait_port(nc)
        lines = send_lines(nc)
        want = ["{from=fl-é} ".encode() + line for line in lines]
        wait_for_events(want, lambda: rolled_lines(out), logs=[flume, ours])
    assert_exactly_once(want, rolled_lines(out), logs=[ours])
    assert ("(TLS)" in ours.log()) == compression.startswith("tls")
    assert ("(deflate)" in ours.log()) == compression.endswith("deflate")
    assert ours.terminate() == 0


@pytest.mark.parametrize("compression", ["none", "deflate", "tls", "tls+deflate"])
def test_pyflume_avro_sink_into_flume_avro_source(compression, tmp_path, flume_classpath, run_agent) -> None:
    port, nc = free_port(), free_port()
    out = tmp_path / "out"
    out.mkdir()
    conf = tmp_path / "flume.conf"
    conf.write_text(RECEIVER.format(a="fl", port=port, out=out, **transport(compression, tmp_path, "source", "fl")))
    with FlumeAgent(conf, "fl", log_path=tmp_path / "flume.log") as flume:
        wait_port(port)
        ours = run_agent(SENDER.format(a="py", port=nc, target=port, **transport(compression, tmp_path, "sink", "py")),
                         name="py")
        ours.wait_for_port(nc)
        lines = send_lines(nc)
        want = ["{from=py-é} ".encode() + line for line in lines]
        wait_for_events(want, lambda: rolled_lines(out), logs=[flume, ours])
        assert ours.terminate() == 0
        assert_exactly_once(want, rolled_lines(out), logs=[flume, ours])
        if compression == "none":  # Flume ignores pyflume's pipelining offer: one call at a time, as before
            client = RpcClient("127.0.0.1", port)
            client.append_batch([Event(b"after")])
            assert client.connected and not client.pipelined
            client.close()


def test_flume_avro_client_into_pyflume(tmp_path, flume_classpath, run_agent) -> None:
    port = free_port()
    out = tmp_path / "out"
    out.mkdir()
    ours = run_agent(RECEIVER.format(a="py", port=port, out=out, **transport("none", tmp_path, "source", "py")),
                     name="py")
    ours.wait_for_port(port)
    data = tmp_path / "data.txt"
    data.write_text("".join(f"row {i} é\n" for i in range(1000)))
    headers = tmp_path / "headers.txt"
    headers.write_text("host=web1\n")
    proc = avro_client("127.0.0.1", port, data, headers)
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = [f"{{host=web1}} row {i} é".encode() for i in range(1000)]
    wait_for_events(want, lambda: rolled_lines(out), logs=[ours])
    assert_exactly_once(want, rolled_lines(out), logs=[ours])
    assert ours.terminate() == 0


def test_jks_stores_made_by_keytool_work_unchanged(tmp_path, flume_classpath, run_agent, java_stores) -> None:
    """A Flume user's JKS stores, made by keytool with -storetype JKS, serve pyflume as they are: the aggregator's
    key store, and the JKS trust store that both Flume's avro sink and pyflume's (verifying the certificate: no
    trust-all-certs) use; pyflume -> pyflume and Flume -> pyflume. A wrong store password is an error at --check
    with the file, line and property, and the password is not in it."""
    ks, trust = java_stores.server_same_jks, java_stores.trust_jks
    assert ks.read_bytes()[:4] == trust.read_bytes()[:4] == b"\xfe\xed\xfe\xed"  # real JKS files, not PKCS12
    port, fnc, pnc = free_port(), free_port(), free_port()
    out = tmp_path / "out"
    out.mkdir()
    source_tls = (f"py.sources.r1.ssl = true\npy.sources.r1.keystore = {ks}\n"
                  "py.sources.r1.keystore-password = storepass\npy.sources.r1.keystore-type = JKS\n")
    ours = run_agent(RECEIVER.format(a="py", port=port, out=out, compression="none", tls=source_tls), name="py")
    ours.wait_for_port(port)

    def sink_tls(a: str) -> str:
        return (f"{a}.sinks.k1.ssl = true\n{a}.sinks.k1.truststore = {trust}\n"
                f"{a}.sinks.k1.truststore-password = changeit\n{a}.sinks.k1.truststore-type = JKS\n")

    conf = tmp_path / "flume.conf"
    conf.write_text(SENDER.format(a="fl", port=fnc, target=port, compression="none", tls=sink_tls("fl")))
    sender = run_agent(SENDER.format(a="py2", port=pnc, target=port, compression="none", tls=sink_tls("py2")),
                       name="py2")
    with FlumeAgent(conf, "fl", log_path=tmp_path / "flume.log") as flume:
        wait_port(fnc)
        sender.wait_for_port(pnc)
        lines = send_lines(fnc)
        send_lines(pnc)
        want = [f"{{from={a}-é}} ".encode() + line for a in ("fl", "py2") for line in lines]
        wait_for_events(want, lambda: rolled_lines(out), logs=[flume, ours, sender])
    assert_exactly_once(want, rolled_lines(out), logs=[ours, sender])
    assert sender.terminate() == 0 and ours.terminate() == 0

    check = tmp_path / "wrong.conf"
    check.write_text(RECEIVER.format(a="py", port=port, out=out, compression="none",
                                     tls=source_tls.replace("= storepass", "= Wr0ngPassw0rd")))
    import subprocess

    r = subprocess.run(agent_command() + ["--conf-file", str(check), "--name", "py", "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    line = 1 + RECEIVER.format(a="py", port=port, out=out, compression="none", tls=source_tls).splitlines().index(
        "py.sources.r1.keystore-password = storepass")
    assert (f"wrong.conf:{line}: py.sources.r1 (avro): keystore-password: {ks}: the store password is wrong (the "
            "JKS integrity check fails)") in r.stdout + r.stderr
    assert "Wr0ngPassw0rd" not in r.stdout + r.stderr


def test_pyflume_sink_with_jks_trust_store_into_flume_source_with_jks_key_store(tmp_path, flume_classpath,
                                                                                 run_agent, java_stores) -> None:
    """The other direction: Apache Flume's avro source serves the JKS key store, pyflume's avro sink verifies it
    against the JKS trust store (no trust-all-certs)."""
    port, nc = free_port(), free_port()
    out = tmp_path / "out"
    out.mkdir()
    source_tls = (f"fl.sources.r1.ssl = true\nfl.sources.r1.keystore = {java_stores.server_same_jks}\n"
                  "fl.sources.r1.keystore-password = storepass\nfl.sources.r1.keystore-type = JKS\n")
    sink_tls = (f"py.sinks.k1.ssl = true\npy.sinks.k1.truststore = {java_stores.trust_jks}\n"
                "py.sinks.k1.truststore-password = changeit\npy.sinks.k1.truststore-type = JKS\n")
    conf = tmp_path / "flume.conf"
    conf.write_text(RECEIVER.format(a="fl", port=port, out=out, compression="none", tls=source_tls))
    with FlumeAgent(conf, "fl", log_path=tmp_path / "flume.log") as flume:
        wait_port(port)
        ours = run_agent(SENDER.format(a="py", port=nc, target=port, compression="none", tls=sink_tls), name="py")
        ours.wait_for_port(nc)
        lines = send_lines(nc)
        want = ["{from=py-é} ".encode() + line for line in lines]
        wait_for_events(want, lambda: rolled_lines(out), logs=[flume, ours])
        assert ours.terminate() == 0
        assert_exactly_once(want, rolled_lines(out), logs=[flume, ours])


def test_rpc_props_failover_into_flume_same_file_as_flumes_avro_client(tmp_path, flume_classpath) -> None:
    """One RPC client properties file, given to pyflume's ``avro-client --rpcProps`` and to Flume's own
    AvroCLIClient ``-P``: the first host is down, both fail over to the second, a Flume 1.11 avro source (deflate)."""
    import subprocess

    from peers.flume import java_command

    port = free_port()
    out = tmp_path / "out"
    out.mkdir()
    conf = tmp_path / "flume.conf"
    conf.write_text(RECEIVER.format(a="fl", port=port, out=out, compression="deflate", tls=""))
    props = tmp_path / "client.properties"
    props.write_text(f"client.type = default_failover\nhosts = h1 h2\nhosts.h1 = 127.0.0.1:{free_port()}\n"
                     f"hosts.h2 = 127.0.0.1:{port}\nbatch-size = 100\ncompression-type = deflate\n"
                     f"connect-timeout = 2000\n")
    ours, theirs = tmp_path / "ours.txt", tmp_path / "theirs.txt"
    ours.write_bytes(b"".join(b"ours %04d\n" % i for i in range(1000)))
    theirs.write_bytes(b"".join(b"theirs %04d\n" % i for i in range(1000)))
    with FlumeAgent(conf, "fl", log_path=tmp_path / "flume.log") as flume:
        wait_port(port)
        r = subprocess.run([*agent_command(), "avro-client", "--rpcProps", str(props), "-F", str(ours)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(java_command("org.apache.flume.client.avro.AvroCLIClient",
                                        ["-P", str(props), "-F", str(theirs)], heap="256m"),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        want = [b"{} " + line for line in (ours.read_bytes() + theirs.read_bytes()).splitlines()]
        wait_for_events(want, lambda: rolled_lines(out), logs=[flume])
    assert_exactly_once(want, rolled_lines(out), logs=[flume])
