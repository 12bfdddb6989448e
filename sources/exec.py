"""The exec source: runs a command and turns each line of its standard output into an event.

Lines are collected into batches of ``batchSize``, or whatever arrived within ``batchTimeout`` ms. While the channel
refuses a batch the source retries it and stops reading, so the command blocks on its full pipe: back-pressure,
never a dropped line. The command runs in its own process group, killed on stop; its exit code is logged, and with
``restart`` it is started again after ``restartThrottle`` ms. ``logStdErr`` logs its standard error line by line.

As with Flume, lines the command wrote but the channel had not committed when the agent stops or dies are lost:
exec has no position to resume from (use TAILDIR or spooldir when that matters).
"""

from __future__ import annotations

import codecs
import os
import selectors
import shlex
import signal
import subprocess
import threading
import time

from agent.core import Batch, EventDrivenSource
from agent.spec import Conf, Prop, Spec

__all__ = ["ExecSource"]


class ExecSource(EventDrivenSource):
    """Each line a command prints becomes an event."""

    alias = "exec"
    flume_class = "org.apache.flume.source.ExecSource"
    spec = Spec(
        Prop("command", "str", required=True, doc="The command to run."),
        Prop("shell", "str", None, "Shell to run the command with, e.g. /bin/bash -c (for pipes, wildcards)."),
        Prop("restart", "bool", False, "Start the command again when it exits."),
        Prop("restartThrottle", "int", 10000, "Milliseconds to wait before restarting.", min=0),
        Prop("logStdErr", "bool", False, "Log the command's standard error."),
        Prop("batchSize", "int", 20, "Most lines per channel transaction.", min=1),
        Prop("batchTimeout", "int", 3000, "Milliseconds after which a partial batch is sent.", min=1),
        Prop("charset", "str", "UTF-8", "Character set of the command's output."),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        config = self.config
        self.command: str = config.command or ""
        self.shell: str | None = config.shell
        self.restart: bool = config.restart
        self.throttle = config.restart_throttle / 1000.0
        self.log_stderr: bool = config.log_std_err
        self.batch: int = config.batch_size
        self.timeout = config.batch_timeout / 1000.0
        self.charset: str = config.charset
        try:
            self._utf8 = codecs.lookup(self.charset).name in ("utf-8", "ascii")
        except LookupError:
            conf.error(f"unknown character set '{self.charset}'", "charset")
            self._utf8 = True
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._error: str | None = None

    def argv(self) -> list[str]:
        if self.shell:
            return [*shlex.split(self.shell), self.command]
        return shlex.split(self.command)

    def start(self) -> None:
        self.stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-exec", daemon=True)
        self._thread.start()
        self.log.info("Exec source %s starting: %s", self.name, self.command)

    def stop(self) -> None:
        self.stopping.set()
        self._kill()
        if self._thread is not None:
            self._thread.join(10)
        self.log.info("Exec source %s stopped", self.name)

    def failed(self) -> str | None:
        return self._error

    def _kill(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        except ProcessLookupError:
            pass

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                code = self._run_once()
            except OSError as exc:
                self.log.error("Exec source %s: cannot run %r: %s", self.name, self.command, exc)
                code = None
            if self.stopping.is_set():
                return
            self.log.info("Exec source %s: command exited with %s", self.name,
                          "an error starting it" if code is None else f"code {code}")
            if not self.restart:
                return
            self.log.info("Exec source %s: restarting in %.1f s", self.name, self.throttle)
            if self.stopping.wait(self.throttle):
                return

    def _run_once(self) -> int | None:
        proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        try:
            self._read(proc.stdout.fileno(), proc.stderr.fileno())
        finally:
            proc.stdout.close()
            proc.stderr.close()
        try:
            return proc.wait(5)
        except subprocess.TimeoutExpired:
            self._kill()
            return proc.returncode

    def _read(self, out_fd: int, err_fd: int) -> None:
        """Read both pipes until the command closes them (or the source stops), handing complete lines over in
        batches of batchSize, or what arrived within batchTimeout."""
        sel = selectors.DefaultSelector()
        sel.register(out_fd, selectors.EVENT_READ, "out")
        sel.register(err_fd, selectors.EVENT_READ, "err")
        pending: list[bytes] = []
        partial = b""
        err_partial = b""
        deadline: float | None = None
        open_streams = 2
        try:
            while open_streams and not self.stopping.is_set():
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                for key, _ in sel.select(wait):
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(key.fileobj)
                        open_streams -= 1
                    elif key.data == "err":
                        err_partial = self._stderr(err_partial + data)
                    else:
                        lines = (partial + data).split(b"\n")
                        partial = lines.pop()
                        if lines and not pending:
                            deadline = time.monotonic() + self.timeout
                        pending += lines
                pending, deadline = self._flush(pending, deadline)
            if partial:
                pending.append(partial)
            if pending and not self.stopping.is_set():
                self._deliver(pending)
        finally:
            sel.close()

    def _flush(self, pending: list[bytes], deadline: float | None) -> tuple[list[bytes], float | None]:
        """Deliver the full batches in ``pending``, and the rest once its deadline passed; what is left and its
        deadline."""
        while len(pending) >= self.batch and not self.stopping.is_set():
            self._deliver(pending[:self.batch])
            del pending[:self.batch]
            deadline = time.monotonic() + self.timeout if pending else None
        if pending and deadline is not None and time.monotonic() >= deadline:
            self._deliver(pending)
            return [], None
        return pending, deadline

    def _stderr(self, data: bytes) -> bytes:
        *lines, rest = data.split(b"\n")
        if self.log_stderr:
            for line in lines:
                self.log.info("Exec source %s stderr: %s", self.name, line.decode(self.charset, "replace"))
        return rest

    def _deliver(self, lines: list[bytes]) -> None:
        """Commit one batch, retrying while the channel refuses (the command blocks meanwhile)."""
        bodies = [b[:-1] if b.endswith(b"\r") else b for b in lines]
        if not self._utf8:
            bodies = [b.decode(self.charset, "replace").encode(self.charset) for b in bodies]
        self.deliver(Batch(bodies), hold=True, first_delay=0.1, max_delay=5.0)
