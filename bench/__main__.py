"""``python -m bench``: run every case on pyflume and on Apache Flume 1.11, alternating, and publish the medians.

Each case runs at two sizes — a short burst and a sustained run — because the JVM needs time to warm up and
neither side should be flattered. Every run counts events at the destination and checks the exact set (nothing
lost, nothing duplicated) before its figures count.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.cases import CASES, EXTRA_CASES, Case, Ctx, free_port, wait_port
from bench.procstat import cpu_seconds, peak_rss_mb
from bench.systems import Running, versions

HERE = Path(__file__).resolve().parent
ALL = {**CASES, **EXTRA_CASES}
SYSTEMS = ("pyflume", "flume")


def cache_dir() -> Path:
    path = Path(os.environ.get("PYFLUME_BENCH_CACHE", Path.home() / ".cache" / "pyflume-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_once(system: str, case: Case, n: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{case.name}-{system}-"))
    ctx = Ctx(tmp, n, free_port(), free_port())
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
        try:
            case.ready(ctx, run.alive)
            poll = 0.02 if case.self_generating else 0.005
            feeder = threading.Thread(target=case.feed, args=(ctx,), daemon=True)
            cpu0 = sum(cpu_seconds(p) for p in pids)
            t0 = time.monotonic()
            base = 0
            feeder.start()
            seen_first = not case.self_generating
            deadline = t0 + max(180.0, n / 10_000)
            while True:
                got = case.delivered(ctx)
                now = time.monotonic()
                if not seen_first and got > 0:
                    if got >= n:
                        raise RuntimeError(f"{system} {case.name}: all {n} events were done before the first "
                                           f"count; too few events to measure, raise --burst")
                    seen_first, t0, base, cpu0 = True, now, got, sum(cpu_seconds(p) for p in pids)
                if got >= n:
                    break
                if now > deadline or not run.alive():
                    raise RuntimeError(f"{system} {case.name}: {got} of {n} events after {now - t0:.0f} s\n"
                                       f"{run.log()[-3000:]}")
                time.sleep(poll)
            elapsed = max(now - t0, 1e-6)
            cpu = sum(cpu_seconds(p) for p in pids) - cpu0
            rss = sum(peak_rss_mb(p) for p in pids)
            feeder.join(10)
            case.verify(ctx)
        finally:
            run.stop()
            if helper is not None:
                helper.stop()
        counted = n - base
        return {"system": system, "case": case.name, "n": n, "seconds": elapsed, "eps": counted / elapsed,
                "mbps": counted * case.line_size / elapsed / 1e6, "cpu": cpu, "rss": rss}
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


def table(results: list[dict], latencies: list[dict], systems: tuple[str, ...]) -> str:
    lines = [
        "| Case | Events | pyflume events/s | Flume events/s | ratio | pyflume MB/s | Flume MB/s "
        "| pyflume CPU s | Flume CPU s | pyflume peak RSS MB | Flume peak RSS MB | RSS ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = []
    for r in results:
        if (r["case"], r["n"]) not in keys:
            keys.append((r["case"], r["n"]))
    for case, n in keys:
        mine = [r for r in results if r["case"] == case and r["n"] == n and r["system"] == "pyflume"]
        theirs = [r for r in results if r["case"] == case and r["n"] == n and r["system"] == "flume"]
        ratio = ratio_of(med(mine, "eps"), med(theirs, "eps"))
        rss_ratio = ratio_of(med(mine, "rss"), med(theirs, "rss"))
        lines.append(
            f"| {ALL[case].title} | {n:,} | {fmt_int(med(mine, 'eps'))} | {fmt_int(med(theirs, 'eps'))} "
            f"| {fmt(ratio, '.2f', '×')} | {fmt(med(mine, 'mbps'), '.1f')} | {fmt(med(theirs, 'mbps'), '.1f')} "
            f"| {fmt(med(mine, 'cpu'), '.2f')} | {fmt(med(theirs, 'cpu'), '.2f')} | {fmt(med(mine, 'rss'), '.0f')} "
            f"| {fmt(med(theirs, 'rss'), '.0f')} | {fmt(rss_ratio, '.2f')} |"
        )
    ceilings = [k for k in keys if any(r["case"] == k[0] and r["n"] == k[1] and r["system"] == "ceiling"
                                       for r in results)]
    if ceilings:
        lines += ["", "| Case | Events | pyflume events/s | client ceiling events/s | pyflume / ceiling "
                  "| Flume events/s |", "|---|---:|---:|---:|---:|---:|"]
        for case, n in ceilings:
            rows = [r for r in results if r["case"] == case and r["n"] == n]
            mine = med([r for r in rows if r["system"] == "pyflume"], "eps")
            top = med([r for r in rows if r["system"] == "ceiling"], "eps")
            theirs = med([r for r in rows if r["system"] == "flume"], "eps")
            lines.append(f"| {ALL[case].title} | {n:,} | {fmt_int(mine)} | {fmt_int(top)} "
                         f"| {fmt(ratio_of(mine, top) * 100, '.0f', '%')} | {fmt_int(theirs)} |")
    if latencies:
        lines += ["", "| Case | paced rate (events/s) | pyflume p50 ms | pyflume p99 ms | Flume p50 ms "
                  "| Flume p99 ms |", "|---|---:|---:|---:|---:|---:|"]
        for case in dict.fromkeys(r["case"] for r in latencies):
            mine = [r for r in latencies if r["case"] == case and r["system"] == "pyflume"]
            theirs = [r for r in latencies if r["case"] == case and r["system"] == "flume"]
            rate = latencies[0]["rate"]
            lines.append(f"| {ALL[case].title} | {rate:,} | {med(mine, 'p50'):.1f} | {med(mine, 'p99'):.1f} "
                         f"| {med(theirs, 'p50'):.1f} | {med(theirs, 'p99'):.1f} |")
    return "\n".join(lines)


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
    raw = ["| system | case | events | seconds | events/s | CPU s | peak RSS MB |",
           "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        raw.append(f"| {r['system']} | {r['case']} | {r['n']:,} | {r['seconds']:.2f} | {r['eps']:,.0f} "
                   f"| {r['cpu']:.2f} | {r['rss']:.0f} |")
    text = f"""# Benchmark results: pyflume against Apache Flume 1.11

Measured {datetime.date.today().isoformat()} by `python -m bench{' --quick' if args.quick else ''}` on {machine()}.
Versions: pyflume {v['pyflume']} on Python {v['python']}; {v['flume']} on {v['java']}.

Method: each case runs the same properties file on both systems (only the agent binary differs) with the same
generated input, alternating pyflume and Flume, {args.runs} runs each after one warm-up run per system; figures
are medians. Events are counted at the destination and the exact set is checked after every run (nothing lost,
nothing duplicated). Events/s is measured from the first byte sent (from the first event counted, for the
self-generating seq source) to the last event counted at the destination; CPU seconds cover the same window;
peak RSS is the process's VmHWM (summed over both agents in the two-agent avro chain). Input lines are 100 bytes
unless the case says otherwise. Latency is measured with paced input stamped at send time and the output tailed
every millisecond. Rows with "–" for Flume were run for pyflume only (`--systems pyflume`). Flume's hdfs sink runs
with its flume-hdfs-sink module and hadoop-client 3.3.6 on the classpath and talks Hadoop RPC to the mini cluster
(hflush per batch); pyflume's talks HDFS RPC through hdfs-native (hsync per batch), or WebHDFS in the "via WebHDFS"
rows. Cases measured in separate invocations are merged with `--merge` (bench/results.json keeps every run).

Kafka cases run against one Apache Kafka 3.7.1 broker (KRaft, same machine, started by the harness), a fresh
topic with one partition per run; Flume uses its own flume-kafka-source/sink 1.11 (kafka-clients 2.7.2), pyflume
librdkafka; each with its default client settings. The Kafka source case pre-fills the topic and measures from the
first event counted; the sink case also checks the topic's record count after every run.

HBase cases run against one Apache HBase 2.6.1 (standalone master and Thrift server, same machine, started by the
harness), a fresh one-region table per run. Flume uses its own flume-ng-hbase2-sink 1.11 with hbase-client 2.6.1
(HBase's native RPC); pyflume goes through the Thrift server. The client ceiling is happybase writing the same
rows in batches of the same size, single-threaded, in the same session (first in odd rounds, last in even ones, after
its own warm-up run); every run's row count is checked.

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


def render_saved(output: Path = HERE / "RESULTS.md") -> None:
    """Rewrite RESULTS.md from bench/results.json (after merging runs made at different times)."""
    import json

    saved = json.loads(output.with_name("results.json").read_text())
    write_results(output, argparse.Namespace(quick=False, runs=3), saved["runs"], saved["latencies"])


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
    args = parser.parse_args(argv)
    args.runs = args.runs or (3 if args.quick else 5)
    sustained = args.sustained or (1_000_000 if args.quick else 2_000_000)
    systems = tuple(s for s in args.systems.split(",") if s)
    known = {**CASES, **EXTRA_CASES}
    cases = [known[c] for c in args.cases.split(",") if c]
    results: list[dict] = []
    latencies: list[dict] = []
    for case in cases:
        for system in systems:
            print(f"warm-up {case.name} on {system}", file=sys.stderr)
            try:
                run_once(system, case, min(args.burst, 100_000) * case.scale)
            except RuntimeError as exc:  # a warm-up only primes caches; its figures are not used
                print(f"warm-up {case.name} on {system}: {str(exc).splitlines()[0]}", file=sys.stderr)
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
                    r = ceiling_once(case, n) if system == "ceiling" else run_once(system, case, n)
                    results.append(r)
                    print(f"{case.name} n={n:,} run {i + 1} {system}: {r['eps']:,.0f} events/s, "
                          f"CPU {r['cpu']:.2f} s, peak RSS {r['rss']:.0f} MB", file=sys.stderr)
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
        ran = {c.name for c in cases}
        results = [r for r in old["runs"] if r["case"] not in ran] + results
        latencies = [r for r in old["latencies"] if r["case"] not in ran] + latencies
    print(table(results, latencies, systems))
    if not args.no_write:
        import json

        raw_path.write_text(json.dumps({"runs": results, "latencies": latencies}, indent=1) + "\n")
        write_results(args.output, args, results, latencies)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
