"""``python -m bench``: run every case on pyflume and on Apache Flume 1.11, alternating, and publish the medians.

Each case runs at two sizes, a short burst and a sustained run, and every run first warms its own agent process
up with a batch of its own (counted in full at the destination before the clock starts), so that no row measures a
cold JVM. Every run reports a steady-state rate (first sample in the flow → last) and an end-to-end one (first byte
→ last event), counts events at the destination from the harness's own process (what an agent serves, ten times a
second at most), and checks what the destination allows before its figures count: the exact set of ids where it
can be read back, the exact count where it cannot (``Case.check``). ``--profile CASE`` runs one case on pyflume
under py-spy with the same setup.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.cases import CASES, EXTRA_CASES, Case, Ctx, free_port, wait_port
from bench.procstat import cpu_seconds, peak_rss_mb
from bench.systems import Running, measured_at, versions

HERE = Path(__file__).resolve().parent
ALL = {**CASES, **EXTRA_CASES}
SYSTEMS = ("pyflume", "flume")


def cache_dir() -> Path:
    path = Path(os.environ.get("PYFLUME_BENCH_CACHE", Path.home() / ".cache" / "pyflume-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


#: The harness reads the destination's count from its own process, at most once per ``case.poll`` seconds: never
#: more often than POLL when the agent serves the count (its HTTP metrics, ten requests a second at most) or another
#: process does; the output files' sizes, read without asking any process, every FILE_POLL. No thread of the
#: harness runs inside an agent.
POLL = 0.1
#: A sample whose read took longer than this (an agent busy on both cores can take 100-400 ms to answer its HTTP
#: metrics) does not say when its count was true closely enough to bound the steady rate's window
PRECISE = 0.02

#: one read of the destination's count: (middle of the read, count, how long the read took), times in seconds
Sample = tuple[float, int, float]


class Profiler:
    """py-spy attached to the agent from the end of its warm-up to the last event counted."""

    def __init__(self, output: Path, fmt: str = "speedscope", rate: int = 100):
        self.output, self.fmt, self.rate = output, fmt, rate
        self.proc: subprocess.Popen | None = None

    def command(self, pid: int | str) -> list[str]:
        spy = Path(sys.executable).parent / "py-spy"
        return [str(spy) if spy.exists() else "py-spy", "record", "--pid", str(pid), "--output", str(self.output),
                "--format", self.fmt, "--rate", str(self.rate), "--threads", "--nonblocking"]

    def start(self, pid: int) -> None:
        self.proc = subprocess.Popen(self.command(pid), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # py-spy attaches and takes its first sample
        if self.proc.poll() is not None:
            raise RuntimeError(f"py-spy exited at once: {self.proc.stderr.read().decode(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.output.exists():
            raise RuntimeError(f"py-spy wrote no {self.output}: {err.decode(errors='replace')[-2000:]}")


class Counter:
    """Reads one run's destination count, never twice within ``case.poll`` seconds."""

    def __init__(self, case: Case, ctx: Ctx, alive):
        self.case, self.ctx, self.alive = case, ctx, alive
        self.poll = case.poll
        self.last = -self.poll
        #: the longest read so far, in seconds: a sample's time is uncertain by half of it
        self.slowest = 0.0

    def until(self, target: int, what: str, timeout: float, samples: list[Sample] | None = None) -> Sample:
        """Read the count every ``poll`` s until it reaches ``target``; the sample that did.

        Each sample's time is the middle of its read (an HTTP request to the agent takes a millisecond or two)."""
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(max(0.0, self.last + self.poll - time.monotonic()))
            before = self.last = time.monotonic()
            got = self.case.delivered(self.ctx)
            after = time.monotonic()
            now = (before + after) / 2
            self.slowest = max(self.slowest, after - before)
            sample = (now, got, after - before)
            if samples is not None:
                samples.append(sample)
            if got >= target:
                return sample
            if now > deadline or not self.alive():
                raise RuntimeError(f"{what}: {got} of {target} events counted")


def rates(samples: list[Sample], t0: float, base: int, total: int, self_generating: bool) -> dict:
    """The run's figures from its samples (the first is the clock's start, (t0, base), the last the one that saw
    ``total``).

    Steady state: the events counted between the first and the last precise sample (read within PRECISE) taken
    while events were arriving (count past ``base`` and short of ``total``; for a self-generating source the
    clock's own sample is one of them), over the time between those two samples; None when fewer than two such
    samples. End to end: every measured event over first byte (t0) → last event counted; the last event's time is
    interpolated at the steady rate from the last sample of the steady window, and is never later than the end of
    the read that saw it. Without a steady rate it is the end of that read, so the end-to-end rate is a lower
    bound (``bound``)."""
    done_by = samples[-1][0] + samples[-1][2] / 2
    inside = [(t, c, d) for t, c, d in samples[1:-1] if base < c < total]
    if self_generating:
        inside.insert(0, samples[0])
    flow = [(t, c) for t, c, d in inside if d <= PRECISE]
    steady = None
    if len(flow) >= 2 and flow[-1][0] > flow[0][0] and flow[-1][1] > flow[0][1]:
        steady = (flow[-1][1] - flow[0][1]) / (flow[-1][0] - flow[0][0])
    t_end = done_by
    if steady:
        t_end = min(done_by, flow[-1][0] + (total - flow[-1][1]) / steady)
    seconds = max(t_end - t0, 1e-6)
    return {"seconds": seconds, "eps": (total - base) / seconds, "bound": steady is None, "steady": steady,
            "flow_samples": len(flow), "slow_samples": len(inside) - len(flow),
            "steady_seconds": flow[-1][0] - flow[0][0] if steady else None}


def run_once(system: str, case: Case, n: int, warm: int = 0, profile: Profiler | None = None) -> dict:
    """``warm`` warm-up events, then ``n`` measured ones, through one agent process (two for the chains).

    The warm-up batch is pushed and counted in full at the destination before the measured input starts and the
    clock with it (for a self-generating source: the clock starts at the first sample past ``warm`` events); the
    destination's check covers both batches."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{case.name}-{system}-"))
    total = warm + n
    ctx = Ctx(tmp, total, free_port(), free_port(), warm=warm)
    try:
        case.prepare(ctx, cache_dir())
        conf = tmp / "agent.conf"
        conf.write_text(case.render(ctx))
        helper = None
        spec = case.helper(ctx)
        if spec is not None:
            hconf = tmp / "helper.conf"
            hconf.write_text(spec[0])
            helper = Running(system, hconf, spec[1])
            wait_port(spec[2], helper.alive)
        run = Running(system, conf, sysprops={"flume.monitoring.type": "http", "flume.monitoring.port": str(ctx.mport)})
        pids = [run.pid] + ([helper.pid] if helper else [])

        def alive() -> bool:
            return run.alive() and (helper is None or helper.alive())

        try:
            case.ready(ctx, run.alive)
            timeout = max(180.0, total / 10_000)
            what = f"{system} {case.name}"
            try:
                counter = Counter(case, ctx, alive)
                if case.self_generating:
                    start = counter.until(max(warm, 1), f"{what} warm-up", timeout)
                    if profile is not None:
                        profile.start(run.pid)
                        start = counter.until(0, what, timeout)  # the clock starts once py-spy is on
                    t0, base = start[0], start[1]
                    cpu0 = sum(cpu_seconds(p) for p in pids)
                    if base >= total:
                        raise RuntimeError(f"{what}: all {total} events were done by the first count past the "
                                           f"warm-up; too few events to measure, raise --burst")
                else:
                    case.feed_warmup(ctx)
                    got = counter.until(warm, f"{what} warm-up", timeout)[1]
                    if got != warm:
                        raise AssertionError(f"{what}: {got} events counted after a warm-up of {warm}")
                    if profile is not None:
                        profile.start(run.pid)
                    feeder = threading.Thread(target=case.feed, args=(ctx,), daemon=True)
                    cpu0 = sum(cpu_seconds(p) for p in pids)
                    t0, base = time.monotonic(), warm
                    start = (t0, base, 0.0)
                    feeder.start()
                samples = [start]
                counter.until(total, what, timeout, samples)
                cpu = sum(cpu_seconds(p) for p in pids) - cpu0
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{run.log()[-3000:]}") from None
            finally:
                if profile is not None:
                    profile.stop()
            rss = sum(peak_rss_mb(p) for p in pids)
            if not case.self_generating:
                feeder.join(10)
            case.verify(ctx)
        finally:
            run.stop()
            if helper is not None:
                helper.stop()
        figures = rates(samples, t0, base, total, case.self_generating)
        return {"system": system, "case": case.name, "n": n, "warm": warm, **figures,
                "mbps": figures["eps"] * case.line_size / 1e6, "cpu": cpu, "rss": rss, "check": case.check,
                "samples": len(samples), "poll": counter.poll, "slowest_read_ms": counter.slowest * 1000,
                **({"peak_queued": ctx.extra["peak_queued"]} if "peak_queued" in ctx.extra else {})}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ceiling_once(case: Case, n: int) -> dict:
    """The destination's own client writing the same data as fast as it can, in this process (the ceiling)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{case.name}-ceiling-"))
    ctx = Ctx(tmp, n, 0, 0)
    try:
        case.prepare(ctx, cache_dir())
        # seconds, or a dict of seconds and what else the client measured (cpu, rss, end_to_end)
        got = case.ceiling(ctx)  # type: ignore[attr-defined]
        more = got if isinstance(got, dict) else {"seconds": got}
        seconds = more["seconds"]
        return {"cpu": 0.0, "rss": 0.0, **more, "system": "ceiling", "case": case.name, "n": n, "seconds": seconds,
                "eps": n / seconds, "mbps": n * case.line_size / seconds / 1e6}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def latency_once(system: str, case: Case, rate: int, seconds: float) -> dict | None:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-lat-{case.name}-{system}-"))
    ctx = Ctx(tmp, 0, free_port(), free_port())
    try:
        ctx.out.mkdir(parents=True)
        conf = tmp / "agent.conf"
        conf.write_text(case.render(ctx))
        run = Running(system, conf)
        try:
            case.ready(ctx, run.alive)
            samples = case.latency(ctx, run.alive, rate, seconds)
        finally:
            run.stop()
        if samples is None:
            return None
        samples.sort()
        return {"system": system, "case": case.name, "rate": rate, "p50": samples[len(samples) // 2],
                "p99": samples[int(len(samples) * 0.99)]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ratio_of(a: float, b: float) -> float:
    return a / b if b else float("nan")


def med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows) if rows else float("nan")


def fmt_int(x: float) -> str:
    return f"{x:,.0f}" if x == x else "–"


def fmt(x: float, spec: str, suffix: str = "") -> str:
    return f"{x:{spec}}{suffix}" if x == x else "–"


CHECKS = {"ids": "ids, once each", "count": "not checked (count only)"}


def steady_med(rows: list[dict]) -> tuple[float, int]:
    """The median steady-state rate over the runs that have one, and how many do."""
    have = [r["steady"] for r in rows if r.get("steady")]
    return (statistics.median(have) if have else float("nan")), len(have)


def fmt_steady(rows: list[dict]) -> str:
    value, k = steady_med(rows)
    return fmt_int(value) + (f" ({k} of {len(rows)})" if rows and 0 < k < len(rows) else "")


def e2e_cell(rows: list[dict]) -> tuple[str, bool]:
    """The median end-to-end rate, "≥"-prefixed when a run's is a lower bound (each run's figure is at most its true
    rate, so their median is at most the true median); and whether it is."""
    bound = any(r.get("bound") for r in rows)
    return ("≥ " if bound else "") + fmt_int(med(rows, "eps")), bound


def ratio_cell(ratio: float, mine_bound: bool, theirs_bound: bool) -> str:
    """A ratio of two medians, "≥" when only pyflume's is a lower bound, "≤" when only Flume's, "~" when both."""
    mark = {(True, False): "≥ ", (False, True): "≤ ", (True, True): "~ "}.get((mine_bound, theirs_bound), "")
    return (mark if ratio == ratio else "") + fmt(ratio, ".2f", "×")


def runs_of(results: list[dict], case: str, n: int, system: str) -> list[dict]:
    """The runs of one row (``case`` with ``n`` events) by one system: pyflume, flume or ceiling."""
    return [r for r in results if r["case"] == case and r["n"] == n and r["system"] == system]


def table(results: list[dict], latencies: list[dict], systems: tuple[str, ...]) -> str:
    lines = [
        "| Case | Events | Exact set at the destination | pyflume steady events/s | Flume steady events/s "
        "| steady ratio | pyflume end-to-end events/s | Flume end-to-end events/s | end-to-end ratio "
        "| pyflume CPU s | Flume CPU s | pyflume peak RSS MB | Flume peak RSS MB | RSS ratio |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = []
    for r in results:
        if r["system"] != "ceiling" and (r["case"], r["n"]) not in keys:
            keys.append((r["case"], r["n"]))
    for case, n in keys:
        mine, theirs = runs_of(results, case, n, "pyflume"), runs_of(results, case, n, "flume")
        first = (mine or theirs)[0]
        check = CHECKS[first["check"]] if "check" in first else "(earlier method: no warm-up, no steady rate)"
        steady_ratio = ratio_of(steady_med(mine)[0], steady_med(theirs)[0])
        ratio = ratio_of(med(mine, "eps"), med(theirs, "eps"))
        (mine_e2e, mine_bound), (theirs_e2e, theirs_bound) = e2e_cell(mine), e2e_cell(theirs)
        rss_ratio = ratio_of(med(mine, "rss"), med(theirs, "rss"))
        lines.append(
            f"| {ALL[case].title} | {n:,} | {check} | {fmt_steady(mine)} | {fmt_steady(theirs)} "
            f"| {fmt(steady_ratio, '.2f', '×')} | {mine_e2e} | {theirs_e2e} "
            f"| {ratio_cell(ratio, mine_bound, theirs_bound)} | {fmt(med(mine, 'cpu'), '.2f')} "
            f"| {fmt(med(theirs, 'cpu'), '.2f')} "
            f"| {fmt(med(mine, 'rss'), '.0f')} | {fmt(med(theirs, 'rss'), '.0f')} | {fmt(rss_ratio, '.2f')} |"
        )
    ceilings = [k for k in keys if runs_of(results, *k, "ceiling")]
    if ceilings:
        lines += ["", "| Case | Events | pyflume end-to-end events/s | client ceiling events/s | pyflume / ceiling "
                  "| Flume end-to-end events/s |", "|---|---:|---:|---:|---:|---:|"]
        for case, n in ceilings:
            mine, top, theirs = (med(runs_of(results, case, n, s), "eps") for s in ("pyflume", "ceiling", "flume"))
            lines.append(f"| {ALL[case].title} | {n:,} | {fmt_int(mine)} | {fmt_int(top)} "
                         f"| {fmt(ratio_of(mine, top) * 100, '.0f', '%')} | {fmt_int(theirs)} |")
    lines += held_table(results, keys)
    if latencies:
        lines += ["", "| Case | paced rate (events/s) | pyflume p50 ms | pyflume p99 ms | Flume p50 ms "
                  "| Flume p99 ms |", "|---|---:|---:|---:|---:|---:|"]
        for case in dict.fromkeys(r["case"] for r in latencies):
            mine = [r for r in latencies if r["case"] == case and r["system"] == "pyflume"]
            theirs = [r for r in latencies if r["case"] == case and r["system"] == "flume"]
            rate = latencies[0]["rate"]
            lines.append(f"| {ALL[case].title} | {rate:,} | {med(mine, 'p50'):.1f} | {med(mine, 'p99'):.1f} "
                         f"| {med(theirs, 'p50'):.1f} | {med(theirs, 'p99'):.1f} |")
    commands = {r["command"]: r.get("git") for r in results if r.get("command")}
    if commands:
        lines += ["", "Each case's rows (both sizes, both systems) come from one command line, run on the pyflume "
                  "commit named after it:", ""]
        lines += [f"- `{c}`" + (f" ({at})" if at else "") for c, at in commands.items()]
    return "\n".join(lines)


def held_table(results: list[dict], keys: list[tuple[str, int]]) -> list[str]:
    """The rows whose peak RSS is over a quarter of Flume's, beside what their memory channel held at its fullest
    (the harness's largest ChannelSize seen): the bodies of those events are in either process's memory whatever
    the implementation, so they are set apart from what the agent uses beyond them."""
    rows = []
    for case, n in keys:
        mine, theirs = runs_of(results, case, n, "pyflume"), runs_of(results, case, n, "flume")
        if not mine or not theirs:
            continue
        rss, flume_rss = med(mine, "rss"), med(theirs, "rss")
        if ratio_of(rss, flume_rss) <= 0.25:
            continue
        held = [r["peak_queued"] for r in mine if "peak_queued" in r]
        flume_held = [r["peak_queued"] for r in theirs if "peak_queued" in r]
        if not held or not flume_held:
            rows.append(f"| {ALL[case].title} | {n:,} | – | – | – | {flume_rss / 4:.0f} | – | – |")
            continue
        body_mb = statistics.median(held) * ALL[case].line_size / 1e6
        rows.append(f"| {ALL[case].title} | {n:,} | {statistics.median(held):,.0f} "
                    f"| {statistics.median(flume_held):,.0f} | {body_mb:.0f} | {flume_rss / 4:.0f} "
                    f"| {rss - body_mb:.0f} | {(rss - body_mb) / flume_rss:.2f} |")
    if not rows:
        return []
    return ["", "Rows whose peak RSS is over a quarter of Flume's, and what their memory channel held: the largest "
            "channel size the harness saw (median of the runs), the bytes of those events' bodies, and pyflume's "
            "peak RSS less those bytes (both figures are peaks, perhaps not at the same moment). Where both "
            "channels held most of the input at once, the bodies alone come near a quarter of Flume's peak RSS, "
            "and a memory channel cannot hold them in less; \"–\" where the runs predate the channel-size "
            "reading.", "",
            "| Case | Events | pyflume channel's largest size | Flume channel's largest size | bodies held by "
            "pyflume's channel MB | a quarter of Flume's peak RSS MB | pyflume peak RSS less those bodies MB "
            "| that over Flume's peak RSS |", "|---|---:|---:|---:|---:|---:|---:|---:|", *rows]


def machine() -> str:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(int(x.split()[1]) for x in open("/proc/meminfo") if x.startswith("MemTotal"))
    except OSError:
        mem = 0
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({model}), {mem / 1024 / 1024:.0f} GiB"


def write_results(path: Path, args: argparse.Namespace, results: list[dict], latencies: list[dict]) -> None:
    v = versions()
    per_scale = {r["warm"] // ALL[r["case"]].scale for r in results if "warm" in r}
    scaled = sorted({ALL[r["case"]].title for r in results if "warm" in r and ALL[r["case"]].scale != 1})
    warmup_text = (f"{per_scale.pop():,} events" + (f" ({', '.join(scaled)}: times the case's scale)"
                                                    if scaled else "")
                   if len(per_scale) == 1 else "`--warmup` events in the case's command line, times its scale")
    raw = ["| system | case | warm-up events | events | steady events/s (precise samples in the flow, slow ones "
           "left out) | end-to-end seconds "
           "| end-to-end events/s | end-to-end MB/s | CPU s | peak RSS MB | channel's largest size seen "
           "| slowest count read ms |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        counts = f" ({r['flow_samples']}, {r['slow_samples']} slow)" if "slow_samples" in r else ""
        steady = (f"{r['steady']:,.0f}" if r.get("steady") else "–") + counts
        queued = f"{r['peak_queued']:,}" if "peak_queued" in r else "–"
        raw.append(f"| {r['system']} | {r['case']} | {r.get('warm', 0):,} | {r['n']:,} | {steady} "
                   f"| {r['seconds']:.2f} | {r['eps']:,.0f} | {r['mbps']:.1f} | {r['cpu']:.2f} | {r['rss']:.0f} "
                   f"| {queued} | {fmt(r.get('slowest_read_ms', float('nan')), '.1f')} |")
    text = f"""# Benchmark results: pyflume against Apache Flume 1.11

Measured {datetime.date.today().isoformat()} by `python -m bench{' --quick' if args.quick else ''}` on {machine()}
(each case's exact command line is under the table).
Versions: pyflume at the commit named beside each case's command line (under the table) on Python {v['python']};
{v['flume']} on {v['java']}.

Method: each case runs the same properties file on both systems (only the agent binary differs) with the same
generated input, alternating pyflume and Flume, {args.runs} runs each; figures are medians. Every run warms its own
agent process up first: the harness pushes a warm-up batch (ids before the measured ones) and waits until the
destination has counted all of it; only then do the measured input and the clock start, in the same process(es),
so Flume's JIT is warm in every row. A self-generating source (seq, the Kafka source on its pre-filled topic) makes
the warm-up events itself and the clock starts at the first count past them. Warm-up: {warmup_text}.

The harness counts events at the destination from its own process: the agent's HTTP JSON metrics (channel take
count) for a null, hdfs, Kafka or HBase sink and the endpoint's stats for the http sink ten times a second at most
(the agent answers no more requests than that for the benchmark); the file_roll output files' sizes, which it reads
without asking any process, a hundred times a second. No harness thread runs inside an agent. A sample's time is
the middle of its read; a read that took longer than {PRECISE * 1000:.0f} ms (an agent busy on both cores can take
a few hundred to answer; the slowest read of each run is in "Every run") is too vague about when its count was
true, and is left out of the steady window. Two rates per run:

- **steady**: events counted between the first and the last precise sample taken while events were arriving at
  the destination, over the time between those samples: neither start-up, warm-up nor either side's poll delays
  count. "–" when fewer than two such samples (a run shorter than about 0.2 s for the counts read ten times a
  second); "(k of N)" when only k of the N runs had one. The steady ratio is pyflume's median over Flume's.
- **end-to-end**: the measured events over first byte sent (for a self-generating source, the first count past
  the warm-up) → last event counted at the destination, the last event's time interpolated within the final poll
  at the steady rate (never later than the end of the read that saw it). It includes the agents' own poll and
  batch delays; the end-to-end ratio is pyflume's median over Flume's. A run without a steady rate ends at the end
  of the read that saw its last event, so its end-to-end rate is a lower bound: "≥" marks a median with such a run
  in it, and its ratio is "≥" (pyflume's side bounded), "≤" (Flume's) or "~" (both).

"Exact set at the destination" says what each run checks once it is over, covering the warm-up batch too: "ids,
once each" where the destination can be read back (file_roll files, Hive rows, the http endpoint's ids): every
id present once, nothing lost, nothing duplicated; "not checked (count only)" where it cannot (null sink; the
hdfs, Kafka and HBase sinks here are checked by the channel's take count, the topic's record count or the table's
row count): the count must be exact, the ids are not seen. CPU seconds cover the end-to-end window; peak RSS is
the process's VmHWM over the whole run, warm-up included (summed over both agents in the two-agent chains). Input
lines are 100 bytes unless the case says otherwise. Latency is measured with paced input stamped at send time and
the output tailed every millisecond. Rows with "–" for Flume were run for pyflume only (`--systems pyflume`).
Under the table, one `python -m bench` command line per case reproduces its rows. Flume's hdfs sink runs
with its flume-hdfs-sink module and hadoop-client 3.3.6 on the classpath and talks Hadoop RPC to the mini cluster
(hflush per batch); pyflume's talks HDFS RPC through hdfs-native (hsync per batch), or WebHDFS in the "via WebHDFS"
rows. Cases measured in separate invocations are merged with `--merge` (bench/results.json keeps every run).

The http case's client POSTs requests it built before the agents started (head and 1000-event JSON body), one
after the other on one keep-alive connection, with one `sendall` each, and reads each answer's status line,
headers and body (Content-Length or chunked, as Jetty answers Flume's servlet) before sending the next; a 503 is
sent again 10 ms later. Until 2026-11-30 it used `http.client`, whose own ~130 µs of CPU per request sat in series
with either agent's time.

In the two-agent Avro chains both agents are the same system. Flume's avro sink has one appendBatch call in flight.
pyflume's avro sink takes and encodes its next batch while the aggregator works on the current one. It also sends
that batch at once, because a pyflume avro source agrees to two calls in flight in the Avro handshake, and refuses
every call behind a refused one so the order holds (docs/avro.md). Until 2026-11-30 (git ae8906d) pyflume too had
one call in flight; batch 100 then ran at 1.51× Flume.

Kafka cases run against one Apache Kafka 3.7.1 broker (KRaft, same machine, started by the harness), a fresh
topic with one partition per run; Flume uses its own flume-kafka-source/sink 1.11 (kafka-clients 2.7.2), pyflume
librdkafka; each with its default client settings. The Kafka source case pre-fills the topic (warm-up and measured
records) and measures from the first count past the warm-up; its client ceiling is confluent-kafka (the librdkafka
client pyflume uses) reading the same pre-filled topic alone in the harness's process, as the source does (same
settings, batches of 1000, every value taken, an asynchronous commit per batch), timed from its first batch to its
last. The sink case also checks the topic's record count after every run.

HBase cases run against one Apache HBase 2.6.1 (standalone master and Thrift server, same machine, started by the
harness), a fresh one-region table per run. Flume uses its own flume-ng-hbase2-sink 1.11 with hbase-client 2.6.1
(HBase's native RPC); pyflume goes through the Thrift server. The client ceiling is happybase writing the same
rows in batches of the same size, single-threaded, in the same session (first in odd rounds, last in even ones, after
its own warm-up run); every run's row count is checked.

The WebHDFS rows' client ceiling is a bare `requests` session appending the same lines, a batch per request, to
one new file on the same mini cluster, straight at the datanode the namenode named for the first append (as
pyflume's sink does), timed from the first append to the last; the file's length is checked.

{table(results, latencies, SYSTEMS)}

{_soak_section(path)}## Every run

{chr(10).join(raw)}
"""
    path.write_text(text)


#: RESULTS.md's "## Soak" section, up to the next section: written by ``python -m bench.soak``, kept by write_results
SOAK_SECTION = re.compile(r"^## Soak\n.*?(?=^## |\Z)", flags=re.S | re.M)


def _soak_section(path: Path) -> str:
    """The "## Soak" section of the current RESULTS.md, kept as it is."""
    m = SOAK_SECTION.search(path.read_text() if path.exists() else "")
    return m.group(0).rstrip("\n") + "\n\n" if m else ""


def merged(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` runs with every case run again replaced by its ``new`` runs, in the place of its old ones (so
    RESULTS.md keeps its order of cases); a case not run before goes last."""
    fresh: dict[str, list[dict]] = {}
    for r in new:
        fresh.setdefault(r["case"], []).append(r)
    out: list[dict] = []
    for r in old:
        if r["case"] not in fresh:
            out.append(r)
        elif fresh[r["case"]]:  # the first old run of a case run again: its new runs go here, once
            out += fresh[r["case"]]
            fresh[r["case"]] = []
    return out + [r for runs in fresh.values() for r in runs]


def render_saved(output: Path = HERE / "RESULTS.md") -> None:
    """Rewrite RESULTS.md from bench/results.json (after merging runs made at different times)."""
    import json

    saved = json.loads(output.with_name("results.json").read_text())
    write_results(output, argparse.Namespace(quick=False, runs=3), saved["runs"], saved["latencies"])


PROFILE_FORMATS = {"speedscope": "speedscope.json", "raw": "txt", "flamegraph": "svg", "chrometrace": "json"}


def profile_main(args: argparse.Namespace, case: Case, sustained: int, warmup: int) -> int:
    """One pyflume run of ``case`` with the bench's own setup (properties, input, warm-up), under py-spy."""
    n = args.profile_events or sustained * case.scale * case.scale_sustained
    out = args.output.parent / f"profile-{case.name}-{n}.{PROFILE_FORMATS[args.profile_format]}"
    profiler = Profiler(out, args.profile_format, args.profile_rate)
    r = run_once("pyflume", case, n, warmup * case.scale, profile=profiler)
    steady = f"{r['steady']:,.0f}" if r.get("steady") else "–"
    print(f"{case.name} n={n:,} pyflume under py-spy ({' '.join(profiler.command('PID')[1:])}): "
          f"steady {steady} events/s, end-to-end {r['eps']:,.0f} events/s, CPU {r['cpu']:.2f} s "
          f"(sampling slows the agent; these figures are not comparable with the table's)", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs, burst and 1M sustained, under 5 minutes")
    parser.add_argument("--runs", type=int, default=None, help="measured runs per system (default 5; quick 3)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--systems", default="pyflume,flume", help="pyflume, flume or both")
    parser.add_argument("--burst", type=int, default=200_000)
    parser.add_argument("--sustained", type=int, default=None,
                        help="events in the sustained run (default 2M; quick 1M)")
    parser.add_argument("--latency-rate", type=int, default=20_000)
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other cases' runs from bench/results.json and replace only the cases run now")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up events each agent process takes before the clock starts, times the case's "
                             "scale (default: --sustained, at most 1,000,000)")
    parser.add_argument("--profile", metavar="CASE", default=None,
                        help="run CASE once on pyflume under py-spy (from the end of the warm-up to the last event) "
                             "and write the profile beside --output; nothing else runs, RESULTS.md is not written")
    parser.add_argument("--profile-format", default="speedscope", choices=PROFILE_FORMATS,
                        help="py-spy's output format (raw: collapsed stacks, for flamegraph.pl or inferno)")
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--profile-events", type=int, default=None,
                        help="measured events in the profiled run (default: --sustained, times the case's scales)")
    args = parser.parse_args(argv)
    args.runs = args.runs or (3 if args.quick else 5)
    sustained = args.sustained or (1_000_000 if args.quick else 2_000_000)
    # Flume's TAILDIR → memory → null still speeds up through its first million events (100,000 per 0.1 s after a
    # 100,000-event warm-up, 400,000-500,000 after 1,000,000 here), so a warm-up of the burst's size is not enough
    warmup = min(sustained, 1_000_000) if args.warmup is None else args.warmup
    if args.profile:
        return profile_main(args, ALL[args.profile], sustained, warmup)
    systems = tuple(s for s in args.systems.split(",") if s)
    known = {**CASES, **EXTRA_CASES}
    cases = [known[c] for c in args.cases.split(",") if c]
    results: list[dict] = []
    latencies: list[dict] = []
    at = measured_at()
    for case in cases:
        # the command line that reproduces this case's rows (both sizes, both systems, with its latency probe)
        command = (f"python -m bench --cases {case.name} --systems {','.join(systems)} --runs {args.runs} "
                   f"--burst {args.burst} --sustained {sustained} --warmup {warmup}"
                   + (f" --latency-rate {args.latency_rate}" if case.has_latency else "")
                   + (" --quick" if args.quick else ""))
        if hasattr(case, "ceiling"):
            ceiling_once(case, min(args.burst, 100_000) * case.scale)  # the destination warms up for it too
        for n in (args.burst * case.scale, sustained * case.scale * case.scale_sustained):
            for i in range(args.runs):
                # the ceiling runs first in odd rounds and last in even ones: a destination that speeds up or
                # slows down as it fills must not favour either side
                order = list(systems) + (["ceiling"] if hasattr(case, "ceiling") else [])
                if i % 2 == 0 and hasattr(case, "ceiling"):
                    order = order[-1:] + order[:-1]
                for system in order:
                    r = ceiling_once(case, n) if system == "ceiling" else \
                        run_once(system, case, n, warmup * case.scale)
                    r["command"] = command
                    r["git"] = at
                    results.append(r)
                    steady = f"{r['steady']:,.0f}" if r.get("steady") else "–"
                    print(f"{case.name} n={n:,} run {i + 1} {system}: steady {steady} events/s, end-to-end "
                          f"{r['eps']:,.0f} events/s, CPU {r['cpu']:.2f} s, peak RSS {r['rss']:.0f} MB"
                          + (f", channel held up to {r['peak_queued']:,} events" if "peak_queued" in r else ""),
                          file=sys.stderr)
        for _ in range((1 if args.quick else 3) if case.has_latency else 0):
            for system in systems:
                lat = latency_once(system, case, args.latency_rate, 3.0)
                if lat is not None:
                    latencies.append(lat)
                    print(f"{case.name} latency {system}: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms",
                          file=sys.stderr)
    raw_path = args.output.with_name("results.json")
    if args.merge and raw_path.exists():
        import json

        old = json.loads(raw_path.read_text())
        results, latencies = merged(old["runs"], results), merged(old["latencies"], latencies)
    print(table(results, latencies, systems))
    if not args.no_write:
        import json

        raw_path.write_text(json.dumps({"runs": results, "latencies": latencies}, indent=1) + "\n")
        write_results(args.output, args, results, latencies)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
