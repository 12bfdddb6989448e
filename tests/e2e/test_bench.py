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
    r = run_once("pyflume", case, 2_000_000 if case.self_generating else 20_000)
    assert r["eps"] > 0 and r["rss"] > 0


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
