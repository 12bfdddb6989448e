"""Shared fixtures: free loopback ports and running the ``agent`` command as a user would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from peers import free_port, listening, maven  # noqa: E402,F401  (tests import these from here)
from peers.certs import self_signed  # noqa: E402,F401  (tests import it from here)

pytest_plugins = ["peers.kerberos_fixtures"]  # the KDC and the kerberized peers (session fixtures)


def require_java_peers() -> None:
    """Skip a test that needs real Java peers when java/mvn are missing; fail instead under PYFLUME_REQUIRE_PEERS=1."""
    reason = maven.missing_java_reason()
    if reason is None:
        return
    if os.environ.get("PYFLUME_REQUIRE_PEERS") == "1":
        pytest.fail(f"PYFLUME_REQUIRE_PEERS=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def flume_classpath() -> str:
    """Apache Flume 1.11's jars (resolved from Maven Central once, cached); skips without java/mvn."""
    require_java_peers()
    from peers import flume

    return flume.classpath()


def wait_for(cond, timeout: float = 60.0, what: str = "condition", every: float = 0.05) -> None:  # noqa: ANN001
    """Poll ``cond()`` every ``every`` seconds until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def delivery_report(expected: Iterable, got: Iterable, logs: Iterable = (), tail: int = 40) -> str:
    """What a delivery check tells a reader: how many of ``expected`` are missing and which (the first few, sorted),
    how many arrived more than once, what arrived that was never sent, and the last ``tail`` lines of each log in
    ``logs`` (anything with a ``log()`` method: an ``AgentProcess``, a Flume agent, a Kafka broker)."""
    want = set(expected)
    counts = Counter(got)
    missing = sorted(want - counts.keys())
    twice = sorted(k for k, n in counts.items() if n > 1)
    unexpected = sorted(counts.keys() - want)
    parts = [f"{len(missing)} of {len(want)} missing" + (f" (first: {_few(missing)})" if missing else ""),
             f"{len(twice)} arrived more than once" + (f" (first: {_few(twice)})" if twice else ""),
             f"{sum(counts.values())} received in all"]
    if unexpected:
        parts.append(f"{len(unexpected)} never sent (first: {_few(unexpected)})")
    report = "; ".join(parts)
    for source in logs:
        name = f"{type(source).__name__} {getattr(source, 'name', '')}".rstrip()
        try:
            lines = source.log().splitlines()[-tail:]
        except Exception as exc:  # noqa: BLE001 - a report must not fail for a log it cannot read
            lines = [f"(log unreadable: {exc})"]
        report += f"\n--- last {len(lines)} log lines of {name} ---\n" + "\n".join(lines)
    return report


def _few(items: list, n: int = 8) -> str:
    return ", ".join(repr(i) for i in items[:n]) + (", ..." if len(items) > n else "")


def wait_for_events(expected: Iterable, received, *, timeout: float = 60.0, what: str = "every event",  # noqa: ANN001
                    logs: Iterable = (), every: float = 0.1) -> list:
    """Poll ``received()`` (a list of what arrived so far, duplicates included) until every item of ``expected``
    is in it; return that list. On timeout fail with :func:`delivery_report`: how many are missing and which, how
    many arrived twice, and the tail of each log in ``logs``, so a failure tells a delay from a loss."""
    want = set(expected)
    deadline = time.monotonic() + timeout
    got = list(received())
    while not want.issubset(got):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}: "
                                 f"{delivery_report(want, got, logs)}")
        time.sleep(every)
        got = list(received())
    return got


def assert_exactly_once(expected: Iterable, got: Iterable, logs: Iterable = ()) -> None:
    """Every item of ``expected`` arrived once, and nothing else did; else fail with :func:`delivery_report`."""
    expected, got = list(expected), list(got)
    if sorted(got) != sorted(expected):
        raise AssertionError(f"not exactly once: {delivery_report(expected, got, logs)}")


def put_events(channel, events: list) -> None:  # noqa: ANN001
    """Put ``events`` into ``channel`` in one transaction and commit it."""
    with channel.transaction() as tx:
        tx.put_batch(events)
        tx.commit()


def take_events(channel, n: int) -> list:  # noqa: ANN001
    """Take up to ``n`` events from ``channel`` in one transaction and commit it; returns them."""
    with channel.transaction() as tx:
        events = tx.take_batch(n)
        tx.commit()
    return events


def send_lines(port: int, lines: list[bytes], pause_every: int = 0, pause: float = 0.0) -> None:
    """Send lines to a netcat source on loopback, each with its newline; optionally pausing every few lines."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        if not pause_every:
            s.sendall(b"".join(line + b"\n" for line in lines))
            return
        for i in range(0, len(lines), pause_every):
            s.sendall(b"".join(line + b"\n" for line in lines[i:i + pause_every]))
            time.sleep(pause)


def file_hdfs_sink(out: Path, file_type: str = "DataStream", **extra: str):  # noqa: ANN201
    """A started hdfs sink writing to ``file://out`` with every roll rule off, plus ``extra`` properties
    (``hdfs__rollCount="10"`` for hdfs.rollCount)."""
    from agent.spec import Conf
    from sinks.hdfs import HDFSEventSink

    conf = Conf.from_dict(HDFSEventSink.spec, **{"hdfs__path": f"file://{out}", "hdfs__fileType": file_type,
                                                  "hdfs__rollInterval": "0", "hdfs__rollSize": "0",
                                                  "hdfs__rollCount": "0", **extra})
    s = HDFSEventSink("k1", conf)
    s.start()
    return s


def rolled_lines(out: Path, torn: list[bytes] | None = None) -> list[bytes]:
    """The newline-terminated lines of every file in ``out`` (a file_roll directory), file by file in name order.

    A file's last line without a newline is left out: the sink is still writing it, or the agent was killed in the
    middle of a batch's ``write`` (the kernel can stop a large write at a page boundary) — that batch was not
    committed and is written again whole to the next file. Such tails are appended to ``torn`` when given, so a
    crash test can check them."""
    lines: list[bytes] = []
    if not out.exists():
        return lines
    for path in sorted(out.iterdir()):
        parts = path.read_bytes().split(b"\n")
        lines += parts[:-1]
        if parts[-1] and torn is not None:
            torn.append(parts[-1])
    return lines


def agent_command() -> list[str]:
    """The installed console script when there is one (as a user runs it), else ``python -m agent``."""
    beside = Path(sys.executable).parent / "agent"  # the venv's script, activated or not
    exe = str(beside) if beside.exists() else shutil.which("agent")
    if exe and os.environ.get("PYFLUME_USE_MODULE") != "1":
        return [exe]
    return [sys.executable, "-m", "agent"]


class AgentProcess:
    """An ``agent`` process started from a properties text, with its log captured to a file."""

    def __init__(self, conf_text: str, tmp: Path, name: str = "a1", args: list[str] | None = None):
        self.conf = tmp / "agent.conf"
        self.conf.write_text(conf_text)
        self.log_path = tmp / "agent.log"
        self.name = name
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "AgentProcess":
        # tests/ too, so configs can name test-only components such as gate_sink.GateSink
        path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
        env = dict(os.environ, PYTHONPATH=path)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            agent_command() + ["--conf-file", str(self.conf), "--name", self.name, *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=str(self.conf.parent), env=env,
            start_new_session=True,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode} before logging {text!r}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"agent did not log {text!r} within {timeout} s:\n{self.log()}")

    def wait_for_port(self, port: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log()}")
            if listening(port):
                return
            time.sleep(0.05)
        raise AssertionError(f"port {port} not open within {timeout} s:\n{self.log()}")

    def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@pytest.fixture
def run_agent(tmp_path: Path) -> Iterator:
    started: list[AgentProcess] = []

    def start(conf_text: str, name: str = "a1", args: list[str] | None = None) -> AgentProcess:
        a = AgentProcess(conf_text, tmp_path, name, args).start()
        started.append(a)
        return a

    yield start
    for a in started:
        a.kill()


@pytest.fixture(scope="session")
def minidfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One Hadoop MiniDFSCluster (WebHDFS on) for the whole session; skips without java/mvn."""
    require_java_peers()
    from peers.hdfs import MiniDFS

    cluster = MiniDFS(tmp_path_factory.mktemp("minidfs"), free_port(), free_port()).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory, java_stores) -> Iterator:  # noqa: ANN001
    """One Apache Kafka broker (KRaft, single node) for the whole session; skips without java/mvn.

    Tests that stop and restart it must leave it running when they finish (``broker.start()`` again)."""
    require_java_peers()
    from peers.kafka import KafkaBroker

    # a second listener speaks SSL with a keytool JKS key store (the SSL tests' broker is the same one)
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), ssl_keystore=java_stores.server_jks).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def hbase(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One Apache HBase (standalone master + Thrift server) for the whole session; skips without java/mvn.

    Tests that stop and restart it must leave it running when they finish (``hbase.start()`` again)."""
    require_java_peers()
    from peers.hbase import HBase

    cluster = HBase(tmp_path_factory.mktemp("hbase")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def java_stores(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Key stores made by keytool once per session (see tests/peers/keytool.py); skips without keytool."""
    from peers.keytool import make_stores, missing_keytool_reason

    reason = missing_keytool_reason()
    if reason:
        if os.environ.get("PYFLUME_REQUIRE_PEERS") == "1":
            pytest.fail(f"PYFLUME_REQUIRE_PEERS=1 but {reason}")
        pytest.skip(reason)
    return make_stores(tmp_path_factory.mktemp("java-stores"))


def started_sink(conf: Path, sink: str = "k1", agent: str = "a1"):  # noqa: ANN201
    """The sink ``sink`` of the properties file ``conf`` built as ``agent --check`` builds it (the file must have no
    errors), started, with its channel started and attached: ready for ``process()`` calls. Returns (sink, channel)."""
    from agent import config

    topo, problems = config.check([str(conf)], agent)
    assert topo is not None, [str(p) for p in problems]
    k = topo.sinks[sink]
    ch = k.channel
    assert ch is not None
    ch.start()
    k.start()
    return k, ch
