"""Hot reload: watch the configuration files, validate a changed configuration, and hand it to the agent.

Flume polls the file's mtime every 30 s (``-i/--poll-interval``) and restarts every component on a change. Here a
change is seen at once through filesystem notifications (watchdog: inotify, kqueue, ...), and the poll interval is
kept as a fallback for filesystems that send none (NFS, some container mounts); a change means different bytes, not
a newer mtime, so touching a file does nothing. A burst of writes (an editor saving, ``cp`` over the file) is
waited out for ``settle`` seconds, then the whole configuration is validated before anything is touched: with an
error the running agent is left exactly as it is and every problem is logged with its file and line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["ConfigWatcher"]

log = logging.getLogger("pyflume.reload")


class ConfigWatcher:
    """Calls ``on_change()`` from its own thread whenever the content of any of ``files`` changes.

    Construct it before the configuration is loaded: what it reads then is the baseline, so an edit made while
    the agent was starting is still noticed.
    """

    def __init__(self, files: Sequence[str | os.PathLike], on_change: Callable[[], None], *,
                 poll_interval: float = 30.0, settle: float = 0.3):
        self.files = [Path(f).resolve() for f in files]
        self.on_change = on_change
        self.poll_interval = poll_interval
        self.settle = settle
        self._digest = self._read_digest()
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._observer = None
        self._thread: threading.Thread | None = None

    def _read_digest(self) -> bytes | None:
        h = hashlib.sha256()
        try:
            for f in self.files:
                h.update(f.read_bytes())
                h.update(b"\0")
        except OSError:
            return None  # missing or unreadable right now (being replaced): keep what runs
        return h.digest()

    def start(self) -> None:
        self._start_observer()
        self._thread = threading.Thread(target=self._run, name="config-watcher", daemon=True)
        self._thread.start()

    def _start_observer(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - watchdog is a dependency
            log.info("watchdog is not installed; checking the configuration every %g s", self.poll_interval)
            return
        names = {str(f) for f in self.files}
        kick = self._kick

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # noqa: ANN001 - watchdog's event type
                paths = {os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")}
                if paths & names:
                    kick.set()

        observer = Observer()
        try:
            for d in sorted({str(f.parent) for f in self.files}):
                observer.schedule(Handler(), d, recursive=False)
            observer.start()
        except OSError as exc:  # e.g. the inotify watch limit is reached
            log.warning("Cannot watch the configuration for changes (%s); checking it every %g s instead", exc,
                        self.poll_interval)
            return
        self._observer = observer

    def _run(self) -> None:
        first = True  # the files may have changed between the construction (before loading) and start()
        while not self._stop.is_set():
            if not first:
                self._kick.wait(self.poll_interval)
            first = False
            if self._stop.is_set():
                return
            if self._kick.is_set():
                # let a burst of writes finish: wait until no notification came for `settle` seconds
                while self._kick.is_set() and not self._stop.is_set():
                    self._kick.clear()
                    self._stop.wait(self.settle)
            digest = self._read_digest()
            if digest is None or digest == self._digest:
                continue
            self._digest = digest
            log.info("Configuration changed: %s", ", ".join(map(str, self.files)))
            try:
                self.on_change()
            except Exception:
                log.exception("Reloading the configuration failed; the running agent keeps its components")

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(2.0)
        if self._thread is not None:
            self._thread.join(2.0)
