"""The HTTP source with the real ``agent``: Flume's JSON format and status codes (200 only after the commit, 400
for a malformed body with nothing written, 503 on a full channel and a retry that then succeeds), keep-alive and
chunked requests, charsets as Java writes them, the blob handlers, a handler of one's own, TLS."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from agent.core import Event
from agent.spec import Prop, Spec
from sources.http import HTTPBadRequestError, HTTPRequest, HTTPSourceHandler
from tests.conftest import ROOT, agent_command, free_port, self_signed

pytestmark = pytest.mark.e2e


class CsvHandler(HTTPSourceHandler):
    """A handler of one's own (named in a config as tests.e2e.test_http_source.CsvHandler): one event per line,
    the fields split by handler.separator, the first field a header."""

    spec = Spec(Prop("separator", "str", ",", "Field separator."))

    def get_events(self, request: HTTPRequest) -> list[Event]:
        sep = self.conf["separator"]
        events = []
        for line in request.body.decode().splitlines():
            if sep not in line:
                raise HTTPBadRequestError(f"no {sep!r} in {line!r}")
            key, value = line.split(sep, 1)
            events.append(Event(value.encode(), {"key": key, "path": request.path}))
        return events


FILE_ROLL = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
{extra}
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
# an idle sink waits at most 1 s for events (the default 3 s only makes the agent slower to stop)
a1.channels.c1.keep-alive = 1
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
a1.sinks.k1.sink.serializer = header_and_text
"""


def start(run_agent, tmp_path: Path, extra: str = "", args: list[str] | None = None):
    port = free_port()
    out = tmp_path / "out"
    agent = run_agent(FILE_ROLL.format(port=port, out=out, extra=extra), args=args)
    agent.wait_for_port(port)
    return agent, port, out


def read_out(out: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(out.iterdir())) if out.exists() else b""


def wait_out(out: Path, lines: int, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        data = read_out(out)
        if data.count(b"\n") >= lines:
            return data
        time.sleep(0.05)
    return data


def request(port: int, method: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            path: str = "/", conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, data


def post_json(port: int, payload: object, charset: str | None = None, **kw) -> tuple[int, bytes]:
    ctype = "application/json" + (f"; charset={charset}" if charset else "")
    body = json.dumps(payload).encode(charset or "utf-8")
    return request(port, "POST", body, {"Content-Type": ctype}, **kw)


def test_json_events_arrive_exactly_with_their_headers(run_agent, tmp_path):
    agent, port, out = start(run_agent, tmp_path)
    events = """[
        {"headers": {"timestamp": "434324343", "host": "random_host.example.com"}, "body": "random_body"},
        {"headers": {"namenode": "namenode.example.com"}, "body": "really_random_body"},
        {"body": "no headers"},
        {"headers": {"h": "no body"}},
        {"headers": {"n": 12, "f": 1.50, "b": true, "gone": null}, "body": "h\u00e9llo \u2713", "ignored": [1]}
    ]"""
    assert request(port, "POST", events.encode(), {"Content-Type": "application/json"}) == (200, b"")
    # a GET with a body is handled like a POST (Flume's doGet calls doPost), on any path
    assert request(port, "GET", b'[{"body":"by GET"}]', path="/any/path?x=1") == (200, b"")
    expected = (b"{timestamp=434324343, host=random_host.example.com} random_body\n"
                b"{namenode=namenode.example.com} really_random_body\n"
                b"{} no headers\n"
                b"{h=no body} \n"
                + "{n=12, f=1.50, b=true} héllo ✓\n".encode()
                + b"{} by GET\n")
    assert wait_out(out, 6) == expected
    assert agent.terminate() == 0


def test_keep_alive_chunked_and_large_batches_lose_nothing(run_agent, tmp_path):
    agent, port, out = start(run_agent, tmp_path)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sent = []
    for r in range(40):  # one connection, many requests
        batch = [{"headers": {"r": str(r)}, "body": f"keepalive {r} {i}"} for i in range(25)]
        sent += [f"{{r={r}}} keepalive {r} {i}" for i in range(25)]
        assert post_json(port, batch, conn=conn) == (200, b"")
    body = json.dumps([{"body": f"chunked {i}"} for i in range(300)]).encode()
    chunks = (body[j:j + 100] for j in range(0, len(body), 100))
    conn.request("POST", "/", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"")
    sent += [f"{{}} chunked {i}" for i in range(300)]
    conn.close()
    big = [{"headers": {"k": "v"}, "body": f"big {i:06d}"} for i in range(20_000)]  # 20 channel transactions
    assert post_json(port, big) == (200, b"")
    sent += [f"{{k=v}} big {i:06d}" for i in range(20_000)]
    got = wait_out(out, len(sent)).decode().split("\n")[:-1]
    assert got == sent
    assert agent.terminate() == 0


def test_request_charset_decides_the_body_bytes_as_java_writes_them(run_agent, tmp_path):
    agent, port, out = start(run_agent, tmp_path)
    text = "é✓"
    assert post_json(port, [{"body": text}], "UTF-16") == (200, b"")  # Python writes little-endian with a BOM
    body = json.dumps([{"body": text}]).encode("utf-16-be")  # no BOM: Java reads big-endian
    assert request(port, "POST", body, {"Content-Type": "application/json; charset=utf-16"}) == (200, b"")
    assert post_json(port, [{"body": text}], "utf-32") == (200, b"")
    status, page = post_json(port, [{"body": text}], "ISO-8859-1")
    assert status == 500 and b"JSON handler supports UTF-8, UTF-16 and UTF-32 only" in page
    utf16 = b"\xfe\xff" + text.encode("utf-16-be")  # Java's String.getBytes("UTF-16")
    assert wait_out(out, 3) == (b"{} " + utf16 + b"\n{} " + utf16 + b"\n{} " + text.encode("utf-32-be") + b"\n")
    assert agent.terminate() == 0


def metrics(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return json.loads(r.read())["SOURCE.r1"]


def test_bad_requests_get_flumes_status_and_write_nothing(run_agent, tmp_path):
    mport = free_port()
    agent, port, out = start(run_agent, tmp_path,
                             args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
    json_type = {"Content-Type": "application/json"}
    status, page = request(port, "POST", b'[{"body": "x"', json_type)
    assert status == 400 and b"Bad request from client. Request has invalid JSON Syntax." in page
    status, page = request(port, "POST", b'{"body": "not an array"}', json_type)
    assert status == 400 and b"expected an array of events" in page
    assert request(port, "POST", b'[{"body": {"nested": 1}}]', json_type)[0] == 400
    assert request(port, "POST", b'[{"headers": {"h": [1]}}]', json_type)[0] == 400
    assert request(port, "POST", b'["just a string"]', json_type)[0] == 400
    status, page = request(port, "POST", b"[" * 100_000 + b"]" * 100_000, json_type)  # too deep for the parser
    assert status == 400 and b"nested too deeply" in page
    status, page = request(port, "POST", b"", json_type)  # Gson returns null, Flume's handler fails: 500
    assert status == 500 and b"Deserializer threw unexpected exception." in page
    assert request(port, "POST", b"[null]", json_type)[0] == 500
    assert request(port, "TRACE")[0] == 403  # disabled, as in Flume
    assert request(port, "OPTIONS")[0] == 403
    assert request(port, "PUT", b"[]", json_type)[0] == 405
    assert request(port, "DELETE")[0] == 405
    assert request(port, "POST", b"[]", json_type) == (200, b"")  # an empty batch is fine
    assert post_json(port, [{"body": "the only event"}]) == (200, b"")
    assert wait_out(out, 1) == b"{} the only event\n"
    agent.wait_for_port(mport)
    m = metrics(mport)
    assert (m["EventReadFail"], m["AppendBatchAcceptedCount"], m["EventAcceptedCount"]) == ("8", "2", "1")
    time.sleep(0.3)
    assert read_out(out) == b"{} the only event\n"
    assert agent.terminate() == 0


GATED = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10
a1.channels.c1.transactionCapacity = 10
a1.channels.c1.keep-alive = 0
# a sink that holds its batch while the gate file exists: the channel really fills up
a1.sinks.k1.type = gate_sink.GateSink
a1.sinks.k1.channel = c1
a1.sinks.k1.gate = {tmp}/gate
a1.sinks.k1.path = {tmp}/got
a1.sinks.k1.batchSize = 10
"""


def test_full_channel_answers_503_and_the_retry_succeeds_once_it_drains(run_agent, tmp_path):
    mport = free_port()
    port = free_port()
    gate = tmp_path / "gate"
    gate.touch()
    agent = run_agent(GATED.format(port=port, tmp=tmp_path),
                      args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}"])
    agent.wait_for_port(port)
    first = [{"body": f"first {i}"} for i in range(10)]
    second = [{"body": f"second {i}"} for i in range(5)]
    assert post_json(port, first) == (200, b"")  # fills the channel; the sink holds it behind the gate
    status, page = post_json(port, second)
    assert status == 503 and b"Error appending event to channel. Channel might be full." in page
    assert post_json(port, second)[0] == 503  # still full
    gate.unlink()
    got = tmp_path / "got"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the client retries until the channel has room
        status, _ = post_json(port, second)
        if status == 200:
            break
        assert status == 503
        time.sleep(0.05)
    assert status == 200
    expected = [f"first {i}".encode() for i in range(10)] + [f"second {i}".encode() for i in range(5)]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and got.read_bytes().count(b"\n") < 15:
        time.sleep(0.05)
    assert got.read_bytes().split(b"\n")[:-1] == expected  # nothing lost, nothing twice
    m = metrics(mport)
    assert int(m["ChannelWriteFail"]) >= 2 and m["EventAcceptedCount"] == "15"
    assert agent.terminate() == 0


def test_blob_handlers_take_the_whole_body(run_agent, tmp_path):
    extra = ("a1.sources.r1.handler = org.apache.flume.sink.solr.morphline.BlobHandler\n"
             "a1.sources.r1.handler.maxBlobLength = 8")
    agent, port, out = start(run_agent, tmp_path, extra)
    ctype = {"Content-Type": "application/octet-stream"}
    assert request(port, "POST", b"blob\x00one", ctype, path="/?resourceName=a.bin&x=1&x=2") == (200, b"")
    assert request(port, "POST", b"0123456789abcdef", ctype) == (200, b"")  # cut at maxBlobLength
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert request(port, "POST", b"name=v%C3%A9&empty=", form, path="/?q=1") == (200, b"")
    assert wait_out(out, 3) == (b"{Content-Type=application/octet-stream, resourceName=a.bin, x=1} blob\x00one\n"
                                b"{Content-Type=application/octet-stream} 01234567\n"
                                + "{Content-Type=application/x-www-form-urlencoded, q=1, name=vé, empty=} \n".encode())
    assert agent.terminate() == 0


def test_a_handler_of_ones_own_by_dotted_path(run_agent, tmp_path):
    extra = ("a1.sources.r1.handler = tests.e2e.test_http_source.CsvHandler\n"
             "a1.sources.r1.handler.separator = ;")
    agent, port, out = start(run_agent, tmp_path, extra)
    assert request(port, "POST", b"a;one\nb;two;three\n", path="/csv") == (200, b"")
    status, page = request(port, "POST", b"no separator")
    assert status == 400 and b"Bad request from client. no &#x27;;&#x27; in &#x27;no separator&#x27;" in page
    assert wait_out(out, 2) == b"{key=a, path=/csv} one\n{key=b, path=/csv} two;three\n"
    assert agent.terminate() == 0


TLS = """\
a1.sources = pem p12
a1.channels = c1
a1.sinks = k1
a1.sources.pem.type = http
a1.sources.pem.bind = 127.0.0.1
a1.sources.pem.port = {p1}
a1.sources.pem.ssl = true
a1.sources.pem.ssl.certificate = {cert}
a1.sources.pem.ssl.key = {key}
a1.sources.pem.channels = c1
a1.sources.p12.type = http
a1.sources.p12.bind = 127.0.0.1
a1.sources.p12.port = {p2}
# Flume's deprecated names still work
a1.sources.p12.enableSSL = true
a1.sources.p12.keystore = {p12}
a1.sources.p12.keystorePassword = secret
a1.sources.p12.keystore-type = PKCS12
a1.sources.p12.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.keep-alive = 1
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
"""


def test_https_with_pem_files_and_a_pkcs12_keystore(run_agent, tmp_path):
    cert, key, p12 = self_signed(tmp_path)
    p1, p2 = free_port(), free_port()
    out = tmp_path / "out"
    agent = run_agent(TLS.format(p1=p1, p2=p2, cert=cert, key=key, p12=p12, out=out))
    agent.wait_for_port(p1)
    agent.wait_for_port(p2)
    ctx = ssl.create_default_context(cafile=str(cert))
    for port, text in ((p1, "over pem"), (p2, "over pkcs12")):
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        assert post_json(port, [{"body": text}], conn=c) == (200, b"")
        c.close()
    with pytest.raises(ConnectionResetError):  # plain HTTP to a TLS port gets no answer
        request(p1, "POST", b"[]")
    assert sorted(wait_out(out, 2).split(b"\n")[:-1]) == [b"over pem", b"over pkcs12"]
    assert agent.terminate() == 0


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "check.conf"
    conf.write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    return subprocess.run(agent_command() + ["--conf-file", str(conf), "--name", "a1", "--check"],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=60)


def test_configuration_problems_are_explained(tmp_path):
    extra = "\n".join([
        "a1.sources.r1.ssl = true",
        "a1.sources.r1.keystore = /etc/flume/keystore.jks",
        "a1.sources.r1.keystore-password = secret",
        "a1.sources.r1.handler = org.example.rest.RestHandler",
        "a1.sources.r1.handler.nickname = random props",
        "a1.sources.r1.QueuedThreadPool.maxThreads = 100",
        "a1.sources.r1.ServerConnector.idleTimeout = soon",
    ])
    r = check(tmp_path, FILE_ROLL.format(port=free_port(), out=tmp_path / "out", extra=extra))
    assert r.returncode == 1
    text = r.stdout + r.stderr
    assert ("check.conf:9: a1.sources.r1 (http): keystore: warning: /etc/flume/keystore.jks is not a file here: the "
            "source cannot start until it is") in text
    assert ("check.conf:11: a1.sources.r1 (http): handler: 'org.example.rest.RestHandler' looks like a Java class; "
            "Java handlers cannot run in pyflume") in text
    assert "handler.nickname" not in text  # a handler that cannot be loaded has no spec to check against
    assert ("check.conf:13: a1.sources.r1 (http): QueuedThreadPool.maxThreads: warning: QueuedThreadPool.maxThreads "
            "is a Jetty setting that has no effect in pyflume; ignored") in text
    assert "check.conf:14: a1.sources.r1 (http): ServerConnector.idleTimeout: 'soon' is not an integer" in text
    blob = "a1.sources.r1.handler = org.apache.flume.sink.solr.morphline.BlobHandler\n" \
           "a1.sources.r1.handler.maxBlobLen = 10"
    r = check(tmp_path, FILE_ROLL.format(port=free_port(), out=tmp_path / "out", extra=blob))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "unknown property 'handler.maxBlobLen'; did you mean 'handler.maxBlobLength'?" in r.stdout + r.stderr
