"""Benchmark cases: a properties file, the data to push through it, and how to count what arrived.

Every case runs unchanged on both systems: the same properties text, the same generated input, the same check at
the destination: the exact set of ids (every event present once: nothing lost, nothing duplicated) where the
destination can be read back, the count alone where it cannot (a null sink); ``Case.check`` says which.

A run pushes ``ctx.warm`` warm-up events (ids 0 .. warm-1, ``feed_warmup``) and, once they are all counted at the
destination, the ``ctx.n - ctx.warm`` measured ones (ids warm .. n-1, ``feed``) into the same agent process;
``ctx.n`` is every event the destination sees, and the checks cover all of them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Ctx", "Case", "CASES", "line_data"]


@dataclass
class Ctx:
    """One run's scratch space and parameters."""

    tmp: Path
    n: int
    port: int
    mport: int
    extra: dict = field(default_factory=dict)
    #: the first ``warm`` of the ``n`` events are the warm-up batch (0 for ceilings and latency probes)
    warm: int = 0

    @property
    def out(self) -> Path:
        return self.tmp / "out"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def line_data(cache: Path, n: int, size: int) -> Path:
    """A file of ``n`` lines of exactly ``size`` bytes (newline included): a 10-digit id, then filler."""
    path = cache / f"lines-{n}-{size}.txt"
    if path.exists() and path.stat().st_size == n * size:
        return path
    filler = (b"abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 2))[: size - 12]
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        step = 100_000
        for start in range(0, n, step):
            f.write(b"".join(b"%010d %s\n" % (i, filler) for i in range(start, min(n, start + step))))
    tmp.rename(path)
    return path


def wait_port(port: int, proc_alive, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc_alive():
            raise RuntimeError("agent exited before opening its port")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} not open after {timeout} s")


def metrics(mport: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
        return json.loads(r.read())


def copy_lines(src: Path, dst: Path, first: int, count: int, size: int) -> None:
    """Lines ``first`` .. ``first + count - 1`` of a ``line_data`` file (``size`` bytes each) into ``dst``."""
    with open(src, "rb") as f, open(dst, "wb") as out:
        f.seek(first * size)
        left = count * size
        while left:
            chunk = f.read(min(left, 1 << 22))
            if not chunk:
                raise RuntimeError(f"{src} is shorter than {first + count} lines")
            out.write(chunk)
            left -= len(chunk)


#: seconds between two reads of the output files' sizes: a listdir and a stat or two by the harness, nothing asked
#: of the agent (whose GIL it does not touch) and a fraction of a percent of one core
FILE_POLL = 0.01


def dir_bytes(out: Path) -> int:
    total = 0
    try:
        for p in out.iterdir():
            try:
                total += p.stat().st_size
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        pass
    return total


def read_lines(out: Path) -> list[bytes]:
    data = b"".join(p.read_bytes() for p in sorted(out.iterdir(), key=lambda p: (p.stat().st_mtime, p.name)))
    return data.split(b"\n")[:-1] if data else []


def channel_taken(ctx: Ctx) -> int:
    """Events the sinks took from channel c1, read from the agent's /metrics (0 while it is not up yet); the
    largest ChannelSize seen is kept as ``ctx.extra["peak_queued"]`` (the backlog a run held in memory)."""
    try:
        channel = metrics(ctx.mport).get("CHANNEL.c1", {})
    except OSError:
        return 0
    queued = int(channel.get("ChannelSize", 0))
    if queued > ctx.extra.get("peak_queued", 0):
        ctx.extra["peak_queued"] = queued
    return int(channel.get("EventTakeSuccessCount", 0))


class Case:
    name = ""
    title = ""
    line_size = 100
    conf = ""
    #: Runs whose input is pushed by the harness measure from the first byte sent; self-generating sources
    #: (seq) measure from the first event seen at the destination.
    self_generating = False
    #: Events in the burst and sustained runs, as multiples of the harness's --burst/--sustained figures.
    scale = 1
    scale_sustained = 1
    has_latency = False
    #: what ``verify`` checks at the destination: "ids" (every id once, read back) or "count" (how many only)
    check = "ids"
    #: seconds between two reads of ``delivered``: 0.1 (ten a second at most) for a count the agent serves (its
    #: HTTP metrics take its GIL) or another process does; cases that count output files' sizes, read by the
    #: harness alone without asking any process, set it lower
    poll = 0.1

    def render(self, ctx: Ctx) -> str:
        return self.conf.format(port=ctx.port, mport=ctx.mport, out=ctx.out, tmp=ctx.tmp, n=ctx.n)

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        ctx.out.mkdir(parents=True, exist_ok=True)

    def ready(self, ctx: Ctx, alive) -> None:
        wait_port(ctx.port, alive)

    def feed_warmup(self, ctx: Ctx) -> None:
        """Push the warm-up input (events 0 .. ctx.warm-1) before the clock starts; nothing for self-generating
        sources, whose warm-up is the first ``ctx.warm`` events they make."""

    def feed(self, ctx: Ctx) -> None:
        """Push the measured input (events ctx.warm .. ctx.n-1); runs in a thread while the harness counts."""

    def delivered(self, ctx: Ctx) -> int:
        raise NotImplementedError

    def verify(self, ctx: Ctx) -> None:
        """Exact check: every event arrived once."""

    def latency(self, ctx: Ctx, alive, rate: int, seconds: float) -> list[float] | None:
        return None

    def helper(self, ctx: Ctx) -> tuple[str, str, int] | None:
        """A second agent (properties text, agent name, port to wait for) started first, for multi-agent cases."""
        return None


class TakeCounted:
    """For cases whose sink has no output to count (null, hdfs): delivery is the channel's take counter."""

    name: str
    check = "count"
    poll = 0.1  # the agent's HTTP metrics: ten requests a second at most

    def delivered(self, ctx: Ctx) -> int:
        return channel_taken(ctx)

    def verify(self, ctx: Ctx) -> None:
        got = channel_taken(ctx)
        if got != ctx.n:
            raise AssertionError(f"{self.name}: {got} events taken, expected {ctx.n}")


def _check_ids(lines: list[bytes], n: int) -> None:
    if len(lines) != n:
        raise AssertionError(f"expected {n} events at the destination, found {len(lines)}")
    ids = sorted(int(line[:10]) for line in lines)
    if ids != list(range(n)):
        missing = n - len(set(ids))
        raise AssertionError(f"{missing} ids missing and {len(ids) - len(set(ids))} duplicated at the destination")


class NetcatMemoryFileRoll(Case):
    name = "netcat-memory-file_roll"
    title = "netcat → memory → file_roll"
    has_latency = True
    #: netcat into a memory channel: the front half every netcat → memory → <sink> case shares
    source_and_channel = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
"""
    conf = source_and_channel + """\
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.batchSize = 1000
"""

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        super().prepare(ctx, cache)
        ctx.extra["data"] = line_data(cache, ctx.n, self.line_size)

    def _send(self, ctx: Ctx, first: int, count: int) -> None:
        if count:
            with socket.create_connection(("127.0.0.1", ctx.port)) as s, open(ctx.extra["data"], "rb") as f:
                s.sendfile(f, first * self.line_size, count * self.line_size)

    def feed_warmup(self, ctx: Ctx) -> None:
        self._send(ctx, 0, ctx.warm)

    def feed(self, ctx: Ctx) -> None:
        self._send(ctx, ctx.warm, ctx.n - ctx.warm)

    poll = FILE_POLL

    def delivered(self, ctx: Ctx) -> int:
        return dir_bytes(ctx.out) // self.line_size

    def verify(self, ctx: Ctx) -> None:
        _check_ids(read_lines(ctx.out), ctx.n)

    def latency(self, ctx: Ctx, alive, rate: int, seconds: float) -> list[float]:
        """Paced input (``rate`` lines/s) stamped with the send time; the output is tailed for arrival times."""
        total = int(rate * seconds)
        tick = 0.005
        per_tick = max(1, int(rate * tick))
        sent: dict[int, int] = {}
        arrived: dict[int, int] = {}
        stop = threading.Event()

        def tail() -> None:
            offsets: dict[Path, int] = {}
            partial: dict[Path, bytes] = {}
            while not stop.is_set() or len(arrived) < len(sent):
                now = time.monotonic_ns()
                for p in sorted(ctx.out.iterdir()):
                    size = p.stat().st_size
                    off = offsets.get(p, 0)
                    if size > off:
                        with open(p, "rb") as f:
                            f.seek(off)
                            chunk = partial.get(p, b"") + f.read(size - off)
                        offsets[p] = size
                        *lines, rest = chunk.split(b"\n")
                        partial[p] = rest
                        for line in lines:
                            arrived[int(line[:10])] = now
                if stop.is_set() and time.monotonic_ns() - stop_ns[0] > 30e9:
                    return
                time.sleep(0.001)

        stop_ns = [0]
        reader = threading.Thread(target=tail, daemon=True)
        reader.start()
        filler = b"x" * (self.line_size - 12)
        with socket.create_connection(("127.0.0.1", ctx.port)) as s:
            start = time.monotonic()
            i = 0
            while i < total:
                due = start + (i // per_tick) * tick
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                now = time.monotonic_ns()
                batch = range(i, min(total, i + per_tick))
                for k in batch:
                    sent[k] = now
                s.sendall(b"".join(b"%010d %s\n" % (k, filler) for k in batch))
                i += per_tick
            stop_ns[0] = time.monotonic_ns()
            stop.set()
            reader.join(35)
        if len(arrived) != total:
            raise AssertionError(f"latency run: {total - len(arrived)} of {total} lines did not arrive")
        return [(arrived[k] - sent[k]) / 1e6 for k in range(total)]


class NetcatFileChannelFileRoll(NetcatMemoryFileRoll):
    name = "netcat-file-file_roll"
    title = "netcat → file channel → file_roll"
    has_latency = False
    conf = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {tmp}/checkpoint
a1.channels.c1.dataDirs = {tmp}/data
a1.channels.c1.capacity = 1000000
a1.channels.c1.transactionCapacity = 1000
a1.channels.c1.minimumRequiredSpace = 1048576
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.batchSize = 1000
"""


def _stage(ctx: Ctx, cache: Path, size: int) -> None:
    """The warm-up lines and the measured lines as two files outside the watched directory, renamed in by
    ``feed_warmup`` and ``feed``."""
    data = line_data(cache, ctx.n, size)
    if ctx.warm:
        ctx.extra["staged_warm"] = ctx.tmp / "warm.log"
        copy_lines(data, ctx.extra["staged_warm"], 0, ctx.warm, size)
    ctx.extra["staged"] = ctx.tmp / "input.log"
    copy_lines(data, ctx.extra["staged"], ctx.warm, ctx.n - ctx.warm, size)


class SpoolFileChannelFileRoll(Case):
    """Files dropped into a spooling directory, through the durable file channel (fsync per commit)."""

    conf = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {tmp}/spool
a1.sources.r1.batchSize = {batch}
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {tmp}/checkpoint
a1.channels.c1.dataDirs = {tmp}/data
a1.channels.c1.capacity = 1000000
a1.channels.c1.transactionCapacity = {batch}
a1.channels.c1.minimumRequiredSpace = 1048576
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.batchSize = {batch}
"""

    def __init__(self, line_size: int, batch: int):
        self.line_size = line_size
        self.batch = batch
        kib = f"{line_size // 1024} KiB" if line_size >= 1024 else f"{line_size} B"
        self.name = f"spooldir-file-file_roll-{line_size}b-batch{batch}"
        self.title = f"spooldir → file channel → file_roll ({kib} lines, batch {batch})"

    def render(self, ctx: Ctx) -> str:
        return self.conf.format(tmp=ctx.tmp, out=ctx.out, batch=self.batch)

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        super().prepare(ctx, cache)
        (ctx.tmp / "spool").mkdir()
        _stage(ctx, cache, self.line_size)

    def ready(self, ctx: Ctx, alive) -> None:
        time.sleep(1.0)  # no port to wait for: give the agent (and the JVM) a moment to start its source
        if not alive():
            raise RuntimeError("agent exited during start")

    def feed_warmup(self, ctx: Ctx) -> None:
        if ctx.warm:
            os.rename(ctx.extra["staged_warm"], ctx.tmp / "spool" / "warm.log")

    def feed(self, ctx: Ctx) -> None:
        os.rename(ctx.extra["staged"], ctx.tmp / "spool" / "input.log")

    poll = FILE_POLL

    def delivered(self, ctx: Ctx) -> int:
        return dir_bytes(ctx.out) // self.line_size

    def verify(self, ctx: Ctx) -> None:
        _check_ids(read_lines(ctx.out), ctx.n)


class FileSourceMemoryNull(TakeCounted, Case):
    """A file of 100-byte lines read by a file source into memory → null (counted by the channel's take counter).

    The sustained run is ten times the others: 10,000,000 lines, a 1 GB file."""

    scale_sustained = 10
    line_size = 100
    source = ""

    def render(self, ctx: Ctx) -> str:
        return f"""\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
{self.source.format(tmp=ctx.tmp)}
a1.sources.r1.batchSize = 1000
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 1000
"""

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        super().prepare(ctx, cache)
        (ctx.tmp / "in").mkdir()
        _stage(ctx, cache, self.line_size)

    def ready(self, ctx: Ctx, alive) -> None:
        wait_port(ctx.mport, alive)

    def feed_warmup(self, ctx: Ctx) -> None:
        if ctx.warm:
            os.rename(ctx.extra["staged_warm"], ctx.tmp / "in" / "warm.log")

    def feed(self, ctx: Ctx) -> None:
        os.rename(ctx.extra["staged"], ctx.tmp / "in" / "input.log")



class SpoolEncryptedFileChannelFileRoll(SpoolFileChannelFileRoll):
    """The same case with Flume's file channel encryption on (AESCTRNOPADDING, a JCEKS key made by keytool
    -genseckey once into the bench cache): beside the plain case, the cost of encryption on both systems."""

    encryption = """\
a1.channels.c1.encryption.activeKey = key-0
a1.channels.c1.encryption.cipherProvider = AESCTRNOPADDING
a1.channels.c1.encryption.keyProvider = JCEKSFILE
a1.channels.c1.encryption.keyProvider.keyStoreFile = {store}
a1.channels.c1.encryption.keyProvider.keyStorePasswordFile = {password}
a1.channels.c1.encryption.keyProvider.keys = key-0
"""

    def __init__(self, line_size: int, batch: int):
        super().__init__(line_size, batch)
        self.name = f"spooldir-file-encrypted-file_roll-{line_size}b-batch{batch}"
        self.title = self.title.replace("file channel", "encrypted file channel")

    def render(self, ctx: Ctx) -> str:
        return super().render(ctx) + self.encryption.format(**ctx.extra["keys"])

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        super().prepare(ctx, cache)
        ctx.extra["keys"] = _file_channel_key(cache)


def _file_channel_key(cache: Path) -> dict[str, Path]:
    """A JCEKS store with AES key ``key-0`` whose password is the store's, made by keytool once per cache."""
    d = cache / "file-channel-key"
    store, password = d / "keys.jceks", d / "password.txt"
    if not store.exists():
        d.mkdir(parents=True, exist_ok=True)
        password.write_text("bench-password\n")
        partial = d / "keys.jceks.partial"
        partial.unlink(missing_ok=True)
        subprocess.run(["keytool", "-genseckey", "-keystore", str(partial), "-storetype", "JCEKS", "-storepass",
                        "bench-password", "-keypass", "bench-password", "-alias", "key-0", "-keyalg", "AES",
                        "-keysize", "128"], check=True, capture_output=True, timeout=120)
        partial.rename(store)
    return {"store": store, "password": password}


class SpoolMemoryNull(FileSourceMemoryNull):
    name = "spooldir-memory-null"
    title = "spooldir → memory → null (100 B lines)"
    source = "a1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = {tmp}/in"


class TaildirMemoryNull(FileSourceMemoryNull):
    name = "taildir-memory-null"
    title = "TAILDIR → memory → null (100 B lines)"
    source = ("a1.sources.r1.type = TAILDIR\na1.sources.r1.filegroups = f1\n"
              "a1.sources.r1.filegroups.f1 = {tmp}/in/.*\\\\.log\n"
              "a1.sources.r1.positionFile = {tmp}/taildir_position.json")


class AvroChain(NetcatMemoryFileRoll):
    """Two agents of the same system: a collector (netcat → memory → avro sink) and an aggregator (avro source →
    memory → file_roll). CPU and RSS are the two processes' sums."""

    has_latency = False
    aggregator = """\
agg.sources = r1
agg.channels = c1
agg.sinks = k1
agg.sources.r1.type = avro
agg.sources.r1.bind = 127.0.0.1
agg.sources.r1.port = {aport}
agg.sources.r1.channels = c1
{agg_tls}agg.channels.c1.type = memory
agg.channels.c1.capacity = 100000
agg.channels.c1.transactionCapacity = {batch}
agg.sinks.k1.type = file_roll
agg.sinks.k1.channel = c1
agg.sinks.k1.sink.directory = {out}
agg.sinks.k1.sink.batchSize = {batch}
"""
    conf = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = {batch}
a1.sinks.k1.type = avro
a1.sinks.k1.channel = c1
a1.sinks.k1.hostname = 127.0.0.1
a1.sinks.k1.port = {aport}
a1.sinks.k1.batch-size = {batch}
{sink_tls}"""

    def __init__(self, batch: int, tls: bool = False):
        self.batch = batch
        self.tls = tls
        self.name = f"avro-chain-batch{batch}" + ("-tls" if tls else "")
        self.title = f"netcat → avro sink → avro source → file_roll (two agents, batch {batch}" + \
            (", TLS)" if tls else ")")

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        super().prepare(ctx, cache)
        if self.tls:  # one PKCS12 key store that both Flume and pyflume read
            from peers.certs import self_signed

            ctx.extra["p12"] = self_signed(ctx.tmp)[2]

    def helper(self, ctx: Ctx) -> tuple[str, str, int]:
        ctx.extra.setdefault("aport", free_port())
        tls = ""
        if self.tls:
            tls = (f"agg.sources.r1.ssl = true\nagg.sources.r1.keystore = {ctx.extra['p12']}\n"
                   "agg.sources.r1.keystore-type = PKCS12\nagg.sources.r1.keystore-password = secret\n")
        return self.aggregator.format(aport=ctx.extra["aport"], out=ctx.out, batch=self.batch, agg_tls=tls), "agg", \
            ctx.extra["aport"]

    def render(self, ctx: Ctx) -> str:
        ctx.extra.setdefault("aport", free_port())
        tls = "a1.sinks.k1.ssl = true\na1.sinks.k1.trust-all-certs = true\n" if self.tls else ""
        return self.conf.format(port=ctx.port, aport=ctx.extra["aport"], batch=self.batch, sink_tls=tls)


class ThriftChain(AvroChain):
    """The avro chain's two agents over Thrift RPC instead: netcat → memory → thrift sink, thrift source → memory →
    file_roll, in the compact (Flume's default) or binary protocol."""

    def __init__(self, batch: int, protocol: str = "compact"):
        super().__init__(batch)
        self.aggregator = AvroChain.aggregator.replace("agg.sources.r1.type = avro", "agg.sources.r1.type = thrift\n"
                                                       f"agg.sources.r1.protocol = {protocol}")
        self.conf = AvroChain.conf.replace("a1.sinks.k1.type = avro", "a1.sinks.k1.type = thrift\n"
                                           f"a1.sinks.k1.protocol = {protocol}")
        self.name = f"thrift-chain-batch{batch}" + ("-binary" if protocol == "binary" else "")
        self.title = f"netcat → thrift sink → thrift source → file_roll (two agents, batch {batch}, {protocol})"


_MINIDFS = None


def minidfs():
    """One MiniDFSCluster for the whole benchmark process (started on first use, stopped at exit)."""
    global _MINIDFS
    if _MINIDFS is None:
        import atexit
        import tempfile

        from peers.hdfs import MiniDFS

        _MINIDFS = MiniDFS(Path(tempfile.mkdtemp(prefix="bench-minidfs-")), free_port(), free_port()).start()
        atexit.register(_MINIDFS.stop)
    return _MINIDFS


class NetcatMemoryHdfs(TakeCounted, NetcatMemoryFileRoll):
    """1 KiB lines into the hdfs sink (DataStream): on the mini cluster over RPC (pyflume's default for hdfs://) or
    through WebHDFS, or on the local disk."""

    has_latency = False
    line_size = 1000
    conf = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.max-line-length = 2048
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = {capacity}
a1.channels.c1.transactionCapacity = {batch}
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = {path}
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.batchSize = {batch}
a1.sinks.k1.hdfs.rollInterval = 0
a1.sinks.k1.hdfs.rollCount = 0
a1.sinks.k1.hdfs.rollSize = 134217728
{extra}
"""

    def __init__(self, target: str, batch: int, capacity: int = 100_000):
        self.target = target
        self.batch = batch
        self.capacity = capacity
        self.name = f"netcat-memory-hdfs-{target}-batch{batch}"
        where = {"minidfs": "mini HDFS cluster over RPC", "webhdfs": "mini HDFS cluster via WebHDFS",
                 "file": "file://"}[target]
        self.title = f"netcat → memory → hdfs sink ({where}, 1 KB lines, batch {self.batch})"
        if capacity != 100_000:  # the same case with a channel that holds less of the input at once
            self.name += f"-capacity{capacity}"
            self.title = self.title[:-1] + f", channel capacity {capacity:,})"

    def render(self, ctx: Ctx) -> str:
        if self.target in ("minidfs", "webhdfs"):
            dfs = minidfs()
            path = f"hdfs://127.0.0.1:{dfs.rpc_port}/bench/{ctx.tmp.name}"
            extra = ""
            if self.target == "webhdfs":  # Flume ignores both lines (its sink always speaks RPC)
                extra = ("a1.sinks.k1.hdfs.transport = webhdfs\n"
                         f"a1.sinks.k1.hdfs.webhdfs.address = 127.0.0.1:{dfs.http_port}")
        else:
            path, extra = f"file://{ctx.out}", ""
        return self.conf.format(port=ctx.port, batch=self.batch, path=path, extra=extra, capacity=self.capacity)


_KAFKA = None


def kafka_broker():
    """One Kafka broker (KRaft) for the whole benchmark process; every run uses fresh topics and groups."""
    global _KAFKA
    if _KAFKA is None:
        import atexit
        import tempfile

        from peers.kafka import KafkaBroker

        _KAFKA = KafkaBroker(Path(tempfile.mkdtemp(prefix="bench-kafka-"))).start()
        atexit.register(_KAFKA.stop)
    return _KAFKA


def topic_size(topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    broker = kafka_broker()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench-count"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts)
    finally:
        c.close()


class NetcatMemoryKafka(TakeCounted, NetcatMemoryFileRoll):
    """100-byte lines into the Kafka sink (flumeBatchSize 1000, each system's default producer settings)."""

    name = "netcat-memory-kafka"
    title = "netcat → memory → Kafka sink (100 B messages, flumeBatchSize 1000)"
    has_latency = False
    conf = NetcatMemoryFileRoll.source_and_channel + """\
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.channel = c1
a1.sinks.k1.kafka.bootstrap.servers = {servers}
a1.sinks.k1.kafka.topic = {topic}
a1.sinks.k1.flumeBatchSize = 1000
"""

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        super().prepare(ctx, cache)
        ctx.extra["topic"] = f"bench-{ctx.tmp.name}"
        kafka_broker().create_topic(ctx.extra["topic"], 1)

    def render(self, ctx: Ctx) -> str:
        return self.conf.format(port=ctx.port, servers=kafka_broker().bootstrap, topic=ctx.extra["topic"])

    def verify(self, ctx: Ctx) -> None:
        super().verify(ctx)
        got = topic_size(ctx.extra["topic"])
        if got != ctx.n:
            raise AssertionError(f"{self.name}: the topic holds {got} records, expected {ctx.n}")


class KafkaSourceMemoryNull(TakeCounted, Case):
    """A topic pre-filled with 100-byte records read by the Kafka source (batchSize 1000) into memory → null."""

    name = "kafka-memory-null"
    title = "Kafka source → memory → null (100 B messages, batchSize 1000)"
    self_generating = True
    conf = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r1.channels = c1
a1.sources.r1.kafka.bootstrap.servers = {servers}
a1.sources.r1.kafka.topics = {topic}
a1.sources.r1.kafka.consumer.group.id = {topic}
a1.sources.r1.kafka.consumer.auto.offset.reset = earliest
a1.sources.r1.batchSize = 1000
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 1000
"""

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        from confluent_kafka import Producer

        super().prepare(ctx, cache)
        topic = ctx.extra["topic"] = f"bench-{ctx.tmp.name}"
        broker = kafka_broker()
        broker.create_topic(topic, 1)
        p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "batch.size": 1_000_000})
        filler = (b"abcdefghijklmnopqrstuvwxyz0123456789" * 3)[:89]
        for i in range(ctx.n):
            while True:
                try:
                    p.produce(topic, b"%010d %s" % (i, filler))
                    break
                except BufferError:
                    p.poll(0.05)
        if p.flush(120) != 0:
            raise RuntimeError("could not fill the benchmark topic")

    def render(self, ctx: Ctx) -> str:
        return self.conf.format(servers=kafka_broker().bootstrap, topic=ctx.extra["topic"])

    def ready(self, ctx: Ctx, alive) -> None:
        wait_port(ctx.mport, alive)

    def ceiling(self, ctx: Ctx) -> float:
        """Seconds librdkafka's own Python client (confluent-kafka, as the source uses it: same settings, batches of
        1000, each record's value taken, an asynchronous commit per batch) takes from the first record to the last,
        with nothing else in the process: the most the source could read on this machine."""
        from confluent_kafka import Consumer, TopicPartition

        from agent.kafka_conf import consumer_defaults

        topic = ctx.extra["topic"]
        settings = {"bootstrap.servers": kafka_broker().bootstrap, "group.id": f"{topic}-ceiling",
                    "auto.offset.reset": "earliest", "enable.auto.commit": "false", "enable.auto.offset.store": "false"}
        consumer_defaults(settings)  # the source's prefetch settings (without them librdkafka idles between fetches)
        c = Consumer(settings)
        try:
            c.subscribe([topic])
            # the clock starts when the first batch is in hand; its records are not counted
            read, counted, t0, give_up = 0, 0, 0.0, time.monotonic() + 120
            while read < ctx.n:
                msgs = c.consume(1000, 1.0)
                if not msgs:
                    if time.monotonic() > give_up:
                        raise AssertionError(f"{self.name} ceiling: read {read} of {ctx.n} records")
                    continue
                values = [m.value() for m in msgs if m.error() is None]
                m = msgs[-1]
                c.commit(offsets=[TopicPartition(m.topic(), m.partition(), m.offset() + 1)], asynchronous=True)
                if read:
                    counted += len(values)
                else:
                    t0 = time.monotonic()
                read += len(values)
            elapsed = time.monotonic() - t0
        finally:
            c.close()
        return elapsed * ctx.n / counted  # the seconds n records take at the rate measured


class NetcatMemoryWebHdfs(NetcatMemoryHdfs):
    """The WebHDFS rows, with their client ceiling: each batch is one WebHDFS APPEND, so the datanode's own cost
    per append bounds the rate whatever the agent does."""

    def __init__(self, batch: int):
        super().__init__("webhdfs", batch)

    def ceiling(self, ctx: Ctx) -> float:
        """Seconds a bare requests session takes to APPEND the same lines, ``batch`` per request, to one new file
        straight at the datanode the namenode named (as pyflume's sink does: no namenode hop per batch), from the
        first append to the last; the file's length is checked."""
        import getpass

        import requests

        dfs = minidfs()
        user = getpass.getuser()
        url = f"http://127.0.0.1:{dfs.http_port}/webhdfs/v1/bench/{ctx.tmp.name}-ceiling/data"
        data = ctx.extra["data"].read_bytes()
        step = self.batch * self.line_size
        with requests.Session() as http:
            def located(method: str, op: str) -> str:
                r = http.request(method, url, params={"op": op, "noredirect": "true", "user.name": user}, timeout=60)
                r.raise_for_status()
                return r.json()["Location"]

            http.put(located("PUT", "CREATE"), data=b"", timeout=60).raise_for_status()
            at = located("POST", "APPEND")
            t0 = time.monotonic()
            for i in range(0, len(data), step):
                r = http.post(at, data=data[i:i + step], timeout=60,
                              headers={"Content-Type": "application/octet-stream"})
                if r.status_code != 200:
                    raise AssertionError(f"{self.name} ceiling: APPEND answered {r.status_code}: {r.text[:300]}")
            elapsed = time.monotonic() - t0
            r = http.get(url, params={"op": "GETFILESTATUS", "user.name": user}, timeout=60)
            length = r.json()["FileStatus"]["length"]
            http.delete(url, params={"op": "DELETE", "user.name": user}, timeout=60)
        if length != len(data):
            raise AssertionError(f"{self.name} ceiling: the file holds {length} bytes, expected {len(data)}")
        return elapsed


class HttpMemoryNull(TakeCounted, Case):
    """JSON batches of 1,000 events POSTed over one keep-alive connection to the http source → memory → null."""

    name = "http-memory-null"
    title = "http (JSON, keep-alive, 1000 events per request) → memory → null"
    line_size = 100
    conf = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 1000
"""

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        super().prepare(ctx, cache)
        filler = "x" * (self.line_size - 12)
        # (first id, the whole request: head and JSON body); a request never straddles the warm-up and the measured
        # batch. Requests are made here, before any agent starts, so the client's work while measuring is one
        # sendall per request and reading the short answer: with http.client it was about 130 µs of CPU per
        # request, in series with the agent's own time on a keep-alive connection, for both systems alike.
        starts = sorted({*range(0, ctx.warm, 1000), *range(ctx.warm, ctx.n, 1000)})
        ends = starts[1:] + [ctx.n]
        requests = []
        for k, e in zip(starts, ends, strict=True):
            body = json.dumps([{"headers": {}, "body": f"{i:010d} {filler}"} for i in range(k, e)]).encode()
            head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n")
            requests.append((k, head.encode() + body))
        ctx.extra["requests"] = requests

    def feed_warmup(self, ctx: Ctx) -> None:
        self._post(ctx, [r for k, r in ctx.extra["requests"] if k < ctx.warm])

    def feed(self, ctx: Ctx) -> None:
        self._post(ctx, [r for k, r in ctx.extra["requests"] if k >= ctx.warm])

    def _post(self, ctx: Ctx, requests: list[bytes]) -> None:
        """Each request in turn on one keep-alive connection; a 503 (channel full) is sent again after 10 ms."""
        with socket.create_connection(("127.0.0.1", ctx.port), timeout=30) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            answers = sock.makefile("rb")
            for request in requests:
                while True:
                    sock.sendall(request)
                    status = _http_answer(answers)
                    if status == 200:
                        break
                    if status != 503:
                        raise RuntimeError(f"http source answered {status}")
                    time.sleep(0.01)


def _http_answer(answers) -> int:  # noqa: ANN001 - a socket's binary reader
    """Read one HTTP/1.1 answer (status line, headers, a Content-Length or chunked body) and return its status."""
    line = answers.readline(65537)
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise RuntimeError(f"http source answered {line[:80]!r}")
    length = 0
    chunked = False
    while (header := answers.readline(65537)) not in (b"\r\n", b"\n", b""):
        name, _, value = header.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value.strip().lower() == b"chunked"
    if chunked:  # Jetty's answer to Flume's servlet: chunks up to the zero-sized one, then an empty trailer
        while (size := int(answers.readline(65537).split(b";")[0], 16)) > 0:
            answers.read(size + 2)
        while answers.readline(65537) not in (b"\r\n", b"\n", b""):
            pass
    elif length and len(answers.read(length)) != length:
        raise RuntimeError("the http source closed the connection mid-answer")
    return int(parts[1])


_HBASE = None


def hbase_peer():
    """One HBase (standalone + Thrift server) for the whole benchmark process; every run writes a fresh table."""
    global _HBASE
    if _HBASE is None:
        import atexit
        import tempfile

        from peers.hbase import HBase

        _HBASE = HBase(Path(tempfile.mkdtemp(prefix="bench-hbase-"))).start()
        atexit.register(_HBASE.stop)
    return _HBASE


def hbase_row_count(table: str) -> int:
    conn = hbase_peer().connection()
    try:
        return sum(1 for _ in conn.table(table).scan(filter="FirstKeyOnlyFilter() AND KeyOnlyFilter()",
                                                     batch_size=10_000))
    finally:
        conn.close()


def hbase_drop(table: str) -> None:
    conn = hbase_peer().connection()
    try:
        conn.delete_table(table, disable=True)
    finally:
        conn.close()


class NetcatMemoryHBase(TakeCounted, NetcatMemoryFileRoll):
    """100-byte lines into the hbase2 sink, one put per line (row key = the line's id, column = the rest, through
    the regex serializer), at a given batchSize; a fresh one-region table per run. ``ceiling`` writes the same rows
    with happybase's own batch puts, the fastest Python path over the same Thrift server."""

    has_latency = False
    conf = NetcatMemoryFileRoll.source_and_channel + """\
a1.sinks.k1.type = hbase2
a1.sinks.k1.channel = c1
a1.sinks.k1.table = {table}
a1.sinks.k1.columnFamily = cf
a1.sinks.k1.zookeeperQuorum = {zk}
a1.sinks.k1.thrift = {thrift}
a1.sinks.k1.batchSize = {batch}
a1.sinks.k1.serializer = org.apache.flume.sink.hbase2.RegexHBase2EventSerializer
a1.sinks.k1.serializer.regex = ([0-9]{{10}}) (.*)
a1.sinks.k1.serializer.colNames = ROW_KEY,payload
a1.sinks.k1.serializer.rowKeyIndex = 0
"""

    def __init__(self, batch: int):
        self.batch = batch
        self.name = f"netcat-memory-hbase2-batch{batch}"
        self.title = f"netcat → memory → hbase2 sink (100 B lines, one put each, batchSize {batch})"

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        super().prepare(ctx, cache)
        ctx.extra["table"] = "bench_" + "".join(c if c.isalnum() else "_" for c in ctx.tmp.name)
        hbase_peer().create_table(ctx.extra["table"], "cf")

    def render(self, ctx: Ctx) -> str:
        h = hbase_peer()
        return self.conf.format(port=ctx.port, table=ctx.extra["table"], zk=h.zk_quorum, thrift=h.thrift,
                                batch=self.batch)

    def verify(self, ctx: Ctx) -> None:
        super().verify(ctx)
        try:
            got = hbase_row_count(ctx.extra["table"])
            if got != ctx.n:
                raise AssertionError(f"{self.name}: the table holds {got} rows, expected {ctx.n}")
        finally:
            hbase_drop(ctx.extra["table"])

    def ceiling(self, ctx: Ctx) -> float:
        """Seconds happybase takes to write the same rows in batches of ``batch`` puts (checked like a run)."""
        conn = hbase_peer().connection()
        try:
            table = conn.table(ctx.extra["table"])
            lines = ctx.extra["data"].read_bytes().split(b"\n")[:-1]
            t0 = time.monotonic()
            with table.batch(batch_size=self.batch) as b:
                for line in lines:
                    b.put(line[:10], {b"cf:payload": line[11:]})
            elapsed = time.monotonic() - t0
        finally:
            conn.close()
        try:
            got = hbase_row_count(ctx.extra["table"])
            if got != ctx.n:
                raise AssertionError(f"{self.name} ceiling: the table holds {got} rows, expected {ctx.n}")
        finally:
            hbase_drop(ctx.extra["table"])
        return elapsed


_HIVE = None


def hive_peer():
    """One Hive metastore (on the benchmark's MiniDFS) and one Hive query JVM for the whole benchmark process."""
    global _HIVE
    if _HIVE is None:
        import atexit
        import tempfile

        from peers.hive import HiveMetastore

        ms = HiveMetastore(Path(tempfile.mkdtemp(prefix="bench-hive-")), free_port(),
                           f"hdfs://127.0.0.1:{minidfs().rpc_port}").start()
        _HIVE = (ms, ms.query_client())
        atexit.register(ms.stop)
        atexit.register(_HIVE[1].close)
    return _HIVE


class NetcatMemoryHive(TakeCounted, NetcatMemoryFileRoll):
    """100-byte lines into the hive sink (DELIMITED: id and filler into a transactional ORC table partitioned by
    day), one Hive transaction per batch, on the mini cluster; the rows are counted back through Hive's Driver.
    pyflume only (``--systems pyflume``): Flume 1.11's Hive sink (Hive 1.2 streaming client) cannot talk to a
    Hive 3 or 4 metastore, see docs/hive.md. ``ceiling`` writes the same rows with Hive's own streaming writer
    (``HiveStreamWriter.java``, hive-streaming 3.1.3 on Hive 4.0.1's jars) in transactions of ``batch`` rows."""

    has_latency = False
    check = "ids"  # read back through Hive's Driver
    conf = NetcatMemoryFileRoll.source_and_channel + """\
a1.sinks.k1.type = hive
a1.sinks.k1.channel = c1
a1.sinks.k1.hive.metastore = {uri}
a1.sinks.k1.hive.database = default
a1.sinks.k1.hive.table = {table}
a1.sinks.k1.hive.partition = %Y-%m-%d
a1.sinks.k1.useLocalTimeStamp = true
a1.sinks.k1.batchSize = {batch}
a1.sinks.k1.callTimeout = 60000
a1.sinks.k1.serializer = DELIMITED
a1.sinks.k1.serializer.delimiter = " "
a1.sinks.k1.serializer.fieldnames = id,payload
"""

    def __init__(self, batch: int):
        self.batch = batch
        self.name = f"netcat-memory-hive-batch{batch}"
        self.title = f"netcat → memory → hive sink (100 B lines, DELIMITED, one Hive transaction per batch of {batch})"

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        super().prepare(ctx, cache)
        table = "bench_" + "".join(c if c.isalnum() else "_" for c in ctx.tmp.name)
        ctx.extra["table"] = table
        query = hive_peer()[1]
        query.run(f"CREATE TABLE {table} (id BIGINT, payload STRING) PARTITIONED BY (day STRING) STORED AS ORC "
                  f"TBLPROPERTIES ('transactional'='true')")

    def render(self, ctx: Ctx) -> str:
        return self.conf.format(port=ctx.port, uri=hive_peer()[0].uri, table=ctx.extra["table"], batch=self.batch)

    def verify(self, ctx: Ctx) -> None:
        super().verify(ctx)
        self._check_and_drop(ctx, self.name)

    def _check_and_drop(self, ctx: Ctx, who: str) -> None:
        """Every id read back once through Hive's Driver; then the table is dropped."""
        query = hive_peer()[1]
        try:
            ids = [int(r[0]) for r in query.run(f"SELECT id FROM {ctx.extra['table']}")]
            if sorted(ids) != list(range(ctx.n)):
                raise AssertionError(f"{who}: Hive reads {len(ids)} rows ({len(set(ids))} distinct ids), "
                                     f"expected ids 0..{ctx.n - 1}")
        finally:
            query.run(f"DROP TABLE {ctx.extra['table']}")

    def ceiling(self, ctx: Ctx) -> dict:
        """Hive's streaming writer, in its own JVM, writing the same rows into today's partition, one transaction
        per ``batch`` rows and 100 transactions per batch asked (the hive sink's default ``txnsPerBatchAsk``).
        ``seconds`` runs from its first row to its last commit (as the agent's run, from the first line fed to the
        last take); ``end_to_end`` adds the JVM's start and the connection; the rows are checked like a run's."""
        from bench.procstat import cpu_seconds, peak_rss_mb

        ms = hive_peer()[0]
        t0 = time.monotonic()
        proc = ms.stream_writer("default", ctx.extra["table"], time.strftime("%Y-%m-%d"), str(self.batch), "100",
                                str(ctx.extra["data"]))
        assert proc.stdout is not None and proc.stdin is not None
        try:
            said = [proc.stdout.readline().decode().strip()]
            cpu0 = cpu_seconds(proc.pid)
            said.append(proc.stdout.readline().decode().strip())
            end_to_end = time.monotonic() - t0
            if said != ["\x01CONNECTED", said[1]] or not said[1].startswith("\x01DONE "):
                err = (ms.workdir / "hive-stream.err").read_text(errors="replace")
                raise RuntimeError(f"{self.name} ceiling: HiveStreamWriter said {said!r}:\n{err[-3000:]}")
            cpu, rss = cpu_seconds(proc.pid) - cpu0, peak_rss_mb(proc.pid)
        finally:
            proc.stdin.close()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        seconds = int(said[1].split()[1]) / 1000
        self._check_and_drop(ctx, f"{self.name} ceiling")
        print(f"{self.name} n={ctx.n:,} hive-streaming: {ctx.n / seconds:,.0f} rows/s first row to last commit, "
              f"{ctx.n / end_to_end:,.0f} rows/s end to end ({end_to_end:.1f} s with JVM start and connect), "
              f"CPU {cpu:.2f} s, peak RSS {rss:.0f} MB", file=sys.stderr)
        return {"seconds": max(seconds, 1e-3), "end_to_end": end_to_end, "cpu": cpu, "rss": rss}


class SeqMemoryNull(Case):
    name = "seq-memory-null"
    title = "seq → memory → null"
    self_generating = True
    line_size = 0
    check = "count"  # seq's bodies are counters, but a null sink keeps nothing to read back
    # The counter is read over HTTP ten times a second, and pyflume's seq → memory → null runs about ten million
    # events a second: this case runs twenty times the events of the others (and takes twenty times the warm-up)
    # so that even the burst row spans several reads.
    scale = 20
    conf = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 1000
a1.sources.r1.totalEvents = {n}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 1000
"""

    def ready(self, ctx: Ctx, alive) -> None:
        wait_port(ctx.mport, alive)

    def delivered(self, ctx: Ctx) -> int:
        return channel_taken(ctx)

    def verify(self, ctx: Ctx) -> None:
        m = metrics(ctx.mport)
        got = int(m["CHANNEL.c1"]["EventTakeSuccessCount"])
        put = int(m["CHANNEL.c1"]["EventPutSuccessCount"])
        if got != ctx.n or put != ctx.n:
            raise AssertionError(f"seq: {put} put and {got} taken, expected {ctx.n}")


class SpoolSpillableFileRoll(SpoolFileChannelFileRoll):
    """Spooldir into the spillable memory channel: 10,000 events in memory, the backlog beyond spills to its file
    overflow (fsync per commit) and comes back in order."""

    conf = SpoolFileChannelFileRoll.conf.replace(
        "c1.type = file\n", "c1.type = SPILLABLEMEMORY\na1.channels.c1.memoryCapacity = 10000\n").replace(
        "c1.capacity = 1000000", "c1.overflowCapacity = 1000000")

    def __init__(self, line_size: int, batch: int):
        super().__init__(line_size, batch)
        self.name = f"spooldir-spillable-file_roll-{line_size}b-batch{batch}"
        self.title = f"spooldir → spillable memory channel → file_roll ({line_size} B lines, batch {batch})"


class SeqMemoryHttp(Case):
    """seq's events POSTed by the http sink (one request per event, as Flume) to a local counting endpoint
    (tests/peers/http_endpoint.py --count, an asyncio server in its own process) that checks every id once."""

    name = "seq-memory-http"
    title = "seq → memory → http sink (one POST per event, keep-alive)"
    self_generating = True
    line_size = 0
    conf = SeqMemoryNull.conf.replace(SeqMemoryNull.conf[SeqMemoryNull.conf.index("a1.sinks.k1.type"):], """\
a1.sinks.k1.type = org.apache.flume.sink.http.HttpSink
a1.sinks.k1.channel = c1
a1.sinks.k1.endpoint = http://127.0.0.1:{hport}/events
a1.sinks.k1.rollback.2XX = false
a1.sinks.k1.backoff.2XX = false
a1.sinks.k1.incrementMetrics.2XX = true
""")

    def prepare(self, ctx: Ctx, cache: Path) -> None:
        import subprocess
        import sys

        super().prepare(ctx, cache)
        hport = ctx.extra["hport"] = free_port()
        tests = Path(__file__).resolve().parent.parent / "tests"
        ctx.extra["endpoint"] = subprocess.Popen([sys.executable, "-m", "peers.http_endpoint", "--count", str(hport)],
                                                 cwd=str(tests), stdout=subprocess.DEVNULL)
        wait_port(hport, lambda: ctx.extra["endpoint"].poll() is None)
        import atexit

        atexit.register(ctx.extra["endpoint"].kill)

    def render(self, ctx: Ctx) -> str:
        return self.conf.format(n=ctx.n, hport=ctx.extra["hport"])

    def ready(self, ctx: Ctx, alive) -> None:
        wait_port(ctx.mport, alive)

    def _stats(self, ctx: Ctx) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{ctx.extra['hport']}/stats", timeout=5) as r:
            return json.loads(r.read())

    def delivered(self, ctx: Ctx) -> int:
        return self._stats(ctx)["distinct"]

    def verify(self, ctx: Ctx) -> None:
        try:
            stats = self._stats(ctx)
        finally:
            ctx.extra["endpoint"].kill()
        if stats["distinct"] != ctx.n or stats["duplicates"]:
            raise AssertionError(f"{self.name}: {stats['distinct']} distinct ids and {stats['duplicates']} "
                                 f"duplicates at the endpoint, expected {ctx.n} ids once")


CASES: dict[str, Case] = {c.name: c for c in (
    NetcatMemoryFileRoll(), SeqMemoryNull(), SpoolFileChannelFileRoll(100, 1000), SpoolFileChannelFileRoll(1024, 1000),
    SpoolEncryptedFileChannelFileRoll(100, 1000),
    SpoolMemoryNull(), TaildirMemoryNull(), AvroChain(100), AvroChain(1000), AvroChain(1000, tls=True),
    HttpMemoryNull(), NetcatMemoryKafka(), KafkaSourceMemoryNull())}
#: Run on request only (--cases): Flume's netcat source commits one event per transaction, which with the file
#: channel means an fsync per event (about 4,500 events/s here), so a 1M-event run takes Flume minutes.
EXTRA_CASES: dict[str, Case] = {c.name: c for c in (
    NetcatFileChannelFileRoll(), SpoolFileChannelFileRoll(100, 100), SpoolFileChannelFileRoll(1024, 100),
    SpoolSpillableFileRoll(100, 1000),
    # HDFS: both systems (Flume with its hdfs module and hadoop-client); the mini cluster takes a minute to start
    NetcatMemoryHdfs("minidfs", 100), NetcatMemoryHdfs("minidfs", 1000), NetcatMemoryWebHdfs(100),
    NetcatMemoryWebHdfs(1000), NetcatMemoryHdfs("file", 100), NetcatMemoryHdfs("file", 1000),
    # (batch 100 via WebHDFS is not in RESULTS.md: its runs make ~1,600 appends each, and the mini cluster's datanode
    # refuses every APPEND after about 2,000 in one session: DiskOutOfSpaceException, "Insufficient space for
    # appending to FinalizedReplica")
    # the same with a channel of 10,000 events: the input the channel holds at once is bounded by its capacity
    NetcatMemoryHdfs("minidfs", 100, 10_000), NetcatMemoryHdfs("file", 100, 10_000),
    # HBase: both systems (Flume with its hbase2 module and hbase-client 2.6.1) plus happybase's own batch puts;
    # HBase writes about 10k rows/s here, so run these with --burst 50000 --sustained 200000
    NetcatMemoryHBase(100), NetcatMemoryHBase(1000),
    # the http sink: one request per event on both systems; run with --burst 20000 --sustained 100000
    SeqMemoryHttp())}

# Thrift RPC beside the avro chain (issue #20): compact is Flume's default protocol
CASES.update({c.name: c for c in (ThriftChain(1000),)})
EXTRA_CASES.update({c.name: c for c in (ThriftChain(100), ThriftChain(1000, "binary"))})

# Hive: pyflume only (--systems pyflume); Flume 1.11's Hive 1.2 client cannot reach a Hive 3/4 metastore
EXTRA_CASES.update({c.name: c for c in (NetcatMemoryHive(100), NetcatMemoryHive(1000))})
