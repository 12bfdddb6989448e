"""The drop-in ``flume-ng`` command: Flume's long and short flags, -D properties, version and help."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.e2e


def flume_ng() -> list[str]:
    beside = Path(sys.executable).parent / "flume-ng"
    exe = str(beside) if beside.exists() else shutil.which("flume-ng")
    return [exe] if exe else [sys.executable, "-c", "from agent.cli import flume_ng_main; raise SystemExit(flume_ng_main())"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(flume_ng() + list(args), capture_output=True, text=True, env=env, timeout=timeout)


def test_version_and_help():
    r = run("version")
    assert r.returncode == 0 and r.stdout.startswith("Flume 1.11.0")
    r = run("help")
    assert r.returncode == 0 and "--conf-file,-f" in r.stdout
    r = run("bogus")
    assert r.returncode == 1 and "unknown command 'bogus'" in r.stderr


@pytest.mark.parametrize("flags", [
    pytest.param(["-n", "a1", "-f", "{conf}", "-c", "{dir}"], id="short"),
    pytest.param(["--name", "a1", "--conf-file", "{conf}", "--conf", "{dir}"], id="long"),
])
def test_agent_flags_and_sysprops(tmp_path, flags):
    conf = tmp_path / "x.conf"
    port = free_port()
    conf.write_text("""a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = ${sys:nc.port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
""")
    args = [f.format(conf=conf, dir=tmp_path) for f in flags]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(flume_ng() + ["agent", *args, f"-Dnc.port={port}", "-Dflume.root.logger=INFO,console",
                                          "-Xmx20m"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        import time

        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"ping\n")
                    assert s.recv(3) == b"OK\n"
                break
            except OSError:
                assert time.monotonic() < deadline, "agent did not open its port"
                time.sleep(0.1)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert b"Ignoring JVM options -Xmx20m" in out
