"""The file_roll sink: events written to files in a local directory, a new file every ``sink.rollInterval`` seconds.

Each batch is serialized into one buffer, written with one call and flushed to the OS before the transaction
commits (as Flume, no fsync per batch: a crash of the machine, not of the process, can lose the last batches).
"""

from __future__ import annotations

import os
import time
from typing import BinaryIO

from agent import registry
from agent.core import BatchSink, Event
from agent.spec import Conf, ConfigError, Prop, Spec
from sinks.serializers import EventSerializer

__all__ = ["RollingFileSink", "PathManager", "RollTimePathManager"]


class PathManager:
    """DEFAULT naming: ``<prefix><creation ms>-<N>[.<extension>]``, N counting from 1."""

    def __init__(self, prefix: str, extension: str):
        self.prefix = prefix
        self.extension = extension
        self.stamp = int(time.time() * 1000)
        self.n = 0

    def _suffix(self) -> str:
        return f".{self.extension}" if self.extension else ""

    def next_name(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.stamp}-{self.n}{self._suffix()}"


class RollTimePathManager(PathManager):
    """ROLLTIME naming: ``<prefix><yyyyMMddHHmmss>-<N>[.<extension>]``, N restarting when the second changes."""

    def __init__(self, prefix: str, extension: str):
        super().__init__(prefix, extension)
        self._last = ""

    def next_name(self) -> str:
        stamp = time.strftime("%Y%m%d%H%M%S")
        if stamp != self._last:
            self._last = stamp
            self.n = 0
        self.n += 1
        return f"{self.prefix}{stamp}-{self.n}{self._suffix()}"


_PATH_MANAGERS = {"DEFAULT": PathManager, "ROLLTIME": RollTimePathManager}


class RollingFileSink(BatchSink):
    """Writes events to files in a local directory, starting a new file every rollInterval seconds."""

    alias = "file_roll"
    flume_class = "org.apache.flume.sink.RollingFileSink"
    batch_size_prop = "sink.batchSize"
    spec = Spec(
        Prop("sink.directory", "str", required=True, doc="Directory the files are written to (created if missing)."),
        Prop("sink.rollInterval", "int", 30, "Seconds between new files; 0 writes everything to one file.", min=0),
        Prop("sink.pathManager", "str", "DEFAULT",
             "File naming: DEFAULT (<prefix><start ms>-<N>), ROLLTIME (<prefix><yyyyMMddHHmmss>-<N>), or a dotted "
             "Python path to a PathManager subclass."),
        Prop("sink.pathManager.prefix", "str", "", "Text at the start of each file name."),
        Prop("sink.pathManager.extension", "str", "", "File name extension (a dot is added before it)."),
        Prop("sink.serializer", "str", "TEXT", "How events become bytes: text, header_and_text, avro_event, or a "
                                               "serializer class name."),
        Prop("sink.serializer.", prefix=True, doc="Options of the serializer (e.g. sink.serializer.appendNewline)."),
        Prop("sink.batchSize", "int", 100, "Events per transaction (one write and flush per batch). Flume reads only "
                                           "sink.batchSize; plain batchSize is accepted for the user guide's "
                                           "spelling.", min=1, aliases=("batchSize",)),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        self.directory = conf["sink.directory"]
        self.roll_interval = conf["sink.rollInterval"]
        pm = conf["sink.pathManager"]
        pm_cls = _PATH_MANAGERS.get(str(pm).upper())
        if pm_cls is None:
            try:
                module, _, cls_name = pm.rpartition(".")
                import importlib

                pm_cls = getattr(importlib.import_module(module), cls_name)
            except (ImportError, AttributeError, ValueError):
                conf.error(f"'{pm}' is not valid; expected DEFAULT, ROLLTIME or a dotted Python path to a "
                           f"PathManager class", "sink.pathManager")
                pm_cls = PathManager
        self._pm_cls = pm_cls
        self._prefix = conf["sink.pathManager.prefix"]
        self._extension = conf["sink.pathManager.extension"]
        try:
            self._ser_cls = registry.resolve("serializer", conf["sink.serializer"])
        except ConfigError as exc:
            conf.error(exc.message, "sink.serializer")
            self._ser_cls = registry.resolve("serializer", "text")
        self._ser_conf = conf.nested("sink.serializer.", self._ser_cls.spec)
        self._ser_cls(name, self._ser_conf)  # configuration errors surface now, not at the first file
        self._file: BinaryIO | None = None
        self._serializer: EventSerializer | None = None
        self._opened_at = 0.0
        self.path_manager: PathManager | None = None
        self.current_path: str | None = None

    def start(self) -> None:
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise OSError(f"sink {self.name}: cannot create sink.directory {self.directory!r}: "
                          f"{exc.strerror or exc}") from None
        self.path_manager = self._pm_cls(self._prefix, self._extension)
        self.log.info("Sink %s writing to %s", self.name, self.directory)

    def stop(self) -> None:
        self._close()

    def _open(self) -> None:
        assert self.path_manager is not None
        path = os.path.join(self.directory, self.path_manager.next_name())
        try:
            f = open(path, "ab")
        except OSError:
            self.counter.connection_failed += 1
            raise
        ser = self._ser_cls(self.name, self._ser_conf)
        ser.open(f)
        self._file, self._serializer, self.current_path = f, ser, path
        self._opened_at = time.monotonic()
        self.counter.connection_created += 1

    def _close(self) -> None:
        if self._file is None:
            return
        try:
            if self._serializer is not None:
                self._serializer.close()
            self._file.close()
        finally:
            self._file = None
            self._serializer = None
            self.counter.connection_closed += 1

    def _roll_due(self) -> bool:
        return self._file is not None and self.roll_interval > 0 and (
            time.monotonic() - self._opened_at >= self.roll_interval)

    def deliver(self, events: list[Event]) -> None:
        if self._roll_due():
            self._close()
        if self._file is None:
            self._open()
        assert self._serializer is not None
        self._serializer.write(events)
        self._serializer.flush()

    def idle(self) -> None:
        # Flume opens a new (possibly empty) file every interval even without events.
        if self._file is None or self._roll_due():
            self._close()
            self._open()
