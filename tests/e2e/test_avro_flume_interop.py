"""Avro RPC against a real Apache Flume 1.11: Flume's avro sink and avro-client into pyflume's avro source, and
pyflume's avro sink into Flume's avro source: plain, with deflate, over TLS, and both (TLS inside zlib)."""

from __future__ import annotations

import socket
import time

import pytest

from conftest import free_port, rolled_lines, self_signed, wait_for
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
        try:
            wait_for(lambda: len(rolled_lines(out)) >= N)
        except AssertionError:
            raise AssertionError(flume.log()[-3000:] + ours.log()[-3000:]) from None
    assert sorted(rolled_lines(out)) == sorted("{from=fl-é} ".encode() + line for line in lines)  # exactly once
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
        try:
            wait_for(lambda: len(rolled_lines(out)) >= N)
        except AssertionError:
            raise AssertionError(flume.log()[-3000:] + ours.log()[-3000:]) from None
        assert ours.terminate() == 0
    assert sorted(rolled_lines(out)) == sorted("{from=py-é} ".encode() + line for line in lines)  # exactly once


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
    wait_for(lambda: len(rolled_lines(out)) >= 1000)
    assert sorted(rolled_lines(out)) == sorted(f"{{host=web1}} row {i} é".encode() for i in range(1000))
    assert ours.terminate() == 0
