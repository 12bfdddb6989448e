"""Thrift RPC against a real Apache Flume 1.11, both ways, in the compact and binary protocols and over TLS:
Flume's thrift sink (the SDK's ThriftRpcClient) into pyflume's thrift source, and pyflume's thrift sink into
Flume's thrift source; non-ASCII bodies and headers; every event exactly once. And one Scribe client (thriftpy2,
from Scribe's IDL) logging the same entries to Flume's ScribeSource and to pyflume's: the same events come out.

One Flume agent serves the whole module (it starts in a few seconds): for each link kind it runs a thrift source
(into one file_roll directory) and a netcat source feeding a thrift sink aimed at a port a test's pyflume agent
listens on later (Flume's sink retries until it is there); and a scribe source into the same directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import (
    assert_exactly_once,
    free_port,
    listening,
    require_java_peers,
    rolled_lines,
    self_signed,
    wait_for,
    wait_for_events,
)

pytestmark = pytest.mark.peer

LINKS = ("compact", "binary", "tls")
N = 20_000

FLUME_LINK = """\
fl.sources.t_{k}.type = thrift
fl.sources.t_{k}.bind = 127.0.0.1
fl.sources.t_{k}.port = {flume_port}
fl.sources.t_{k}.protocol = {protocol}
fl.sources.t_{k}.channels = c_in
{source_tls}fl.sources.n_{k}.type = netcat
fl.sources.n_{k}.bind = 127.0.0.1
fl.sources.n_{k}.port = {netcat_port}
fl.sources.n_{k}.ack-every-event = false
fl.sources.n_{k}.channels = c_{k}
fl.sources.n_{k}.interceptors = st
fl.sources.n_{k}.interceptors.st.type = static
fl.sources.n_{k}.interceptors.st.key = from
fl.sources.n_{k}.interceptors.st.value = fl-{k}-\\u00e9
fl.channels.c_{k}.type = memory
fl.channels.c_{k}.capacity = 100000
fl.channels.c_{k}.transactionCapacity = 1000
fl.sinks.k_{k}.type = thrift
fl.sinks.k_{k}.channel = c_{k}
fl.sinks.k_{k}.hostname = 127.0.0.1
fl.sinks.k_{k}.port = {our_port}
fl.sinks.k_{k}.batch-size = 500
fl.sinks.k_{k}.protocol = {protocol}
{sink_tls}"""

FLUME_COMMON = """\
fl.sources = scribe {sources}
fl.channels = c_in {channels}
fl.sinks = out {sinks}
fl.channels.c_in.type = memory
fl.channels.c_in.capacity = 100000
fl.channels.c_in.transactionCapacity = 1000
fl.sinks.out.type = file_roll
fl.sinks.out.channel = c_in
fl.sinks.out.sink.directory = {out}
fl.sinks.out.sink.rollInterval = 0
fl.sinks.out.sink.batchSize = 1000
fl.sinks.out.sink.serializer = header_and_text
fl.sources.scribe.type = org.apache.flume.source.scribe.ScribeSource
fl.sources.scribe.port = {scribe_port}
fl.sources.scribe.channels = c_in
"""

OURS = """\
py.sources = t n
py.channels = c_in c_out
py.sinks = out k
py.sources.t.type = thrift
py.sources.t.bind = 127.0.0.1
py.sources.t.port = {our_port}
py.sources.t.protocol = {protocol}
py.sources.t.channels = c_in
{source_tls}py.channels.c_in.type = memory
py.channels.c_in.capacity = 100000
py.channels.c_in.transactionCapacity = 1000
py.sinks.out.type = file_roll
py.sinks.out.channel = c_in
py.sinks.out.sink.directory = {out}
py.sinks.out.sink.rollInterval = 0
py.sinks.out.sink.batchSize = 1000
py.sinks.out.sink.serializer = header_and_text
py.sources.n.type = netcat
py.sources.n.bind = 127.0.0.1
py.sources.n.port = {netcat_port}
py.sources.n.ack-every-event = false
py.sources.n.channels = c_out
py.sources.n.interceptors = st
py.sources.n.interceptors.st.type = static
py.sources.n.interceptors.st.key = from
py.sources.n.interceptors.st.value = py-{k}-\\u00e9
py.channels.c_out.type = memory
py.channels.c_out.capacity = 100000
py.channels.c_out.transactionCapacity = 1000
py.sinks.k.type = thrift
py.sinks.k.channel = c_out
py.sinks.k.hostname = 127.0.0.1
py.sinks.k.port = {flume_port}
py.sinks.k.batch-size = 500
py.sinks.k.protocol = {protocol}
{sink_tls}"""


def _trust_store(tmp: Path, cert: Path) -> Path:
    """A PKCS12 trust store made by keytool, as a Flume user makes one (Java needs its trusted-certificate
    marking, which only keytool writes)."""
    keytool = shutil.which("keytool")
    assert keytool, "keytool (part of the JDK that runs the peers) is not on PATH"
    store = tmp / "trust.p12"
    subprocess.run([keytool, "-importcert", "-noprompt", "-storetype", "PKCS12", "-keystore", str(store),
                    "-storepass", "changeit", "-alias", "ca", "-file", str(cert)], check=True, capture_output=True)
    return store


def _tls(tmp: Path, a: str, source: str, sink: str) -> dict[str, str]:
    cert, _, p12 = self_signed(tmp) if not (tmp / "ks.p12").exists() else (tmp / "cert.pem", None, tmp / "ks.p12")
    trust = tmp / "trust.p12" if (tmp / "trust.p12").exists() else _trust_store(tmp, cert)
    return {
        "source_tls": f"{a}.sources.{source}.ssl = true\n{a}.sources.{source}.keystore = {p12}\n"
                      f"{a}.sources.{source}.keystore-type = PKCS12\n{a}.sources.{source}.keystore-password = secret\n",
        # Flume's thrift sink verifies against its trust store (it ignores trust-all-certs); so does ours here
        "sink_tls": f"{a}.sinks.{sink}.ssl = true\n{a}.sinks.{sink}.truststore = {trust}\n"
                    f"{a}.sinks.{sink}.truststore-password = changeit\n{a}.sinks.{sink}.truststore-type = PKCS12\n",
    }


def _plain() -> dict[str, str]:
    return {"source_tls": "", "sink_tls": ""}


@pytest.fixture(scope="session")
def flume_thrift(tmp_path_factory: pytest.TempPathFactory, flume_classpath: str):  # noqa: ANN201
    """One Apache Flume agent with a thrift source and a netcat → thrift sink flow per link kind."""
    require_java_peers()
    from peers.flume import FlumeAgent

    tmp = tmp_path_factory.mktemp("flume-thrift")
    out = tmp / "out"
    out.mkdir()
    scribe_port = free_port()
    links = {k: {"k": k, "protocol": "binary" if k == "binary" else "compact", "flume_port": free_port(),
                 "netcat_port": free_port(), "our_port": free_port()} for k in LINKS}
    text = FLUME_COMMON.format(sources=" ".join(f"t_{k} n_{k}" for k in LINKS),
                               channels=" ".join(f"c_{k}" for k in LINKS),
                               sinks=" ".join(f"k_{k}" for k in LINKS), out=out, scribe_port=scribe_port)
    for k, link in links.items():
        tls = _tls(tmp, "fl", f"t_{k}", f"k_{k}") if k == "tls" else _plain()
        text += FLUME_LINK.format(**link, **tls)
    conf = tmp / "flume.conf"
    conf.write_text(text)
    # the JVM's default charset encodes scribe messages and file_roll's headers: UTF-8 whatever the locale
    agent = FlumeAgent(conf, "fl", log_path=tmp / "flume.log", modules=("scribe",),
                       sysprops={"file.encoding": "UTF-8"}).start()
    try:
        for k, link in links.items():  # netcat sources log no name: their ports tell (no TLS port is probed)
            agent.wait_for_log(f"Component type: SOURCE, name: t_{k} started", timeout=90)
            port = link["netcat_port"]
            wait_for(lambda p=port: listening(p), timeout=90, what=f"Flume's netcat port for {k}")
        agent.wait_for_log("Component type: SOURCE, name: scribe started", timeout=90)
        links["scribe"] = {"port": scribe_port}
        yield agent, links, out, tmp
    finally:
        agent.stop()


def _send_lines(port: int, tag: str) -> list[bytes]:
    lines = [f"{tag}-{i:06d} ü ✓".encode() for i in range(N)]
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"\n".join(lines) + b"\n")
    return lines


@pytest.mark.parametrize("link", LINKS)
def test_thrift_both_ways_with_flume(link: str, flume_thrift, tmp_path: Path, run_agent) -> None:  # noqa: ANN001
    """Flume's thrift sink → our thrift source, and our thrift sink → Flume's thrift source, at once."""
    flume, links, flume_out, flume_tmp = flume_thrift
    ports = links[link]
    out = tmp_path / "out"
    out.mkdir()
    nc = free_port()
    tls = _tls(flume_tmp, "py", "t", "k") if link == "tls" else _plain()
    ours = run_agent(OURS.format(**{**ports, "netcat_port": nc}, out=out, **tls), name="py")
    ours.wait_for_port(nc)
    ours.wait_for_port(ports["our_port"])
    from_flume = _send_lines(ports["netcat_port"], f"to-py-{link}")
    to_flume = _send_lines(nc, f"to-fl-{link}")
    want_ours = [f"{{from=fl-{link}-é}} ".encode() + line for line in from_flume]
    want_flume = [f"{{from=py-{link}-é}} ".encode() + line for line in to_flume]

    def flume_got() -> list[bytes]:
        return [g for g in rolled_lines(flume_out) if g.startswith(f"{{from=py-{link}-".encode())]

    wait_for_events(want_ours, lambda: rolled_lines(out), logs=[flume, ours])
    wait_for_events(want_flume, flume_got, logs=[flume, ours])
    assert ours.terminate() == 0
    assert_exactly_once(want_ours, rolled_lines(out), logs=[ours])
    assert_exactly_once(want_flume, flume_got(), logs=[flume, ours])
    assert ("TLS" in ours.log().split("Thrift source t started", 1)[1].splitlines()[0]) == (link == "tls")


SCRIBE = """\
py.sources = s
py.channels = c
py.sinks = out
py.sources.s.type = org.apache.flume.source.scribe.ScribeSource
py.sources.s.bind = 127.0.0.1
py.sources.s.port = {port}
py.sources.s.channels = c
py.channels.c.type = memory
py.channels.c.capacity = 100000
py.channels.c.transactionCapacity = 1000
py.sinks.out.type = file_roll
py.sinks.out.channel = c
py.sinks.out.sink.directory = {out}
py.sinks.out.sink.rollInterval = 0
py.sinks.out.sink.batchSize = 1000
py.sinks.out.sink.serializer = header_and_text
"""


def test_one_scribe_client_gets_the_same_events_from_flume_and_pyflume(flume_thrift, tmp_path: Path,  # noqa: ANN001
                                                                        run_agent) -> None:
    import thriftpy2
    from thriftpy2.protocol import TBinaryProtocolFactory
    from thriftpy2.rpc import make_client
    from thriftpy2.transport import TFramedTransportFactory

    scribe = thriftpy2.load(str(Path(__file__).parents[1] / "peers" / "thrift" / "scribe.thrift"),
                            module_name="scribe_interop_thrift")
    flume, links, flume_out, _ = flume_thrift
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    ours = run_agent(SCRIBE.format(port=port, out=out), name="py")
    ours.wait_for_port(port)
    batches = [[scribe.LogEntry(category=f"scribe-{k}-ü" if i % 7 else None, message=f"scribe-{k:02d}-{i:03d} é ✓")
                for i in range(500)] for k in range(10)]
    for target in (links["scribe"]["port"], port):
        # strict_read off, as Apache Thrift's clients: Flume's Scribe server answers with old-style headers
        client = make_client(scribe.Scribe, "127.0.0.1", target, timeout=20_000,
                             proto_factory=TBinaryProtocolFactory(strict_read=False),
                             trans_factory=TFramedTransportFactory())
        for batch in batches:
            assert client.Log(batch) == scribe.ResultCode.OK
        client.close()
    want = [((f"{{category=scribe-{k}-ü}} " if i % 7 else "{} ") + f"scribe-{k:02d}-{i:03d} é ✓").encode()
            for k in range(10) for i in range(500)]

    def flume_got() -> list[bytes]:
        return [g for g in rolled_lines(flume_out) if b"} scribe-" in g]

    wait_for_events(want, flume_got, logs=[flume])
    wait_for_events(want, lambda: rolled_lines(out), logs=[ours])
    assert_exactly_once(want, flume_got(), logs=[flume])
    assert_exactly_once(want, rolled_lines(out), logs=[ours])
    assert ours.terminate() == 0
