"""The two systems under test: the pyflume ``agent`` command and Apache Flume 1.11, each run on a properties file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from peers import flume  # noqa: E402

FLUME_HEAP = "512m"


def pyflume_command(conf: Path, name: str, sysprops: dict[str, str]) -> list[str]:
    beside = Path(sys.executable).parent / "agent"
    exe = str(beside) if beside.exists() else shutil.which("agent")
    base = [exe] if exe else [sys.executable, "-m", "agent"]
    return base + ["--conf-file", str(conf), "--name", name, "--no-reload-conf",
                   *[f"-D{k}={v}" for k, v in sysprops.items()], "-Dflume.root.logger=WARN,console"]


def flume_command(conf: Path, name: str, sysprops: dict[str, str]) -> list[str]:
    agent = flume.FlumeAgent(conf, name, heap=FLUME_HEAP, sysprops=sysprops, log_level="WARN")
    return agent.command()


class Running:
    """One agent process of either system, in its own process group, its output in a log file."""

    def __init__(self, system: str, conf: Path, name: str = "a1", sysprops: dict[str, str] | None = None):
        self.system = system
        self.log_path = conf.with_suffix(f".{system}.log")
        command = (pyflume_command if system == "pyflume" else flume_command)(conf, name, sysprops or {})
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, cwd=str(conf.parent),
                                     env=env, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self._log.close()


def _head() -> str:
    """``git <short hash>`` of the checked-out pyflume commit."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"git {commit.stdout.strip() or '?'}"


def measured_at() -> str:
    """The pyflume commit being measured: :func:`_head`, with " and uncommitted changes" when files other than the
    benchmark's own results differ from it."""
    status = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True).stdout.splitlines()
    changed = [line for line in status if line[3:] not in ("bench/results.json", "bench/RESULTS.md")]
    return _head() + (" and uncommitted changes" if changed else "")


def versions() -> dict[str, str]:
    java = subprocess.run(["java", "-version"], capture_output=True, text=True)
    return {
        "pyflume": _head(),
        "python": sys.version.split()[0],
        "flume": f"Apache Flume {flume.FLUME_VERSION} (Maven Central), -Xmx{FLUME_HEAP}",
        "java": (java.stderr.splitlines() or ["?"])[0],
    }
