"""The file_roll sink: events written to files in a local directory, a new file every ``sink.rollInterval`` seconds.

Flume's ``RollingFileSink`` kept: the same keys and defaults, the same file names (DEFAULT
``<prefix><T>-<N>[.<extension>]`` with T the epoch ms when the sink was configured; ROLLTIME
``<prefix><yyyyMMddHHmmss>-<N>[.<extension>]``), a new, possibly empty, file every interval counted from the
sink's start, and a file opened as soon as the sink runs, before the first event.

Delivery: each batch is serialized into one buffer and handed to the operating system with one ``write`` before
the transaction commits. There is no fsync per batch (Flume's file_roll does not sync either): a crash of the
process loses nothing that was committed, a crash of the machine can lose the batches of the last few seconds.
A process killed in the middle of that ``write`` can leave its file ending in part of the batch (the kernel may
stop a large write at a page boundary); that batch was not committed, so the next start writes it whole to a new
file. Readers of a directory written through crashes should treat a last line without a newline as torn.

Rolling needs no timer thread: the sink checks the clock before each batch and each time it finds the channel
empty. The sink runner calls ``process()`` at least every few seconds when idle (the memory channel's take waits
up to keep-alive, 3 s, then the runner backs off up to 5 s), so an idle sink rolls up to about 8 s late; a busy one
rolls on time. Flume's own roll is approximate in the same way: its timer only sets a flag that the next
``process()`` acts on.

Files are created exclusively: if the next name already exists (a restarted ROLLTIME sink in the same second, two
sinks sharing a directory), the sink skips to the following number instead of truncating it as Flume would.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import ClassVar

from agent import registry
from agent.core import BatchSink, Event
from agent.spec import Conf, ConfigError, Prop, Spec
from sinks.serializers import EventSerializer

__all__ = ["RollingFileSink", "PathManager", "RollTimePathManager"]

#: The roll clock (monotonic seconds), a module attribute so tests can replace it.
_now = time.monotonic

_MAX_NAME_SKIPS = 1000


# --------------------------------------------------------------------------------------------------------------
# File naming


class PathManager:
    """DEFAULT naming: ``<prefix><T>-<N>[.<extension>]``: T is the epoch ms when the sink was configured and N
    counts files from 1.

    To name files your own way, subclass this class, override ``next_name()``, add options to ``spec`` (they are
    read from ``sink.pathManager.*`` into ``self.config``) and set ``sink.pathManager = package.module.YourClass``.
    Path managers are the registry family ``path_manager``: ``Cls(conf)`` gets its options bound to ``spec``.
    """

    alias: ClassVar[str] = "DEFAULT"
    flume_class: ClassVar[str | None] = "org.apache.flume.formatter.output.DefaultPathManager$Builder"
    spec: ClassVar[Spec] = Spec(
        Prop("prefix", "str", "", "Text at the start of each file name."),
        Prop("extension", "str", "", "File name extension; a dot is added before it."),
    )

    def __init__(self, conf: Conf):
        self.conf = conf
        #: the typed, frozen configuration (see agent.spec)
        self.config = conf.typed if conf.spec is not None else None
        self.prefix: str = self.config.prefix or ""
        self.extension: str = self.config.extension or ""
        self.series_timestamp = int(time.time() * 1000)
        self.index = 0

    def _suffix(self) -> str:
        return f".{self.extension}" if self.extension else ""

    def next_name(self) -> str:
        """The name (not the path) of the next file."""
        self.index += 1
        return f"{self.prefix}{self.series_timestamp}-{self.index}{self._suffix()}"


class RollTimePathManager(PathManager):
    """ROLLTIME naming: ``<prefix><yyyyMMddHHmmss>-<N>[.<extension>]`` in local time; N restarts at 1 whenever
    the timestamp differs from the previous file's."""

    alias = "ROLLTIME"
    flume_class = "org.apache.flume.formatter.output.RollTimePathManager$Builder"

    def __init__(self, conf: Conf):
        super().__init__(conf)
        self._last_stamp = ""

    def next_name(self) -> str:
        stamp = time.strftime("%Y%m%d%H%M%S", time.localtime())
        if stamp != self._last_stamp:
            self._last_stamp = stamp
            self.index = 0
        self.index += 1
        return f"{self.prefix}{stamp}-{self.index}{self._suffix()}"


def _path_manager_class(text: str) -> type[PathManager]:
    """DEFAULT / ROLLTIME (any case, as Flume), their Flume builder names, or a dotted Python path."""
    try:
        return registry.resolve("path_manager", text)
    except ConfigError as exc:
        if "." in text:
            raise ConfigError(exc.message, "sink.pathManager") from None
        raise ConfigError(f"'{text}' is not valid; expected DEFAULT, ROLLTIME, or a dotted Python path to a "
                          f"sinks.file_roll.PathManager subclass", "sink.pathManager") from None


# --------------------------------------------------------------------------------------------------------------
# The sink


class RollingFileSink(BatchSink):
    """Writes events to files in a local directory, starting a new file every ``sink.rollInterval`` seconds."""

    alias = "file_roll"
    flume_class = "org.apache.flume.sink.RollingFileSink"
    batch_size_prop = "sink.batchSize"
    spec = Spec(
        Prop("sink.directory", "str", required=True,
             doc="Directory the files are written to; created at start if missing."),
        Prop("sink.rollInterval", "int", 30,
             "Seconds between new files, counted from the sink's start; a new file starts each interval even when "
             "no event came. 0 (or less) writes everything to one file."),
        Prop("sink.pathManager", "class", "DEFAULT",
             "How files are named: DEFAULT (<prefix><T>-<N>, T = epoch ms when the sink was configured), ROLLTIME "
             "(<prefix><yyyyMMddHHmmss>-<N>), or a dotted Python path to a sinks.file_roll.PathManager subclass."),
        Prop("sink.pathManager.", prefix=True,
             doc="Options of the path manager (see Path managers: prefix, extension), checked against its spec."),
        Prop("sink.serializer", "class", "TEXT",
             "How events become bytes: TEXT (body and newline), HEADER_AND_TEXT, AVRO_EVENT (any case), a Flume "
             "serializer builder class name, or a dotted Python path to a sinks.serializers.EventSerializer."),
        Prop("sink.serializer.", prefix=True,
             doc="Options of the serializer, e.g. sink.serializer.appendNewline = false."),
        # Flume reads only sink.batchSize; a plain batchSize is ignored there (and warned about here), so a Flume
        # file with batchSize larger than the channel's transactionCapacity stays valid.
        Prop("sink.batchSize", "int", 100, "Events per transaction: one write per batch.", min=1),
    )

    def __init__(self, name: str, conf: Conf):
        super().__init__(name, conf)
        c = self.config
        self.directory: str = c.sink_directory or ""
        self.roll_interval: int = c.sink_roll_interval
        try:
            pm_cls = _path_manager_class(c.sink_path_manager)
        except ConfigError as exc:
            conf.error(exc.message, exc.prop)
            pm_cls = PathManager
        # Created now, as Flume creates it at configure time: DEFAULT's T is the configuration time.
        self.path_manager: PathManager = pm_cls(conf.nested("sink.pathManager.", pm_cls.spec))
        try:
            ser_cls = registry.resolve("serializer", c.sink_serializer)
        except ConfigError as exc:
            conf.error(exc.message, "sink.serializer")
            ser_cls = registry.resolve("serializer", "text")
        ser_conf = conf.nested("sink.serializer.", ser_cls.spec)
        try:
            self.serializer: EventSerializer = ser_cls(name, ser_conf)
        except ConfigError as exc:
            ser_conf.error(exc.message, exc.prop)
            self.serializer = _text_serializer(name)  # never used: the error above stops the agent
        self.accepts_batch = self.serializer.accepts_batch  # deliver hands the batch to the serializer as it is
        self.current_path: str | None = None
        self._file: _OutputFile | None = None
        self._next_roll = math.inf
        self._last_error_log = -math.inf

    # Lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise OSError(f"sink {self.name}: cannot create sink.directory '{self.directory}': "
                          f"{exc.strerror or exc}") from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise OSError(f"sink {self.name}: sink.directory '{self.directory}' is not writable by this process")
        if self.roll_interval > 0:
            self._next_roll = _now() + self.roll_interval
        else:
            self._next_roll = math.inf
            self.log.info("Sink %s: rollInterval is %d, file rolling will not happen", self.name,
                          self.roll_interval)
        self.log.info("RollingFileSink %s started, writing to %s", self.name, self.directory)

    def stop(self) -> None:
        try:
            self._close()
        finally:
            self._next_roll = math.inf
            self.log.info("RollingFileSink %s stopped", self.name)

    # Work ---------------------------------------------------------------------------------------------------
    def deliver(self, events: list[Event]) -> None:
        if _now() >= self._next_roll:
            self._roll()
        if self._file is None:
            self._open()
        try:
            self.serializer.write(events)
            self.serializer.flush()
        except BaseException:
            # The file may now end in a partial batch; the batch is rolled back and retried into a new file, so
            # that an Avro file is never continued after a torn block.
            self._abandon()
            raise

    def idle(self) -> None:
        """The channel was empty: roll if the interval passed, and keep a file open as Flume does."""
        try:
            if _now() >= self._next_roll:
                self._roll()
            if self._file is None:
                self._open()
        except Exception as exc:  # idle() must not raise: the take was already committed
            now = _now()
            if now - self._last_error_log >= 30.0:
                self._last_error_log = now
                self.log.error("Sink %s: %s", self.name, exc)

    def metrics(self) -> dict[str, str] | None:
        attrs = self.counter.attributes()
        # Flume's RollingFileSink never updates the batch counters, so its /metrics always shows them as 0.
        for key in ("BatchEmptyCount", "BatchUnderflowCount", "BatchCompleteCount"):
            attrs[key] = "0"
        return attrs

    # Files --------------------------------------------------------------------------------------------------
    def _roll(self) -> None:
        # Flume's timer ticks at a fixed rate from the start; ticks missed while we were busy make one roll.
        now = _now()
        interval = self.roll_interval
        missed = math.floor((now - self._next_roll) / interval) + 1
        self._next_roll += missed * interval
        if self._file is not None:
            self.log.debug("Sink %s: time to rotate %s", self.name, self.current_path)
            self._close()

    def _open(self) -> None:
        counter = self.counter
        for _ in range(_MAX_NAME_SKIPS):
            path = os.path.join(self.directory, self.path_manager.next_name())
            try:
                f = _OutputFile(path)
            except FileExistsError:
                self.log.warning("Sink %s: %s already exists; not overwriting it, using the next name", self.name,
                                 path)
                continue
            except OSError as exc:
                counter.add(connection_failed=1)
                raise OSError(f"Failed to open file {path} while delivering event: {exc.strerror or exc}") from exc
            break
        else:
            counter.add(connection_failed=1)
            raise OSError(f"no free file name in {self.directory} after {_MAX_NAME_SKIPS} tries")
        try:
            self.serializer.open(f)
        except BaseException:
            f.close()
            counter.add(connection_failed=1)
            raise
        self._file = f
        self.current_path = path
        counter.add(connection_created=1)
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("Sink %s: opened %s", self.name, path)

    def _close(self) -> None:
        f = self._file
        if f is None:
            return
        self._file = None
        try:
            self.serializer.close()
            f.close()
        except OSError as exc:
            self.counter.add(connection_failed=1)
            f.close_quietly()
            raise OSError(f"Unable to rotate file {self.current_path}: {exc.strerror or exc}") from exc
        self.counter.add(connection_closed=1)

    def _abandon(self) -> None:
        f = self._file
        if f is None:
            return
        self._file = None
        self.serializer.out = None
        f.close_quietly()
        self.counter.add(connection_closed=1)


def _text_serializer(name: str) -> EventSerializer:
    """A default text serializer, to finish building a sink whose configured serializer failed to build."""
    cls = registry.resolve("serializer", "text")
    return cls(name, Conf.from_dict(cls.spec))


class _OutputFile:
    """A new file, written without a user-space buffer: each ``write`` goes to the OS, whole, before returning.

    Opened exclusively (``FileExistsError`` if the name is taken). ``flush`` has nothing to do.
    """

    __slots__ = ("_raw", "name")

    def __init__(self, path: str):
        self._raw = open(path, "xb", buffering=0)
        self.name = path

    def write(self, data: bytes) -> int:
        raw = self._raw
        n = raw.write(data)
        size = len(data)
        if n is not None and n < size:  # a short write (a full disk, a signal): finish it or raise
            view = memoryview(data)
            while n < size:
                done = raw.write(view[n:])
                if not done:
                    raise OSError(f"short write to {self.name}: {n} of {size} bytes written")
                n += done
        return size

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()

    def close_quietly(self) -> None:
        try:
            self._raw.close()
        except OSError:
            pass
