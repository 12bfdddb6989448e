"""file_roll and logger sinks, driven as the runner drives them: a started memory channel, events put in a
transaction, ``process()`` called; the files and log lines are checked byte for byte."""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import time
from pathlib import Path

import fastavro
import pytest

import sinks.file_roll as file_roll
from agent.core import Event, EventDeliveryException, Status
from agent.registry import resolve
from agent.spec import ConfigError, Problem, Prop, Raw, Spec
from channels.memory import MemoryChannel
from sinks.file_roll import PathManager, RollingFileSink, RollTimePathManager
from sinks.logger import LoggerSink


def bind(cls, props: dict[str, str], problems: list[Problem] | None = None):
    problems = [] if problems is None else problems
    conf = cls.spec.bind({k: Raw(v, 3) for k, v in props.items()}, problems=problems, component="a1.sinks.k1",
                         decl=Raw(cls.alias or "", 2, "a1.conf"))
    return conf, problems


def make_channel(**props: str) -> MemoryChannel:
    props = {"capacity": "10000", "transactionCapacity": "1000", "keep-alive": "0", **props}
    conf, problems = bind(MemoryChannel, props)
    assert problems == []
    ch = MemoryChannel("c1", conf)
    ch.start()
    return ch


def put(ch: MemoryChannel, *bodies: bytes | str, **headers: str) -> None:
    with ch.transaction() as tx:
        tx.put_batch([Event(b.encode() if isinstance(b, str) else b, dict(headers)) for b in bodies])
        tx.commit()


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(file_roll, "_now", c)
    return c


def file_sink(tmp_path: Path, channel: MemoryChannel | None = None, start: bool = True, **props: str):
    props = {"sink.directory": str(tmp_path / "out"), **props}
    conf, problems = bind(RollingFileSink, props)
    sink = RollingFileSink("k1", conf)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError("; ".join(map(str, errors)))
    sink.channel = channel if channel is not None else make_channel()
    if start:
        sink.start()
    return sink


def files(sink: RollingFileSink) -> list[Path]:
    return sorted(Path(sink.directory).iterdir(), key=lambda p: int(re.search(r"-(\d+)", p.name).group(1)))


def contents(sink: RollingFileSink) -> list[bytes]:
    return [p.read_bytes() for p in files(sink)]


# --------------------------------------------------------------------------------------------------------------
# file_roll: writing


def test_registry_resolves_file_roll_by_alias_and_flume_class():
    assert resolve("sink", "file_roll") is RollingFileSink
    assert resolve("sink", "org.apache.flume.sink.RollingFileSink") is RollingFileSink


def test_writes_each_batch_and_names_the_file_as_flume(tmp_path, clock):
    before = int(time.time() * 1000)
    sink = file_sink(tmp_path)
    after = int(time.time() * 1000)
    put(sink.channel, "one", "two", host="h")
    assert sink.process() is Status.READY
    put(sink.channel, "three")
    assert sink.process() is Status.READY
    [path] = files(sink)
    stamp, n = path.name.split("-")
    assert before <= int(stamp) <= after and n == "1"
    assert path.read_bytes() == b"one\ntwo\nthree\n"
    assert sink.process() is Status.BACKOFF
    sink.stop()
    assert contents(sink) == [b"one\ntwo\nthree\n"]


def test_a_file_is_opened_before_the_first_event_as_flume(tmp_path, clock):
    sink = file_sink(tmp_path)
    assert sink.process() is Status.BACKOFF
    assert contents(sink) == [b""]


def test_prefix_and_extension(tmp_path, clock):
    sink = file_sink(tmp_path, **{"sink.pathManager.prefix": "events-", "sink.pathManager.extension": "log"})
    put(sink.channel, "x")
    sink.process()
    [path] = files(sink)
    assert re.fullmatch(r"events-\d{13}-1\.log", path.name)


def test_batch_size_is_sink_batch_size_only(tmp_path, clock):
    assert file_sink(tmp_path, start=False).batch_size() == 100
    assert file_sink(tmp_path, start=False, **{"sink.batchSize": "7"}).batch_size() == 7
    # Flume reads only sink.batchSize: a plain batchSize is ignored (with a warning here).
    conf, problems = bind(RollingFileSink, {"sink.directory": str(tmp_path), "batchSize": "5000"})
    assert RollingFileSink("k1", conf).batch_size() == 100
    assert [p.severity for p in problems] == ["warning"]
    assert "did you mean 'sink.batchSize'" in str(problems[0])
    sink = file_sink(tmp_path, **{"sink.batchSize": "2"})
    put(sink.channel, "a", "b", "c")
    sink.process()
    assert sink.channel.size() == 1


def test_serializer_options_reach_the_serializer(tmp_path, clock):
    sink = file_sink(tmp_path, **{"sink.serializer": "header_and_text", "sink.serializer.appendNewline": "false"})
    put(sink.channel, "a", "b", k="v")
    sink.process()
    sink.stop()
    assert contents(sink) == [b"{k=v} a{k=v} b"]


def test_text_without_newline(tmp_path, clock):
    sink = file_sink(tmp_path, **{"sink.serializer": "TEXT", "sink.serializer.appendNewline": "false"})
    put(sink.channel, "a", "b")
    sink.process()
    assert contents(sink) == [b"ab"]


def test_avro_event_files_read_back(tmp_path, clock):
    sink = file_sink(tmp_path, **{"sink.serializer": "avro_event", "sink.serializer.compressionCodec": "deflate",
                                  "sink.rollInterval": "10"})
    put(sink.channel, "a", "b", k="v")
    sink.process()
    put(sink.channel, "c")
    sink.process()
    # The file is readable up to the last commit while still open.
    first = files(sink)[0]
    assert [r["body"] for r in fastavro.reader(io.BytesIO(first.read_bytes()))] == [b"a", b"b", b"c"]
    clock.t += 10
    put(sink.channel, "d")
    sink.process()
    sink.stop()
    read = [list(fastavro.reader(io.BytesIO(b))) for b in contents(sink)]
    assert read == [
        [{"headers": {"k": "v"}, "body": b"a"}, {"headers": {"k": "v"}, "body": b"b"},
         {"headers": {}, "body": b"c"}],
        [{"headers": {}, "body": b"d"}],
    ]
    assert fastavro.reader(io.BytesIO(contents(sink)[0])).metadata["avro.codec"] == "deflate"


def test_serializer_problems_are_reported_with_the_full_key(tmp_path):
    problems: list[Problem] = []
    conf, _ = bind(RollingFileSink, {"sink.directory": str(tmp_path), "sink.serializer.appendNewLine": "false",
                                     "sink.serializer.compressionCodec": "x"}, problems)
    RollingFileSink("k1", conf)
    assert [str(p) for p in problems] == [
        "a1.conf:3: a1.sinks.k1: warning: unknown property 'sink.serializer.appendNewLine'; "
        "did you mean 'sink.serializer.appendNewline'?",
        "a1.conf:3: a1.sinks.k1: warning: unknown property 'sink.serializer.compressionCodec'",
    ]


def test_avro_codec_warning_is_recorded_once(tmp_path):
    problems: list[Problem] = []
    conf, _ = bind(RollingFileSink, {"sink.directory": str(tmp_path), "sink.serializer": "avro_event",
                                     "sink.serializer.compressionCodec": "lzo"}, problems)
    sink = RollingFileSink("k1", conf)
    sink.channel = make_channel()
    sink.start()
    sink.process()
    sink.stop()
    sink.start()
    sink.process()
    assert [p.prop for p in problems] == ["sink.serializer.compressionCodec"]


@pytest.mark.parametrize("props, message", [
    ({}, "a1.conf:2: a1.sinks.k1: sink.directory: required property is missing"),
    ({"sink.directory": "/tmp", "sink.serializer": "json"}, "sink.serializer: unknown serializer type 'json'"),
    ({"sink.directory": "/tmp", "sink.serializer": "org.example.MySerializer$Builder"},
     "looks like a Java class; Java plugins cannot run in pyflume"),
    ({"sink.directory": "/tmp", "sink.pathManager": "HOURLY"},
     "sink.pathManager: 'HOURLY' is not valid; expected DEFAULT, ROLLTIME"),
    ({"sink.directory": "/tmp", "sink.pathManager": "com.example.MyPathManager$Builder"},
     "sink.pathManager: 'com.example.MyPathManager$Builder' looks like a Java class"),
    ({"sink.directory": "/tmp", "sink.rollInterval": "30s"}, "sink.rollInterval: '30s' is not an integer"),
    ({"sink.directory": "/tmp", "sink.batchSize": "0"}, "sink.batchSize: 0 is too small; the minimum is 1"),
], ids=["no-directory", "unknown-serializer", "java-serializer", "bad-path-manager", "java-path-manager",
        "bad-interval", "batch-zero"])
def test_configuration_errors(props, message):
    problems: list[Problem] = []
    conf, _ = bind(RollingFileSink, props, problems)
    RollingFileSink("k1", conf)
    errors = [str(p) for p in problems if p.severity == "error"]
    assert any(message in e for e in errors), errors


def test_path_manager_names_any_case_and_flume_builders(tmp_path):
    for name, cls in [("rolltime", RollTimePathManager), ("Default", PathManager),
                      ("org.apache.flume.formatter.output.RollTimePathManager$Builder", RollTimePathManager),
                      ("org.apache.flume.formatter.output.DefaultPathManager$Builder", PathManager)]:
        sink = file_sink(tmp_path, start=False, **{"sink.pathManager": name})
        assert type(sink.path_manager) is cls


class Numbered(PathManager):
    """A custom path manager with its own option (used through its dotted path)."""

    spec = Spec(Prop("width", "int", 3, "Digits."), extends=PathManager.spec)

    def __init__(self, conf):
        super().__init__(conf)
        self.width = conf["width"]

    def next_name(self) -> str:
        self.index += 1
        return f"{self.prefix}{self.index:0{self.width}d}{self._suffix()}"


def test_custom_path_manager_by_dotted_path(tmp_path, clock):
    sink = file_sink(tmp_path, **{"sink.pathManager": f"{__name__}.Numbered", "sink.pathManager.width": "4",
                                  "sink.pathManager.prefix": "p"})
    put(sink.channel, "x")
    sink.process()
    assert [p.name for p in Path(sink.directory).iterdir()] == ["p0001"]


# --------------------------------------------------------------------------------------------------------------
# file_roll: rolling


def test_rolls_every_interval_even_without_events(tmp_path, clock):
    sink = file_sink(tmp_path, **{"sink.rollInterval": "30"})
    put(sink.channel, "a")
    sink.process()
    clock.t += 29.9
    put(sink.channel, "b")
    sink.process()
    clock.t += 0.1  # 30 s after start: the next process() rolls
    put(sink.channel, "c")
    sink.process()
    clock.t += 30  # an idle interval: a new, empty file, as Flume
    assert sink.process() is Status.BACKOFF
    clock.t += 30
    put(sink.channel, "d")
    sink.process()
    sink.stop()
    assert contents(sink) == [b"a\nb\n", b"c\n", b"", b"d\n"]
    assert [p.name.split("-")[1] for p in files(sink)] == ["1", "2", "3", "4"]
    attrs = sink.metrics()
    assert attrs["ConnectionCreatedCount"] == "4" and attrs["ConnectionClosedCount"] == "4"


def test_roll_times_are_counted_from_start_at_a_fixed_rate(tmp_path, clock):
    sink = file_sink(tmp_path, **{"sink.rollInterval": "10"})
    sink.process()
    clock.t += 35  # ticks at 10, 20, 30 were missed: one roll, the next at 40
    sink.process()
    clock.t += 4.9  # 39.9
    sink.process()
    assert len(files(sink)) == 2
    clock.t += 0.1  # 40
    sink.process()
    assert len(files(sink)) == 3


def test_roll_interval_zero_writes_one_file(tmp_path, clock):
    sink = file_sink(tmp_path, **{"sink.rollInterval": "0"})
    for body in ("a", "b", "c"):
        put(sink.channel, body)
        sink.process()
        clock.t += 10_000
    assert contents(sink) == [b"a\nb\nc\n"]


def test_rolltime_names(tmp_path, clock, monkeypatch):
    stamps = iter(["20240101120000", "20240101120000", "20240101120001", "20240101120001"])
    monkeypatch.setattr(file_roll.time, "strftime", lambda fmt, t=None: next(stamps))
    sink = file_sink(tmp_path, **{"sink.pathManager": "ROLLTIME", "sink.rollInterval": "1",
                                  "sink.pathManager.extension": "txt"})
    for _ in range(4):
        put(sink.channel, "x")
        sink.process()
        clock.t += 1
    sink.stop()
    assert sorted(p.name for p in Path(sink.directory).iterdir()) == [
        "20240101120000-1.txt", "20240101120000-2.txt", "20240101120001-1.txt", "20240101120001-2.txt"]


def test_rolltime_uses_local_time(tmp_path, clock):
    sink = file_sink(tmp_path, **{"sink.pathManager": "ROLLTIME"})
    before = time.strftime("%Y%m%d%H%M%S")
    sink.process()
    after = time.strftime("%Y%m%d%H%M%S")
    [path] = files(sink)
    stamp, n = path.name.split("-")
    assert before <= stamp <= after and n == "1"


def test_an_existing_file_is_never_overwritten(tmp_path, clock):
    sink = file_sink(tmp_path)
    taken = Path(sink.directory) / f"{sink.path_manager.series_timestamp}-1"
    taken.write_bytes(b"keep me")
    put(sink.channel, "x")
    sink.process()
    assert taken.read_bytes() == b"keep me"
    assert (Path(sink.directory) / f"{sink.path_manager.series_timestamp}-2").read_bytes() == b"x\n"


# --------------------------------------------------------------------------------------------------------------
# file_roll: lifecycle, failures, counters


def test_start_creates_the_directory(tmp_path):
    sink = file_sink(tmp_path, **{"sink.directory": str(tmp_path / "a" / "b")})
    assert (tmp_path / "a" / "b").is_dir()
    sink.stop()


def test_start_fails_clearly_when_the_directory_cannot_be_made(tmp_path):
    (tmp_path / "file").write_text("")
    sink = file_sink(tmp_path, start=False, **{"sink.directory": str(tmp_path / "file" / "sub")})
    with pytest.raises(OSError, match=r"sink k1: cannot create sink.directory '.*file/sub': Not a directory"):
        sink.start()


def test_a_failed_write_rolls_back_and_continues_in_a_new_file(tmp_path, clock, monkeypatch):
    sink = file_sink(tmp_path)
    put(sink.channel, "a")
    sink.process()
    real_write = file_roll._OutputFile.write

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_roll._OutputFile, "write", full)
    put(sink.channel, "b", "c")
    with pytest.raises(EventDeliveryException, match="No space left on device"):
        sink.process()
    assert sink.channel.size() == 2  # rolled back
    monkeypatch.setattr(file_roll._OutputFile, "write", real_write)
    sink.process()
    sink.stop()
    assert contents(sink) == [b"a\n", b"b\nc\n"]
    attrs = sink.metrics()
    assert attrs["EventWriteFail"] == "1"
    assert attrs["EventDrainAttemptCount"] == "5" and attrs["EventDrainSuccessCount"] == "3"


def test_an_open_failure_while_idle_is_logged_not_raised(tmp_path, clock, caplog):
    sink = file_sink(tmp_path)
    os.rmdir(sink.directory)
    Path(sink.directory).write_text("")  # the directory became a file
    with caplog.at_level(logging.ERROR, logger="pyflume.sink.k1"):
        assert sink.process() is Status.BACKOFF
    assert "Failed to open file" in caplog.text
    assert sink.metrics()["ConnectionFailedCount"] == "1"


def test_counters_are_flumes_file_roll_set(tmp_path, clock):
    sink = file_sink(tmp_path, **{"sink.batchSize": "2"})
    put(sink.channel, "a", "b", "c")
    sink.process()
    sink.process()
    sink.process()
    sink.stop()
    attrs = sink.metrics()
    assert attrs["Type"] == "SINK"
    assert attrs["ConnectionCreatedCount"] == "1" and attrs["ConnectionClosedCount"] == "1"
    assert attrs["EventDrainAttemptCount"] == "3" and attrs["EventDrainSuccessCount"] == "3"
    # Flume's RollingFileSink never updates the batch counters.
    assert attrs["BatchCompleteCount"] == attrs["BatchUnderflowCount"] == attrs["BatchEmptyCount"] == "0"


def test_stop_then_start_continues_the_numbering(tmp_path, clock):
    sink = file_sink(tmp_path)
    put(sink.channel, "a")
    sink.process()
    sink.stop()
    sink.start()
    put(sink.channel, "b")
    sink.process()
    sink.stop()
    assert contents(sink) == [b"a\n", b"b\n"]


# --------------------------------------------------------------------------------------------------------------
# logger


def logger_sink(channel: MemoryChannel, **props: str) -> LoggerSink:
    conf, problems = bind(LoggerSink, props)
    assert [p for p in problems if p.severity == "error"] == []
    sink = LoggerSink("k1", conf)
    sink.channel = channel
    sink.start()
    return sink


def test_logger_logs_each_event_in_flumes_format(caplog):
    ch = make_channel()
    sink = logger_sink(ch)
    put(ch, "hello", host="web1")
    put(ch, b"")
    with caplog.at_level(logging.INFO, logger="pyflume.sink.k1"):
        assert sink.process() is Status.READY
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("pyflume.sink.k1", "INFO", "Event: { headers:{host=web1} body: 68 65 6C 6C 6F" + " " * 34 + "hello }"),
        ("pyflume.sink.k1", "INFO", "Event: { headers:{} body: }"),
    ]
    assert ch.size() == 0
    assert sink.process() is Status.BACKOFF
    assert sink.metrics() is None


def test_logger_max_bytes(caplog):
    ch = make_channel()
    sink = logger_sink(ch, maxBytesToLog="3")
    put(ch, "abcdef")
    with caplog.at_level(logging.INFO, logger="pyflume.sink.k1"):
        sink.process()
    assert caplog.records[0].getMessage() == "Event: { headers:{} body: 61 62 63" + " " * 40 + "abc }"


def test_logger_takes_no_more_than_the_transaction_capacity():
    ch = make_channel(transactionCapacity="10")
    sink = logger_sink(ch)
    put(ch, *[str(i) for i in range(10)])
    put(ch, *[str(i) for i in range(10)])
    sink.process()
    assert ch.size() == 10


def test_logger_consumes_events_even_when_info_is_off(caplog):
    ch = make_channel()
    sink = logger_sink(ch)
    put(ch, "a", "b")
    with caplog.at_level(logging.WARNING, logger="pyflume.sink.k1"):
        assert sink.process() is Status.READY
    assert ch.size() == 0 and caplog.records == []


def test_logger_rejects_a_negative_max():
    problems: list[Problem] = []
    bind(LoggerSink, {"maxBytesToLog": "-1"}, problems)
    assert [str(p) for p in problems] == ["a1.conf:3: a1.sinks.k1: maxBytesToLog: -1 is too small; the minimum is 0"]


def test_a_flume_file_with_file_roll_batch_size_above_the_transaction_capacity_is_valid(tmp_path):
    # Flume ignores file_roll's plain batchSize, so this file runs there with sink.batchSize = 100.
    from agent import config

    f = tmp_path / "a1.conf"
    f.write_text(f"""\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {tmp_path}
a1.sinks.k1.batchSize = 1000
""")
    topo, problems = config.check([str(f)], "a1")
    assert topo is not None, [str(p) for p in problems]
    assert topo.sinks["k1"].batch_size() == 100
