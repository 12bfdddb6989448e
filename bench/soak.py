"""``python -m bench.soak``: a long paced run of one pyflume agent, checked for loss, leaks and latency drift.

One agent runs two pipelines for ``--minutes`` (30 by default, not run in CI):

* TAILDIR reading a log file the harness appends to → file channel → hdfs sink (DataStream over RPC to Hadoop's
  MiniDFSCluster, files rolled by time so they close during the run, bucketed by the agent's clock);
* netcat → memory channel → Kafka sink (one Apache Kafka broker, restarted every ``--restart-every`` minutes: a
  clean stop, a few seconds down, a start on the same data).

Every event body is ``<pipeline>-<id> <send time>`` (``t-000123456 1764470000.123456``). The paced rates are about
half of the sustained rates measured briefly at the start on this machine (both pipelines at once, backlog bounded),
capped by ``--max-rate``: the point is stability, not throughput. Every 5 s the harness reads the agent's RSS, open
file descriptors and threads from /proc and each pipeline's lag from the agent's /metrics; after the warm-up (the
first 20% of the run) it fits least-squares slopes of RSS (MB/hour) and descriptors (per hour). A reader consumes
the topic (its own group, from the beginning) and records arrival − send time per event, reported as p50/p99 per
window. At the end the feeders stop, the sinks drain (bounded), the agent gets SIGTERM, and the exact sets are
checked: every id sent on each pipeline arrived at least once (HDFS read back through WebHDFS, Kafka from the
reader); missing ids make the exit status 1. ``--write-results`` puts the report in the "Soak" section of
bench/RESULTS.md, leaving the other sections as they are.

    python -m bench.soak --minutes 30                       # the soak (about 35 minutes with start and checks)
    python -m bench.soak --minutes 4 --restart-every 1.5    # a quick check of the harness
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from array import array
from bisect import bisect_right
from itertools import islice
from pathlib import Path

from bench.__main__ import SOAK_SECTION, fmt, machine
from bench.cases import free_port, metrics, wait_port
from bench.procstat import cpu_seconds
from bench.systems import Running, versions  # also puts tests/ on sys.path, for the peers
from peers.hdfs import MiniDFS
from peers.kafka import KafkaBroker

HERE = Path(__file__).resolve().parent
SAMPLE_EVERY = 5.0
BUCKET = 10.0  # latencies are kept per 10 s of send time, grouped into windows for the report
HDFS_DIR = "/soak"
PIPELINES = {"hdfs": "TAILDIR → file channel → hdfs", "kafka": "netcat → memory → Kafka"}

CONF = """\
a1.sources = tail net
a1.channels = fc mem
a1.sinks = hdfs kafka

a1.sources.tail.type = TAILDIR
a1.sources.tail.filegroups = f1
a1.sources.tail.filegroups.f1 = {tmp}/in/soak.log
a1.sources.tail.positionFile = {tmp}/taildir_position.json
a1.sources.tail.batchSize = 1000
a1.sources.tail.channels = fc
a1.channels.fc.type = file
a1.channels.fc.checkpointDir = {tmp}/checkpoint
a1.channels.fc.dataDirs = {tmp}/data
a1.channels.fc.capacity = 2000000
a1.channels.fc.transactionCapacity = 1000
a1.channels.fc.maxFileSize = 67108864
a1.channels.fc.minimumRequiredSpace = 1048576
a1.sinks.hdfs.type = hdfs
a1.sinks.hdfs.channel = fc
a1.sinks.hdfs.hdfs.path = hdfs://127.0.0.1:{rpc}{hdfs_dir}/%Y-%m-%d/%H
a1.sinks.hdfs.hdfs.useLocalTimeStamp = true
a1.sinks.hdfs.hdfs.filePrefix = soak
a1.sinks.hdfs.hdfs.fileType = DataStream
a1.sinks.hdfs.hdfs.batchSize = 1000
a1.sinks.hdfs.hdfs.rollInterval = {roll}
a1.sinks.hdfs.hdfs.rollSize = 0
a1.sinks.hdfs.hdfs.rollCount = 0

a1.sources.net.type = netcat
a1.sources.net.bind = 127.0.0.1
a1.sources.net.port = {port}
a1.sources.net.ack-every-event = false
a1.sources.net.channels = mem
a1.channels.mem.type = memory
a1.channels.mem.capacity = 1000000
a1.channels.mem.transactionCapacity = 1000
a1.sinks.kafka.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.kafka.channel = mem
a1.sinks.kafka.kafka.bootstrap.servers = {servers}
a1.sinks.kafka.kafka.topic = {topic}
a1.sinks.kafka.flumeBatchSize = 1000
"""


class Interrupted(Exception):
    """SIGTERM to the harness: clean up as for Ctrl-C."""


# --- what was sent and what arrived ------------------------------------------------------------------------------


class Feeder:
    """Numbered, timestamped lines for one pipeline (``<prefix>-<id> <send time>``), written by ``write``.

    The first id and the send time of every write are kept, so the send time of any id can be looked up."""

    def __init__(self, prefix: str, write, close) -> None:  # noqa: ANN001
        self.prefix = prefix.encode()
        self._write, self._close = write, close
        self.sent = 0
        self.slowest_write = 0.0
        self.error: BaseException | None = None
        self.closed = False
        self._first = array("q")
        self._at = array("d")

    def send(self, count: int) -> None:
        now = time.time()
        stamp = b"%.6f" % now
        first, p = self.sent, self.prefix
        data = b"".join(b"%s-%09d %s\n" % (p, i, stamp) for i in range(first, first + count))
        t0 = time.monotonic()
        self._write(data)
        self.slowest_write = max(self.slowest_write, time.monotonic() - t0)
        self._first.append(first)
        self._at.append(now)
        self.sent = first + count

    def sent_at(self, i: int) -> float:
        return self._at[max(0, bisect_right(self._first, i) - 1)]

    def paced(self, rate: int, until: float, stop: threading.Event) -> None:
        """``rate`` lines a second until the monotonic time ``until``, in writes every 10 ms; a blocked write (a
        full channel pushing back) is caught up afterwards, at most a second's worth per write."""
        start, base = time.monotonic(), self.sent
        try:
            while not stop.is_set():
                now = time.monotonic()
                due = int((min(now, until) - start) * rate) - (self.sent - base)
                if due > 0:
                    self.send(min(due, rate))
                if now >= until:
                    return
                stop.wait(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported by the main loop
            if not self.closed:  # closing the connection is how a blocked write is ended
                self.error = exc

    def close(self) -> None:
        self.closed = True
        self._close()


class Arrivals:
    """How many times each id of one pipeline arrived: a byte per id (saturating at 255), so 30 minutes of events
    fit in a few tens of MB."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.encode() + b"-"
        self.counts = bytearray()
        self.unique = 0
        self.total = 0
        self.malformed = 0
        self._low = 0  # no id below it is missing

    def add(self, body: bytes) -> int | None:
        """Count one body; return its id (None for a body that is not one of ours)."""
        if body[:2] != self.prefix:
            self.malformed += 1
            return None
        try:
            i = int(body[2:11])
        except ValueError:
            self.malformed += 1
            return None
        counts = self.counts
        if i >= len(counts):
            counts.extend(bytes(max(i + 1 - len(counts), 1 << 20)))
        c = counts[i]
        if c == 0:
            self.unique += 1
        if c < 255:
            counts[i] = c + 1
        self.total += 1
        return i

    def first_missing(self, sent: int) -> int | None:
        """The lowest id below ``sent`` that has not arrived (None when all have)."""
        at = self.counts.find(0, self._low, sent)
        if at < 0:  # none below sent, or the counts stop short of it
            at = min(len(self.counts), sent)
        self._low = at
        return at if at < sent else None

    def check(self, sent: int) -> dict:
        seen = bytes(self.counts[:sent]).ljust(sent, b"\0")
        beyond = self.counts[sent:]
        missing = seen.count(0)
        return {"sent": sent, "unique": self.unique, "total": self.total, "missing": missing,
                "first_missing": _first(b"\0", seen),
                "duplicated": sent - missing - seen.count(1),
                "first_duplicated": _first(b"[\x02-\xff]", seen),
                "extra_copies": self.total - self.unique, "never_sent": len(beyond) - beyond.count(0),
                "malformed": self.malformed}


def _first(pattern: bytes, counts: bytes, n: int = 8) -> list[int]:
    """The first ``n`` ids whose count byte matches ``pattern``."""
    return [m.start() for m in islice(re.finditer(pattern, counts), n)]


class KafkaReader(threading.Thread):
    """Reads the topic from the beginning (its own group, partitions assigned) and records arrival − send time per
    event.

    librdkafka can lose every broker for good when a single broker restarts (a metadata answer with no brokers,
    given while it shuts down, empties the client's broker list: librdkafka issue #5301), and then never connects
    again. The reader is the harness's instrument, so when it has seen nothing for STALL seconds while the agent's
    sink reports more records committed than the reader has read, it starts a new consumer at the offsets it had
    reached (counted in ``reconnects``)."""

    STALL = 20.0

    def __init__(self, bootstrap: str, topic: str, partitions: int, committed) -> None:  # noqa: ANN001
        super().__init__(name="kafka-reader", daemon=True)
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.committed = committed  # records the agent's Kafka sink has committed, as last sampled
        self.arrivals = Arrivals("k")
        self.latency: dict[int, array] = {}  # bucket of send time → latencies in ms
        self.origin = float("inf")  # wall time the paced run starts; earlier sends (calibration) are not timed
        self.errors = 0
        self.reconnects = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self._next: dict[int, int] = {}  # partition → offset of the next record to read

    def _consumer(self):  # noqa: ANN202 - a confluent_kafka Consumer
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"soak-reader-{os.getpid()}",
                      "enable.auto.commit": False, "log_level": 2, "error_cb": self._on_error})
        c.assign([TopicPartition(self.topic, p, self._next.get(p, OFFSET_BEGINNING)) for p in range(self.partitions)])
        return c

    def run(self) -> None:
        c = None
        try:
            c = self._consumer()
            add, latency, nxt = self.arrivals.add, self.latency, self._next
            heard = time.monotonic()
            while not self.stop.is_set():
                # consume() waits its whole timeout to fill a batch, which would add up to that much to every
                # latency: take what is queued without waiting, else wait for the next message alone
                msgs = c.consume(1000, 0)
                if not msgs:
                    m = c.poll(0.2)
                    msgs = [m] if m is not None else []
                now = time.time()
                if not msgs:
                    if time.monotonic() - heard > self.STALL and self.committed() > self.arrivals.total:
                        c.close()
                        c = self._consumer()
                        self.reconnects += 1
                        heard = time.monotonic()
                    continue
                heard = time.monotonic()
                for m in msgs:
                    if m.error() is not None:
                        self.errors += 1
                        continue
                    nxt[m.partition()] = m.offset() + 1
                    body = m.value()
                    if add(body) is None:
                        continue
                    try:
                        sent = float(body[12:])
                    except ValueError:
                        continue
                    if sent >= self.origin:
                        b = int((sent - self.origin) // BUCKET)
                        bucket = latency.get(b)
                        if bucket is None:
                            bucket = latency[b] = array("f")
                        bucket.append((now - sent) * 1000)
        except BaseException as exc:  # noqa: BLE001 - reported by the main loop
            self.error = exc
        finally:
            if c is not None:
                c.close()

    def _on_error(self, err) -> None:  # noqa: ANN001 - broker down during restarts: expected, counted
        self.errors += 1


# --- the agent seen from outside -----------------------------------------------------------------------------------


def proc_sample(pid: int) -> dict:
    """RSS (MiB), threads and open file descriptors of ``pid``, from /proc."""
    out = {"rss": 0.0, "threads": 0, "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
    return out


def drained(mport: int) -> dict[str, int] | None:
    """Events each sink has delivered (committed), from the agent's /metrics; None when it does not answer."""
    try:
        m = metrics(mport)
    except OSError:
        return None
    return {k: int(m.get(f"SINK.{k}", {}).get("EventDrainSuccessCount", 0)) for k in ("hdfs", "kafka")}


def log_summary(text: str) -> dict:
    """Lines of the agent's log, how many at each level, and its distinct problems (numbers masked) with how
    often each came."""
    lines = text.splitlines()
    levels: dict[str, int] = {}
    problems: dict[str, int] = {}
    for line in lines:
        parts = line.split(" ", 3)  # date, time, level, message
        if len(parts) == 4 and parts[2] in ("WARN", "WARNING", "ERROR", "CRITICAL"):
            levels[parts[2]] = levels.get(parts[2], 0) + 1
            key = re.sub(r"\d+", "#", f"{parts[2]} {parts[3].strip()}")[:160]
            problems[key] = problems.get(key, 0) + 1
    return {"lines": len(lines), "levels": levels, "problems": problems}


def slope_per_hour(samples: list[dict], key: str, after: float) -> float:
    pts = [(s["t"] / 3600, s[key]) for s in samples if s["t"] >= after]
    if len(pts) < 3:
        return float("nan")
    return statistics.linear_regression([p[0] for p in pts], [p[1] for p in pts]).slope


def percentile(sorted_values, q: float) -> float:  # noqa: ANN001
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


# --- the run -------------------------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.stop = threading.Event()
        self.dfs: MiniDFS | None = None
        self.broker: KafkaBroker | None = None
        self.agent: Running | None = None
        self.reader: KafkaReader | None = None
        self.feeders: dict[str, Feeder] = {}
        self.samples: list[dict] = []
        self.restarts: list[dict] = []
        self.restart_error: BaseException | None = None
        self.restarting: threading.Thread | None = None
        self._drained = {"hdfs": 0, "kafka": 0}

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    # setup

    def start(self) -> None:
        a = self.args
        self.say("starting MiniDFSCluster and Kafka (JVMs; a minute or two on a busy machine)")
        self.dfs = MiniDFS(self.tmp / "minidfs", free_port(), free_port())
        self.dfs.start(timeout=300)
        self.broker = KafkaBroker(self.tmp / "kafka")
        self.broker.start(timeout=180)
        self.topic = f"soak-{int(time.time())}"
        self.broker.create_topic(self.topic, 1)
        (self.tmp / "in").mkdir()
        self.port, self.mport = free_port(), free_port()
        conf = self.tmp / "agent.conf"
        conf.write_text(CONF.format(tmp=self.tmp, rpc=self.dfs.rpc_port, hdfs_dir=HDFS_DIR, roll=a.roll_seconds,
                                    port=self.port, servers=self.broker.bootstrap, topic=self.topic))
        self.agent = Running("pyflume", conf, sysprops={"flume.monitoring.type": "http",
                                                        "flume.monitoring.port": str(self.mport)})
        wait_port(self.port, self.agent.alive)
        wait_port(self.mport, self.agent.alive)
        log = open(self.tmp / "in" / "soak.log", "ab", buffering=0)
        sock = socket.create_connection(("127.0.0.1", self.port))

        def hang_up() -> None:  # shutdown() first: it wakes a sendall() blocked in the feeder's thread
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

        self.feeders = {"hdfs": Feeder("t", log.write, log.close), "kafka": Feeder("k", sock.sendall, hang_up)}
        self.reader = KafkaReader(self.broker.bootstrap, self.topic, 1, lambda: self._drained["kafka"])
        self.reader.start()
        self.say(f"agent pid {self.agent.pid} up: TAILDIR → file → hdfs://127.0.0.1:{self.dfs.rpc_port}{HDFS_DIR}, "
                 f"netcat :{self.port} → memory → Kafka {self.broker.bootstrap} topic {self.topic}")

    def delivered(self) -> dict[str, int]:
        """Per pipeline, how many events have reached the destination: the hdfs sink's committed count (it reads
        in order from a FIFO channel) and the ids the Kafka reader has seen."""
        d = drained(self.mport)
        if d is not None:
            self._drained = d
        return {"hdfs": self._drained["hdfs"], "kafka": self.reader.arrivals.unique}

    def calibrate(self, seconds: float = 10.0, backlog: int = 100_000) -> dict[str, float]:
        """Both pipelines at once, as fast as the agent takes them (about ``backlog`` events queued at most): the
        sinks' committed counts over the last 80% of ``seconds``, in events/s."""
        self.say(f"measuring the sustained rates for {seconds:.0f} s (both pipelines at once)")
        t0 = time.monotonic()
        first: tuple[float, dict] | None = None
        last = first
        while (now := time.monotonic()) < t0 + seconds:
            d = drained(self.mport)
            if d is not None:
                last = (now, d)
                if first is None and now >= t0 + seconds * 0.2:
                    first = last
                for k, f in self.feeders.items():
                    if f.sent - d[k] < backlog // 2:
                        f.send(backlog - (f.sent - d[k]))
            time.sleep(0.1)  # ten reads a second at most, as the benchmark harness does
        if first is None or last is first:
            raise RuntimeError("the agent's /metrics did not answer during the calibration")
        return {k: (last[1][k] - first[1][k]) / (last[0] - first[0]) for k in self.feeders}

    def wait_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.delivered()
            if all(got[k] >= f.sent for k, f in self.feeders.items()):
                return True
            self.check_alive()
            time.sleep(0.5)
        return False

    def choose_rates(self) -> dict[str, int]:
        a = self.args
        given = {"hdfs": a.rate_taildir, "kafka": a.rate_kafka}
        if all(given.values()):
            self.rates_note = "given on the command line"
            return given
        measured = self.calibrate()
        if not self.wait_drained(180):
            raise RuntimeError("the calibration backlog did not drain within 180 s")
        rates = {}
        parts = []
        for k, eps in measured.items():
            half = int(eps / 2)
            rates[k] = given[k] or max(100, min(half, a.max_rate))
            parts.append(f"{PIPELINES[k]}: sustained {eps:,.0f}/s, half {half:,}/s" +
                         (f", capped at --max-rate {a.max_rate:,}/s" if not given[k] and half > a.max_rate else ""))
        self.rates_note = "; ".join(parts)
        self.say(f"rates: {self.rates_note}")
        return rates

    # the paced run

    def restarter(self, origin_mono: float, until: float) -> None:
        a, k = self.args, 1
        try:
            while a.restart_every > 0:
                at = origin_mono + k * a.restart_every * 60
                if at + a.down_seconds >= until or self.stop.wait(max(0.0, at - time.monotonic())):
                    return
                r = {"at": time.time() - self.origin}
                self.say(f"restart {k}: stopping the Kafka broker")
                self.broker.stop()
                r["stopped"] = time.time() - self.origin
                if self.stop.wait(a.down_seconds):
                    return
                self.broker.start(timeout=180)
                r["started"] = time.time() - self.origin
                self.restarts.append(r)
                self.say(f"restart {k}: broker back after {r['started'] - r['at']:.1f} s "
                         f"(stop {r['stopped'] - r['at']:.1f} s, down {a.down_seconds:g} s)")
                k += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main loop
            self.restart_error = exc

    def check_alive(self) -> None:
        if not self.agent.alive():
            raise RuntimeError(f"the agent exited ({self.agent.proc.returncode}):\n{self.agent.log()[-3000:]}")
        for what, err in [("Kafka restart", self.restart_error), ("Kafka reader", self.reader.error),
                          *[(f"{k} feeder", f.error) for k, f in self.feeders.items()]]:
            if err is not None:
                raise RuntimeError(f"{what} failed: {err!r}")

    def sample(self) -> dict:
        s = {"t": time.time() - self.origin, **proc_sample(self.agent.pid), "cpu": cpu_seconds(self.agent.pid)}
        got = self.delivered()
        now = time.time()
        for k, f in self.feeders.items():
            sent = f.sent
            s[f"{k}_lag"] = max(0, sent - got[k])
            oldest = got[k] if k == "hdfs" else self.reader.arrivals.first_missing(sent)
            s[f"{k}_age"] = now - f.sent_at(oldest) if oldest is not None and oldest < sent else 0.0
        return s

    def run(self) -> None:
        a = self.args
        rates = self.rates = self.choose_rates()
        seconds = a.minutes * 60
        self.origin = time.time()
        self.reader.origin = self.origin
        self.first_id = {k: f.sent for k, f in self.feeders.items()}
        for f in self.feeders.values():
            f.slowest_write = 0.0  # the calibration's big writes do not count
        start = time.monotonic()
        until = start + seconds
        self.cpu0 = cpu_seconds(self.agent.pid)
        threads = [threading.Thread(target=f.paced, args=(rates[k], until, self.stop), daemon=True, name=k)
                   for k, f in self.feeders.items()]
        self.restarting = threading.Thread(target=self.restarter, args=(start, until), daemon=True, name="restarter")
        threads.append(self.restarting)
        for t in threads:
            t.start()
        self.say(f"paced run: {seconds / 60:g} min, TAILDIR {rates['hdfs']:,}/s, netcat {rates['kafka']:,}/s, "
                 f"broker restarted every {a.restart_every:g} min")
        next_sample, next_print = start, start + 60
        while time.monotonic() < until:
            self.check_alive()
            if time.monotonic() >= next_sample:
                s = self.sample()
                self.samples.append(s)
                next_sample += SAMPLE_EVERY
                if time.monotonic() >= next_print:
                    next_print += 60
                    self.say(f"{s['t'] / 60:4.1f} min: sent {self.feeders['hdfs'].sent:,} / "
                             f"{self.feeders['kafka'].sent:,}; lag hdfs {s['hdfs_lag']:,} ({s['hdfs_age']:.1f} s), "
                             f"kafka {s['kafka_lag']:,} ({s['kafka_age']:.1f} s); RSS {s['rss']:.1f} MB, "
                             f"{s['fds']} fds, {s['threads']} threads")
            time.sleep(min(0.5, max(0.0, next_sample - time.monotonic())))
        for t in threads[:-1]:
            t.join(5)
        self.soak_seconds = time.time() - self.origin
        self.cpu = cpu_seconds(self.agent.pid) - self.cpu0
        for f in self.feeders.values():
            f.close()  # a write still blocked by a full channel fails now
        for t in threads:
            t.join(240)  # a broker start under way finishes
        self.check_alive()
        self.say(f"feeders stopped; waiting for the sinks to drain (at most {a.drain_timeout:g} s)")
        t0 = time.monotonic()
        self.drained_in = time.monotonic() - t0 if self.wait_drained(a.drain_timeout) else None
        self.final = self.sample()
        t0 = time.monotonic()
        self.agent.stop(timeout=60)
        self.stop_seconds = time.monotonic() - t0
        self.exit_code = self.agent.proc.returncode
        self.log_summary = log_summary(self.agent.log())
        time.sleep(3)  # the reader gets what the agent flushed while stopping
        self.reader.stop.set()
        self.reader.join(30)
        self.hdfs = self.read_hdfs()

    def read_hdfs(self) -> dict:
        """Every file under the sink's path, read back through WebHDFS; ids counted into an Arrivals."""
        from hdfs import InsecureClient

        client = InsecureClient(self.dfs.webhdfs, user="root")
        arrivals = Arrivals("t")
        files = in_use = closed_early = 0
        stopped_ms = (self.origin + self.soak_seconds) * 1000
        for dirpath, _, names in client.walk(HDFS_DIR, status=True):
            for name, status in names:
                files += 1
                in_use += name.endswith(".tmp")
                closed_early += status["modificationTime"] < stopped_ms
                with client.read(f"{dirpath[0]}/{name}") as r:
                    data = r.read()
                for line in data.split(b"\n"):
                    if line:
                        arrivals.add(line)
        return {"arrivals": arrivals, "files": files, "in_use": in_use, "closed_during_run": closed_early}

    # teardown

    def close(self) -> None:
        self.stop.set()
        for f in self.feeders.values():
            try:
                f.close()
            except OSError:
                pass
        if self.reader is not None:
            self.reader.stop.set()
            self.reader.join(10)
        if self.restarting is not None:  # a broker start under way would leave a broker behind: let it finish
            self.restarting.join(200)
        for what, stop in (("agent", self.agent and self.agent.stop), ("Kafka", self.broker and self.broker.stop),
                           ("MiniDFS", self.dfs and self.dfs.stop)):
            if stop:
                try:
                    stop()
                except Exception as exc:  # noqa: BLE001 - keep cleaning up
                    print(f"stopping {what}: {exc!r}", file=sys.stderr)


# --- the report ----------------------------------------------------------------------------------------------------


def clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def latencies(s: Soak, lo: float, hi: float) -> tuple[list[float], list[float]]:
    """Kafka latencies (sorted, ms) of the events sent between ``lo`` and ``hi`` s into the run: those sent away
    from any restart, and those sent from 10 s before a broker stop to 30 s after it was back."""
    near = [(r["at"] - 10, r["started"] + 30) for r in s.restarts]
    steady, around = array("f"), array("f")
    for b, values in s.reader.latency.items():
        t0, t1 = b * BUCKET, (b + 1) * BUCKET
        if lo <= t0 < hi:
            (around if any(t0 < b_hi and t1 > b_lo for b_lo, b_hi in near) else steady).extend(values)
    return sorted(steady), sorted(around)


def window_rows(s: Soak) -> list[dict]:
    win, nominal = s.args.window * 60, s.args.minutes * 60
    rows = []
    n = max(1, round(nominal / win + 0.49))
    for w in range(n):
        lo, hi = w * win, min((w + 1) * win, nominal)
        end = hi if w < n - 1 else float("inf")  # the last window takes what was sent after the nominal end
        steady, around = latencies(s, lo, end)
        lat = sorted(steady + around)
        samples = [x for x in s.samples if lo <= x["t"] < end]
        rows.append({"lo": lo, "hi": hi, "n": len(lat), "p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99),
                     "max": lat[-1] if lat else float("nan"), "steady_p99": percentile(steady, 0.99),
                     "restarts": sum(lo <= r["at"] < end for r in s.restarts),
                     "hdfs_age": max((x["hdfs_age"] for x in samples), default=float("nan")),
                     "rss": samples[-1]["rss"] if samples else float("nan"),
                     "fds": samples[-1]["fds"] if samples else 0})
    return rows


def report(s: Soak, argv: list[str]) -> tuple[str, bool]:
    a = s.args
    warm = 0.2 * s.soak_seconds
    after = [x for x in s.samples if x["t"] >= warm]
    checks = {"hdfs": s.hdfs["arrivals"].check(s.feeders["hdfs"].sent),
              "kafka": s.reader.arrivals.check(s.feeders["kafka"].sent)}
    ok = all(c["missing"] == 0 for c in checks.values())
    lines = [f"Measured {datetime.datetime.now().isoformat(sep=' ', timespec='minutes')} by "
             f"`python -m bench.soak {' '.join(argv)}` on {machine()}; pyflume {versions()['pyflume']}. "
             f"{s.soak_seconds / 60:.1f} minutes of paced input through one agent with two pipelines; the Kafka "
             f"broker (3.7.1, KRaft) stopped cleanly every {a.restart_every:g} min and started again "
             f"{a.down_seconds:g} s later.",
             "", f"Rates: TAILDIR {s.rates['hdfs']:,} events/s, netcat {s.rates['kafka']:,} events/s "
             f"({s.rates_note}). Bodies are 29 bytes (`t-000123456 1764470000.123456`).", ""]
    lines += ["| pipeline | events sent (calibration + paced) | arrived (distinct) | missing | duplicated ids "
              "| extra copies |", "|---|---:|---:|---:|---:|---:|"]
    for k, c in checks.items():
        lines.append(f"| {PIPELINES[k]} | {c['sent']:,} ({s.first_id[k]:,} + {c['sent'] - s.first_id[k]:,}) "
                     f"| {c['unique']:,} | {c['missing']:,} | {c['duplicated']:,} | {c['extra_copies']:,} |")
    for k, c in checks.items():
        if c["missing"]:
            lines.append(f"- {k}: MISSING {c['missing']:,}, first ids {c['first_missing']}")
        if c["duplicated"]:
            lines.append(f"- {k}: ids delivered more than once, first: {c['first_duplicated']}")
        if c["never_sent"] or c["malformed"]:
            lines.append(f"- {k}: {c['never_sent']} ids never sent, {c['malformed']} malformed bodies")
    h = s.hdfs
    rss0 = after[0]["rss"] if after else float("nan")
    fd0 = after[0]["fds"] if after else 0
    lines += ["", f"HDFS files: {h['files']} ({h['closed_during_run']} closed during the run, "
              f"rollInterval {a.roll_seconds} s; {h['in_use']} still in use after the agent stopped). "
              f"Drained after the feeders stopped in "
              f"{f'{s.drained_in:.1f} s' if s.drained_in is not None else f'MORE than {a.drain_timeout:g} s'}; "
              f"SIGTERM → exit {s.exit_code} in {s.stop_seconds:.1f} s. Slowest write by the harness (the source "
              f"pushing back): file {s.feeders['hdfs'].slowest_write:.2f} s, netcat "
              f"{s.feeders['kafka'].slowest_write:.2f} s.",
              f"Agent after warm-up ({warm / 60:.1f} min): RSS {rss0:.1f} → {s.final['rss']:.1f} MB, slope "
              f"{slope_per_hour(s.samples, 'rss', warm):+.2f} MB/hour; open fds {fd0} → {s.final['fds']}, slope "
              f"{slope_per_hour(s.samples, 'fds', warm):+.2f}/hour; threads {after[0]['threads'] if after else 0}"
              f" → {s.final['threads']}; CPU {s.cpu:.0f} s ({100 * s.cpu / s.soak_seconds:.1f}% of a core).",
              "Kafka restarts at (min:s): " + (", ".join(
                  f"{clock(r['at'])} (stop → up again {r['started'] - r['at']:.0f} s)" for r in s.restarts) or "none") +
              f"; {s.reader.errors} client errors seen by the reader while the broker was away, "
              f"{s.reader.reconnects} new reader consumers after it stalled (librdkafka #5301).",
              f"Agent log (warnings and up): {s.log_summary['lines']} lines ("
              + (", ".join(f"{n} {lv}" for lv, n in s.log_summary["levels"].items()) or "none")
              + (")" + (", these most often:" if s.log_summary["problems"] else ".")), ""]
    problems = sorted(s.log_summary["problems"].items(), key=lambda x: -x[1])
    if problems:
        lines += [f"- {n}× `{text}`" for text, n in problems[:6]] + ["- …"] * (len(problems) > 6) + [""]
    lines += [f"Kafka end-to-end latency (send → reader) by {a.window:g}-minute window of send time; HDFS lag is the "
              "age of the oldest event not yet committed by the hdfs sink, at the 5 s samples (max per window).", "",
              "| window | Kafka events | p50 ms | p99 ms | max ms | p99 ms away from restarts | restarts "
              "| HDFS lag max s | RSS MB | fds |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in window_rows(s):
        lines.append(f"| {clock(r['lo'])}–{clock(r['hi'])} | {r['n']:,} | {fmt(r['p50'], '.1f')} "
                     f"| {fmt(r['p99'], '.1f')} | {fmt(r['max'], '.0f')} | {fmt(r['steady_p99'], '.1f')} "
                     f"| {r['restarts']} | {fmt(r['hdfs_age'], '.2f')} | {fmt(r['rss'], '.1f')} | {r['fds']} |")
    steady, around = latencies(s, 0, float("inf"))
    lines += ["", f"Kafka latency away from restarts: p50 {fmt(percentile(steady, 0.5), '.1f')} ms, p99 "
              f"{fmt(percentile(steady, 0.99), '.1f')} ms ({len(steady):,} events); from 10 s before a stop to 30 s "
              f"after the broker was back: p50 {fmt(percentile(around, 0.5), '.1f')} ms, p99 "
              f"{fmt(percentile(around, 0.99), '.1f')} ms "
              f"({len(around):,} events)."]
    if not ok:
        lines += ["", "RESULT: EVENTS MISSING"]
    return "\n".join(lines), ok


def write_section(path: Path, body: str) -> None:
    """Put ``body`` under "## Soak" in RESULTS.md: replace that section if there is one (up to the next "## "),
    else insert it before "## Every run" (else at the end). Nothing else in the file changes."""
    text = path.read_text() if path.exists() else ""
    section = f"## Soak\n\n{body}\n\n"
    m = SOAK_SECTION.search(text)
    if m:
        text = text[:m.start()] + section + text[m.end():]
    elif (i := text.find("\n## Every run")) >= 0:
        text = text[:i + 1] + section + text[i + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def _interrupt(signum, frame) -> None:  # noqa: ANN001
    raise Interrupted()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=30, help="length of the paced run (default 30)")
    p.add_argument("--restart-every", type=float, default=5, help="minutes between Kafka restarts (0: none)")
    p.add_argument("--down-seconds", type=float, default=5, help="how long the broker stays down")
    p.add_argument("--window", type=float, default=None,
                   help="minutes per latency window (default: 5, or --restart-every if shorter)")
    p.add_argument("--rate-taildir", type=int, default=0, help="events/s appended to the tailed file (default: "
                                                              "half the measured sustained rate)")
    p.add_argument("--rate-kafka", type=int, default=0, help="events/s sent to netcat (default: half the "
                                                            "measured sustained rate)")
    p.add_argument("--max-rate", type=int, default=10_000,
                   help="cap on each chosen rate (default 10,000/s: keeps a shared 2-core machine, the harness's "
                        "reader and the disk comfortable over 30 minutes)")
    p.add_argument("--roll-seconds", type=int, default=60, help="hdfs.rollInterval (default 60)")
    p.add_argument("--drain-timeout", type=float, default=180, help="seconds to wait for the sinks at the end")
    p.add_argument("--write-results", action="store_true", help="put the report in bench/RESULTS.md (Soak)")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (agent log, data) for a look")
    args = p.parse_args(argv)
    if args.window is None:
        args.window = min(5.0, args.restart_every) if args.restart_every > 0 else 5.0
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="pyflume-soak-"))
    soak = Soak(args, tmp)
    try:
        soak.start()
        soak.run()
        text, ok = report(soak, argv)
        print(text)
        if args.write_results:
            write_section(HERE / "RESULTS.md", text)
            print(f"wrote the Soak section of {HERE / 'RESULTS.md'}", file=sys.stderr)
        return 0 if ok else 1
    except (KeyboardInterrupt, Interrupted):
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"soak failed: {exc}", file=sys.stderr)
        if soak.agent is not None:
            print("--- agent log (tail) ---\n" + "\n".join(soak.agent.log().splitlines()[-40:]), file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        soak.close()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
