"""The spooling-directory source: complete files dropped into a directory become events, file by file.

Progress is durable: after each batch is committed to the channel, the file and the position after the batch are
written to ``<trackerDir>/.flumespool-main.meta`` (write, rename). After a crash or restart the source resumes at
the last committed batch of the file it was reading (at-least-once: only a batch whose commit had not been
recorded can repeat). A finished file is renamed with ``fileSuffix``, deleted (``deletePolicy = immediate``), or
marked in the tracker directory (``trackingPolicy = tracker_dir``).

A file that changes after it was picked up, or whose finished name already exists, is an error that names the
file; that file is left where it is and the source goes on with the others. New files are noticed through
filesystem events (watchdog), with polling every ``pollDelay`` as the fallback.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
from pathlib import Path

from agent import registry
from agent.core import Batch, EventDrivenSource
from agent.java import java_regex
from agent.spec import Conf, ConfigError, Prop, Raw, Spec
from sources.deserializers import EventDeserializer, LineDeserializer

__all__ = ["SpoolDirectorySource"]

META = ".flumespool-main.meta"


class SpoolDirectorySource(EventDrivenSource):
    """Reads each complete file placed in a directory, then renames or deletes it."""

    alias = "spooldir"
    flume_class = "org.apache.flume.source.SpoolDirectorySource"
    spec = Spec(
        Prop("spoolDir", "str", required=True, doc="Directory to read files from."),
        Prop("fileSuffix", "str", ".COMPLETED", "Appended to a file's name once it has been read."),
        Prop("deletePolicy", "enum", "never", "Delete read files?",
             choices={"never": "keep (renamed or tracked)", "immediate": "delete once read"}),
        Prop("trackingPolicy", "enum", "rename", "How a read file is marked (deletePolicy never).",
             choices={"rename": "append fileSuffix", "tracker_dir": "create an empty marker in trackerDir"}),
        Prop("trackerDir", "str", ".flumespool", "Directory for the position file and markers (relative: under "
             "spoolDir)."),
        Prop("fileHeader", "bool", False, "Add the file's absolute path as a header."),
        Prop("fileHeaderKey", "str", "file", "Header name for fileHeader."),
        Prop("basenameHeader", "bool", False, "Add the file's name as a header."),
        Prop("basenameHeaderKey", "str", "basename", "Header name for basenameHeader."),
        Prop("includePattern", "str", "^.*$", "Java regex a file name must match to be read."),
        Prop("ignorePattern", "str", "^$", "Java regex of file names (and directories) to skip."),
        Prop("consumeOrder", "enum", "oldest", "Which file next.",
             choices={"oldest": "oldest mtime first", "youngest": "newest mtime first", "random": "any"}),
        Prop("pollDelay", "int", 500, "Milliseconds between directory scans when nothing is notified.", min=1),
        Prop("recursiveDirectorySearch", "bool", False, "Also read files in sub-directories."),
        Prop("maxBackoff", "int", 4000, "Longest wait (ms) before retrying a batch the channel refused.", min=1),
        Prop("batchSize", "int", 100, "Events per channel transaction.", min=1),
        Prop("inputCharset", "str", "UTF-8", "Character set of the files (LINE deserializer)."),
        Prop("decodeErrorPolicy", "enum", "FAIL", "What an undecodable byte sequence does.",
             choices={"FAIL": "stop reading the file, with an error", "REPLACE": "U+FFFD", "IGNORE": "drop it"}),
        Prop("deserializer", "str", "LINE", "LINE, AVRO, org.apache.flume.sink.solr.morphline.BlobDeserializer"
             "$Builder, or a dotted Python path to a sources.deserializers.EventDeserializer (see Spooling "
             "directory deserializers)."),
        Prop("deserializer.", prefix=True, doc="Options of the deserializer, checked against its spec "
             "(maxLineLength, outputCharset, schemaType, maxBlobLength)."),
        Prop("bufferMaxLineLength", "int", None, "Deprecated: overrides deserializer.maxLineLength for LINE."),
        Prop("bufferMaxLines", "int", None, "Deprecated and ignored, as in Flume.", hidden=True),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        config = self.config
        self.spool = Path(config.spool_dir or ".").expanduser()
        self.suffix: str = config.file_suffix
        self.delete = config.delete_policy == "immediate"
        self.tracker_marks = config.tracking_policy == "tracker_dir" and not self.delete
        tracker = Path(config.tracker_dir).expanduser()
        self.tracker = tracker if tracker.is_absolute() else self.spool / tracker
        self.file_header = config.file_header_key if config.file_header else None
        self.base_header = config.basename_header_key if config.basename_header else None
        try:
            self.include = re.compile(java_regex(config.include_pattern))
            self.ignore = re.compile(java_regex(config.ignore_pattern))
        except re.error as exc:
            conf.error(f"invalid regular expression: {exc}", "includePattern")
            self.include = self.ignore = re.compile("")
        self.order: str = config.consume_order
        self.poll = config.poll_delay / 1000.0
        self.recursive: bool = config.recursive_directory_search
        self.max_backoff = config.max_backoff / 1000.0
        self.batch: int = config.batch_size
        self.errors = {"FAIL": "strict", "REPLACE": "replace", "IGNORE": "ignore"}[config.decode_error_policy]
        self.charset: str = config.input_charset
        self.deser_cls, self.deser_conf = self._deserializer(conf)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer = None
        self._failed: dict[Path, tuple[float, int]] = {}  # files that errored: skipped while unchanged
        self._error: str | None = None

    def _deserializer(self, conf: Conf) -> tuple[type[EventDeserializer], Conf]:
        """The deserializer class (LINE when the name is wrong, the problem recorded) and its options, checked
        against its spec (``bufferMaxLineLength``, deprecated, still sets LINE's maxLineLength)."""
        config = self.config
        try:
            cls: type[EventDeserializer] = registry.resolve("deserializer", config.deserializer)
        except ConfigError as exc:
            conf.error(exc.message, "deserializer")
            cls = LineDeserializer
        raw = conf.sub("deserializer.")
        if config.buffer_max_line_length and cls is LineDeserializer:
            raw["maxLineLength"] = Raw(str(config.buffer_max_line_length), 0)
        return cls, cls.spec.bind(raw, problems=conf.problems, component=conf.component, decl=conf.decl,
                                  key_prefix="deserializer.")

    # Lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.spool.is_dir():
            raise ConfigError(f"spoolDir {self.spool} does not exist or is not a directory", "spoolDir")
        self.tracker.mkdir(parents=True, exist_ok=True)
        self.stopping.clear()
        self._start_watch()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-spool", daemon=True)
        self._thread.start()
        self.log.info("Spooling directory source %s started on %s", self.name, self.spool)

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None
        self.log.info("Spooling directory source %s stopped", self.name)

    def failed(self) -> str | None:
        if self._thread is not None and not self._thread.is_alive() and not self.stopping.is_set():
            return self._error or "reader thread ended"
        return None

    def _start_watch(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return
        wake = self._wake

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: object) -> None:
                wake.set()

        try:
            observer = Observer()
            observer.schedule(_Handler(), str(self.spool), recursive=self.recursive)
            observer.daemon = True
            observer.start()
            self._observer = observer
        except OSError as exc:  # inotify limits: polling still works
            self.log.warning("Spooling directory source %s: no filesystem notifications (%s); polling every %s ms",
                             self.name, exc, int(self.poll * 1000))

    # Reading ------------------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                path = self._next_file()
                if path is None:
                    self._wake.wait(self.poll)
                    self._wake.clear()
                    continue
                self._read_file(path)
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            self.log.exception("Spooling directory source %s failed", self.name)
            raise

    def _candidates(self) -> list[Path]:
        out: list[Path] = []
        tracker = self.tracker.resolve()

        def scan(d: Path) -> None:
            try:
                entries = list(os.scandir(d))
            except FileNotFoundError:
                return
            for e in entries:
                name = e.name
                if name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=False):
                    if self.recursive and not self.ignore.fullmatch(name) and Path(e.path).resolve() != tracker:
                        scan(Path(e.path))
                    continue
                if name.endswith(self.suffix) or not self.include.fullmatch(name) or self.ignore.fullmatch(name):
                    continue
                out.append(Path(e.path))

        scan(self.spool)
        return out

    def _next_file(self) -> Path | None:
        meta = self._load_meta()
        if meta is not None and Path(meta["file"]).exists():
            return Path(meta["file"])  # finish the file we were reading before a restart
        files = []
        for p in self._candidates():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            bad = self._failed.get(p)
            if bad is not None and bad == (st.st_mtime, st.st_size):
                continue
            files.append((st.st_mtime, str(p), p))
        if not files:
            return None
        if self.order == "random":
            return random.choice(files)[2]
        files.sort(key=lambda t: (t[0], t[1]))
        if self.order == "youngest":
            files.sort(key=lambda t: (-t[0], t[1]))
        return files[0][2]

    def _load_meta(self) -> dict | None:
        try:
            return json.loads((self.tracker / META).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _save_meta(self, meta: dict | None) -> None:
        path = self.tracker / META
        if meta is None:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, path)

    def _read_file(self, path: Path) -> None:
        meta = self._load_meta()
        position = 0
        try:
            st = path.stat()
        except FileNotFoundError:
            self._save_meta(None)
            return
        if meta is not None and meta.get("file") == str(path):
            position = int(meta.get("pos", 0))
        headers: dict[str, str] = {}
        if self.file_header:
            headers[self.file_header] = str(path.resolve())
        if self.base_header:
            headers[self.base_header] = path.name
        deser = self.deser_cls(self.name, self.deser_conf, charset=self.charset, errors=self.errors)
        with open(path, "rb") as f:
            deser.open(f, position)
            self.log.info("Spooling directory source %s: reading %s%s", self.name, path,
                          f" from position {position}" if position else "")
            while not self.stopping.is_set():
                try:
                    events, pos = deser.read(self.batch)
                except (UnicodeDecodeError, ValueError) as exc:
                    self._fail_file(path, st, f"cannot decode it ({exc}); set decodeErrorPolicy = REPLACE or "
                                              f"IGNORE to read it anyway")
                    self.counter.add(event_read_fail=1)
                    return
                if not events:
                    break
                if headers:
                    if type(events) is Batch and events.raw:  # lines: the file's headers shared by the batch
                        events = Batch(events.bodies, {**(events.shared or {}), **headers})
                    else:
                        for e in events:
                            e.headers.update(headers)
                if not self.deliver(events, hold=True, first_delay=0.25, max_delay=self.max_backoff):
                    return  # stopping
                self._save_meta({"file": str(path), "pos": pos, "mtime": st.st_mtime, "size": st.st_size})
        if self.stopping.is_set():
            return
        self._finish(path, st)

    def _fail_file(self, path: Path, st: os.stat_result, why: str) -> None:
        self.log.error("Spooling directory source %s: %s: %s. The file is left in place and skipped until it "
                       "changes; other files go on", self.name, path, why)
        self._failed[path] = (st.st_mtime, st.st_size)
        self.counter.add(generic_processing_fail=1)
        self._save_meta(None)

    def _finish(self, path: Path, st: os.stat_result) -> None:
        try:
            now = path.stat()
        except FileNotFoundError:
            self._save_meta(None)
            return
        if (now.st_mtime, now.st_size) != (st.st_mtime, st.st_size):
            self._fail_file(path, st, f"File has been modified since being read (size {st.st_size} → "
                                      f"{now.st_size}); spooled files must be complete and never change")
            self._failed[path] = (now.st_mtime, now.st_size)
            return
        if self.delete:
            path.unlink()
        elif self.tracker_marks:
            rel = path.relative_to(self.spool)
            mark = self.tracker / (str(rel) + self.suffix)
            mark.parent.mkdir(parents=True, exist_ok=True)
            if mark.exists():
                self._fail_file(path, now, f"File name has been re-used with different contents: {mark} exists")
                return
            mark.touch()
        else:
            done = path.with_name(path.name + self.suffix)
            if done.exists():
                self._fail_file(path, now, f"File name has been re-used with different contents: {done} already "
                                           f"exists")
                return
            os.rename(path, done)
        self._save_meta(None)
        self.log.info("Spooling directory source %s: finished %s", self.name, path)
