"""The benchmark harness itself works: a small pyflume run of each case is counted and checked exactly."""

from __future__ import annotations

import pytest

from bench.__main__ import latency_once, run_once
from bench.cases import CASES


@pytest.mark.parametrize("name", list(CASES))
def test_each_case_runs_and_checks_its_output(name: str) -> None:
    case = CASES[name]
    if "kafka" in name:
        from conftest import require_java_peers

        require_java_peers()  # the case starts its own Kafka broker
    # a warm-up batch first (counted in full before the clock starts), then the measured events; the check at
    # the destination covers both
    n = 10_000_000 if case.self_generating else 20_000  # seq makes about ten million a second
    r = run_once("pyflume", case, n, warm=n // 2)
    assert r["eps"] > 0 and r["rss"] > 0 and r["warm"] == n // 2 and r["check"] in ("ids", "count")
    assert r["steady"] is None or r["steady"] > 0


def test_latency_probe_sees_every_line() -> None:
    lat = latency_once("pyflume", CASES["netcat-memory-file_roll"], 2000, 1.0)
    assert lat is not None and 0 < lat["p50"] <= lat["p99"]


def test_hbase_case_and_its_client_ceiling(hbase) -> None:
    """The HBase case (an extra case, run on request) counts rows in the table; its ceiling writes the same rows."""
    import bench.cases as cases
    from bench.__main__ import ceiling_once

    cases._HBASE = hbase  # the session's HBase instead of a second one
    case = cases.EXTRA_CASES["netcat-memory-hbase2-batch1000"]
    r = run_once("pyflume", case, 20_000)
    c = ceiling_once(case, 20_000)
    assert r["eps"] > 0 and c["eps"] > 0 and c["system"] == "ceiling"


def test_rates_count_the_flow_and_interpolate_the_last_event() -> None:
    """Steady: between the first and last samples inside the flow; end to end: first byte → the last event, its
    time interpolated at the steady rate within the poll that saw it."""
    from bench.__main__ import rates

    # pushed input: warm-up of 100 counted, first byte at t=0, 1000 events/s from 0.2 s to 0.4 s, done by 0.5 s;
    # each read took 2 ms but one, which took 300 ms and is left out of the steady window
    samples = [(0.0, 100, 0.0), (0.1, 100, 0.002), (0.2, 200, 0.002), (0.3, 300, 0.002), (0.35, 350, 0.3),
               (0.4, 400, 0.002), (0.5, 450, 0.002)]
    r = rates(samples, 0.0, 100, 450, self_generating=False)
    assert r["steady"] == pytest.approx(1000) and r["flow_samples"] == 3 and r["slow_samples"] == 1
    assert r["seconds"] == pytest.approx(0.45) and r["eps"] == pytest.approx(350 / 0.45) and not r["bound"]
    # too short to sample the flow twice: no steady rate, the end is the end of the read that saw the last event
    r = rates([(0.0, 100, 0.0), (0.1, 150, 0.002), (0.2, 450, 0.01)], 0.0, 100, 450, self_generating=False)
    assert r["steady"] is None and r["bound"] and r["seconds"] == pytest.approx(0.205)
    # a self-generating source: the clock's own sample (past the warm-up) is in the flow
    r = rates([(0.0, 120, 0.002), (0.1, 220, 0.002), (0.2, 300, 0.002)], 0.0, 120, 300, self_generating=True)
    assert r["steady"] == pytest.approx(1000) and r["seconds"] == pytest.approx(0.18)


def test_merge_keeps_the_order_of_cases_and_the_memory_table_sets_the_channel_apart() -> None:
    """--merge puts a case's new runs in the place of its old ones; RESULTS.md lists the rows over a quarter of
    Flume's RSS with their channel's bodies taken out, and each command line with the commit it ran on."""
    from bench.__main__ import merged, table

    def run(case: str, system: str, rss: float, queued: int | None, eps: float = 1000.0) -> dict:
        r = {"case": case, "system": system, "n": 100_000, "rss": rss, "eps": eps, "cpu": 1.0, "check": "count",
             "steady": eps, "bound": False, "command": f"python -m bench --cases {case}", "git": "git abc1234"}
        return r if queued is None else {**r, "peak_queued": queued}

    hdfs, seq, http = "netcat-memory-hdfs-file-batch100", "seq-memory-null", "http-memory-null"
    old = [run(seq, "pyflume", 30, None), run(hdfs, "pyflume", 150, 90_000), run(http, "pyflume", 30, None)]
    new = [run(hdfs, "pyflume", 140, 80_000), run(hdfs, "flume", 360, 90_000), run("avro-chain-batch100", "flume", 1, 0)]
    runs = merged(old, new)
    assert [(r["case"], r["rss"]) for r in runs] == [(seq, 30), (hdfs, 140), (hdfs, 360), (http, 30),
                                                     ("avro-chain-batch100", 1)]
    text = table([r for r in runs if r["case"] == hdfs] + [run(seq, "flume", 300, None)] + runs[:1], [],
                 ("pyflume", "flume"))
    # 140 MB against 360: over a quarter; 80,000 bodies of 1000 bytes are 80 MB, and 60 MB is 0.17 of Flume's
    assert "| 100,000 | 80,000 | 90,000 | 80 | 90 | 60 | 0.17 |" in text, text
    assert text.count("| 100,000 |") == 3  # seq (30 against 300) is in the main table only
    assert "- `python -m bench --cases netcat-memory-hdfs-file-batch100` (git abc1234)" in text
