"""Flume's Thrift wire format (agent/thrift_rpc.py) checked against thriftpy2, an independent Thrift
implementation, in both protocols and both directions; and malformed input refused with a clear error."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.thrift import TApplicationException, TMessageType
from thriftpy2.transport import TMemoryBuffer

from agent import thrift_rpc as wire
from agent.core import Batch, Event

IDL = Path(__file__).parents[2] / "peers" / "thrift"
flume = thriftpy2.load(str(IDL / "flume.thrift"), module_name="flume_thrift")
scribe = thriftpy2.load(str(IDL / "scribe.thrift"), module_name="scribe_thrift")
FACTORIES = {"binary": TBinaryProtocolFactory(), "compact": TCompactProtocolFactory()}
PROTOCOLS = pytest.mark.parametrize("protocol", ["binary", "compact"])

EVENTS = [
    Event(b"", {}),
    Event("ünïcödé body €".encode(), {"ключ": "значение", "emoji": "🚀", "": ""}),
    Event(b"\x00\xff" * 200, {f"h{i}": "v" * i for i in range(20)}),  # lengths past one varint byte
    Event(b"x" * 70_000, {"big": "y" * 300}),
]


def _theirs(protocol: str, name: str, mtype: int, seqid: int, args: object) -> bytes:
    buf = TMemoryBuffer()
    proto = FACTORIES[protocol].get_protocol(buf)
    proto.write_message_begin(name, mtype, seqid)
    args.write(proto)  # type: ignore[attr-defined]
    proto.write_message_end()
    return buf.getvalue()


def _read(protocol: str, frame: bytes, cls: type) -> tuple[tuple, object]:
    proto = FACTORIES[protocol].get_protocol(TMemoryBuffer(frame))
    head = proto.read_message_begin()
    obj = cls()
    obj.read(proto)
    return head, obj


@PROTOCOLS
def test_their_append_batch_decodes_to_our_events(protocol: str) -> None:
    args = flume.ThriftSourceProtocol.appendBatch_args(
        events=[flume.ThriftFlumeEvent(headers=e.headers, body=e.body) for e in EVENTS * 20])
    call = wire.decode_call(_theirs(protocol, "appendBatch", TMessageType.CALL, 42, args), protocol,
                            wire.FLUME_METHODS)
    assert (call.name, call.seqid, call.oneway) == ("appendBatch", 42, False)
    assert call.events == EVENTS * 20


@PROTOCOLS
def test_their_append_decodes_to_one_event(protocol: str) -> None:
    e = EVENTS[1]
    args = flume.ThriftSourceProtocol.append_args(event=flume.ThriftFlumeEvent(headers=e.headers, body=e.body))
    call = wire.decode_call(_theirs(protocol, "append", TMessageType.CALL, 7, args), protocol, wire.FLUME_METHODS)
    assert call.events == [e]


@PROTOCOLS
def test_our_calls_and_replies_decode_with_theirs(protocol: str) -> None:
    frame = wire.encode_call(protocol, "appendBatch", 9, wire.encode_events(protocol, EVENTS))
    head, args = _read(protocol, frame, flume.ThriftSourceProtocol.appendBatch_args)
    assert head == ("appendBatch", TMessageType.CALL, 9)
    assert [Event(e.body, e.headers) for e in args.events] == EVENTS  # type: ignore[attr-defined]
    for status in range(4):
        head, result = _read(protocol, wire.encode_reply(protocol, "appendBatch", 9, status),
                             flume.ThriftSourceProtocol.appendBatch_result)
        assert head == ("appendBatch", TMessageType.REPLY, 9) and result.success == status  # type: ignore[attr-defined]
    head, exc = _read(protocol, wire.encode_exception(protocol, "nope", 3, "Invalid method name: 'nope'"),
                      TApplicationException)
    assert head == ("nope", TMessageType.EXCEPTION, 3)
    assert (exc.message, exc.type) == ("Invalid method name: 'nope'", TApplicationException.UNKNOWN_METHOD)


@PROTOCOLS
def test_their_replies_decode(protocol: str) -> None:
    reply = _theirs(protocol, "appendBatch", TMessageType.REPLY, 5,
                    flume.ThriftSourceProtocol.appendBatch_result(success=1))
    assert wire.decode_status(reply, protocol, "appendBatch", 5) == 1
    with pytest.raises(wire.ThriftError, match="waiting for 'appendBatch' #6"):
        wire.decode_status(reply, protocol, "appendBatch", 6)
    exc = _theirs(protocol, "appendBatch", TMessageType.EXCEPTION, 5,
                  TApplicationException(TApplicationException.INTERNAL_ERROR, "boom"))
    with pytest.raises(wire.ThriftError, match="exception: boom"):
        wire.decode_status(exc, protocol, "appendBatch", 5)


@PROTOCOLS
def test_scribe_log_both_ways(protocol: str) -> None:
    args = scribe.Scribe.Log_args(messages=[scribe.LogEntry(category="cat é", message="line ü"),
                                            scribe.LogEntry(message="no category")])
    call = wire.decode_call(_theirs(protocol, "Log", TMessageType.CALL, 1, args), protocol, wire.SCRIBE_METHODS)
    assert call.events == [Event("line ü".encode(), {"category": "cat é"}), Event(b"no category", {})]
    frame = wire.encode_call(protocol, "Log", 2, wire.encode_log(protocol, [("c", b"m1"), (None, b"m2")]))
    _, got = _read(protocol, frame, scribe.Scribe.Log_args)
    assert [(m.category, m.message) for m in got.messages] == [("c", "m1"), (None, "m2")]  # type: ignore[attr-defined]


def test_old_style_binary_messages_are_read_and_written() -> None:
    """Scribe clients may send TBinaryProtocol messages without the version word; Flume's scribe server answers
    in that style too."""
    frame = wire.encode_call("binary", "Log", 4, wire.encode_log("binary", [("c", b"m")]), strict=False)
    assert frame[:4] == struct.pack(">i", 3)  # the name's length first
    assert wire.decode_call(frame, "binary", wire.SCRIBE_METHODS).events == [Event(b"m", {"category": "c"})]
    reply = wire.encode_reply("binary", "Log", 4, 0, strict=False)
    assert wire.decode_status(reply, "binary", "Log", 4) == 0


@PROTOCOLS
def test_unknown_fields_are_skipped(protocol: str, tmp_path: Path) -> None:
    """A newer sender's extra fields (here a struct with every Thrift type) do not break decoding."""
    (tmp_path / "extended.thrift").write_text(
        "struct Inner { 1: bool b, 2: byte y, 3: i16 s, 4: i64 l, 5: double d, 6: set<i32> st, 7: list<bool> lb }\n"
        "struct ThriftFlumeEvent { 1: required map<string, string> headers, 2: required binary body, "
        "3: Inner extra, 4: bool flag, 20: map<string, list<i32>> more }\n"
        "service ThriftSourceProtocol { i32 appendBatch(1: list<ThriftFlumeEvent> events, 2: i32 extra) }\n")
    ext = thriftpy2.load(str(tmp_path / "extended.thrift"), module_name=f"ext_{protocol}_thrift")
    inner = ext.Inner(b=True, y=-3, s=-300, l=1 << 40, d=1.5, st={1, 2}, lb=[True, False])
    events = [ext.ThriftFlumeEvent(headers={"k": "v"}, body=b"b%d" % i, extra=inner, flag=False,
                                   more={"x": [1, 2, 3]}) for i in range(3)]
    frame = _theirs(protocol, "appendBatch", TMessageType.CALL, 1,
                    ext.ThriftSourceProtocol.appendBatch_args(events=events, extra=5))
    assert wire.decode_call(frame, protocol, wire.FLUME_METHODS).events == [
        Event(b"b%d" % i, {"k": "v"}) for i in range(3)]


BAD = [
    ("empty", b"", "a message of 0 bytes"),
    ("truncated", None, "truncated"),
    ("trailing bytes", "trailing", "bytes after the end"),
    ("a reply instead of a call", "reply", "where a call was expected"),
    ("huge list", "hugelist", "cannot fit"),
]


@pytest.mark.parametrize("protocol", ["binary", "compact"])
@pytest.mark.parametrize("case,frame,error", BAD, ids=[b[0] for b in BAD])
def test_malformed_calls_are_refused(protocol: str, case: str, frame: object, error: str) -> None:
    good = wire.encode_call(protocol, "appendBatch", 1, wire.encode_events(protocol, EVENTS))
    if frame is None:
        frame = good[:-40]
    elif frame == "trailing":
        frame = good + b"\x00\x00"
    elif frame == "reply":
        frame = wire.encode_reply(protocol, "appendBatch", 1, 0)
    elif frame == "hugelist":
        head = wire.encode_call(protocol, "appendBatch", 1, b"")[:-1]
        frame = head + (struct.pack(">Bi", 12, 0x7FFFFFFF) if protocol == "binary" else b"\xfc\xff\xff\xff\xff\x07")
    with pytest.raises(wire.FrameError, match=error):
        wire.decode_call(frame, protocol, wire.FLUME_METHODS)  # type: ignore[arg-type]


def test_a_protocol_mismatch_names_the_fix() -> None:
    with pytest.raises(wire.FrameError, match="set protocol = binary on one side"):
        wire.decode_call(wire.encode_call("binary", "append", 1, b"\x00", single=True), "compact", wire.FLUME_METHODS)
    with pytest.raises(wire.FrameError, match="set protocol = compact on one side"):
        wire.decode_call(wire.encode_call("compact", "append", 1, b"\x00", single=True), "binary", wire.FLUME_METHODS)


def test_an_unknown_method_decodes_without_events() -> None:
    call = wire.decode_call(wire.encode_call("compact", "shutdown", 3, b"", single=False)[:-2] + b"\x00",
                            "compact", wire.FLUME_METHODS)
    assert (call.name, call.events) == ("shutdown", None)


# --------------------------------------------------------------------------------------------------------------
# appendBatch whose events share their headers: one Batch, no Event per event; anything else exactly as before

SHARED = {"host": "web-01", "ключ": "🚀"}
BODY_SIZES = [0, 1, 100, 127, 128, 300, 16383, 16384, 70_000]  # one, two and three varint bytes in compact


def _length(protocol: str, n: int) -> bytes:
    return struct.pack(">I", n) if protocol == "binary" else wire._varint(n)


def _event(protocol: str, headers: dict[str, str] | None, body: bytes | None, *, body_first: bool = False,
           count: int | None = None, body_length: int | None = None) -> bytes:
    """One ThriftFlumeEvent written by hand: ``None`` leaves a field out, ``body_first`` writes field 2 before
    field 1; ``count`` and ``body_length`` override the map's size and the body's length."""
    fields = []
    if headers is not None:
        m = len(headers) if count is None else count
        pairs = b"".join(_length(protocol, len(x)) + x for kv in headers.items() for x in map(str.encode, kv))
        if protocol == "binary":
            fields.append(b"\x0d\x00\x01" + struct.pack(">BBI", 11, 11, m) + pairs)
        else:  # field 1 after field 2 needs the long field header (type, then the id as a zigzag i16)
            kv = b"\x88" if m else b""
            fields.append((b"\x0b\x02" if body_first else b"\x1b") + wire._varint(m) + kv + pairs)
    if body is not None:
        n = len(body) if body_length is None else body_length
        if protocol == "binary":
            field = b"\x0b\x00\x02"
        else:
            field = b"\x18" if headers is not None and not body_first else b"\x28"
        body_field = field + _length(protocol, n) + body
        fields.insert(0 if body_first else len(fields), body_field)
    return b"".join(fields) + b"\x00"


def _batch_frame(protocol: str, events: list[bytes]) -> bytes:
    n = len(events)
    if protocol == "binary":
        head = struct.pack(">BI", 12, n)
    else:
        head = bytes(((n << 4) | 12,)) if n < 15 else b"\xfc" + wire._varint(n)
    return wire.encode_call(protocol, "appendBatch", 1, head + b"".join(events))


def _decode(frame: bytes, protocol: str, general: bool = False) -> object:
    """The call's events, or the FrameError's text; ``general``: without the uniform fast path."""
    with pytest.MonkeyPatch.context() as mp:
        if general:
            mp.setattr(wire._BinaryReader, "uniform", lambda self, n: None)
            mp.setattr(wire._CompactReader, "uniform", lambda self, n: None)
        try:
            return wire.decode_call(frame, protocol, wire.FLUME_METHODS).events
        except wire.FrameError as exc:
            return f"FrameError: {exc}"


@PROTOCOLS
@pytest.mark.parametrize("headers", [{}, SHARED], ids=["no headers", "shared headers"])
@pytest.mark.parametrize("writer", ["ours", "theirs"])
def test_an_append_batch_sharing_its_headers_decodes_to_one_batch(protocol: str, headers: dict[str, str],
                                                                  writer: str) -> None:
    bodies = [bytes([65 + i % 26]) * size for i, size in enumerate(BODY_SIZES * 3)]
    if writer == "ours":
        frame = wire.encode_call(protocol, "appendBatch", 1, wire.encode_events(protocol, Batch(bodies, headers)))
    else:
        args = flume.ThriftSourceProtocol.appendBatch_args(
            events=[flume.ThriftFlumeEvent(headers=dict(headers), body=b) for b in bodies])
        frame = _theirs(protocol, "appendBatch", TMessageType.CALL, 1, args)
    events = wire.decode_call(frame, protocol, wire.FLUME_METHODS).events
    assert type(events) is Batch and events.raw
    assert events.bodies == bodies and events.shared == (headers or None)
    assert events == _decode(frame, protocol, general=True) == [Event(b, dict(headers)) for b in bodies]


@PROTOCOLS
def test_events_without_a_headers_field_decode_to_one_batch(protocol: str) -> None:
    frame = _batch_frame(protocol, [_event(protocol, None, b"b%d" % i) for i in range(20)])
    events = _decode(frame, protocol)
    assert type(events) is Batch and events.bodies == [b"b%d" % i for i in range(20)] and events.shared is None


@PROTOCOLS
def test_an_empty_append_batch(protocol: str) -> None:
    for frame in (_batch_frame(protocol, []), _theirs(protocol, "appendBatch", TMessageType.CALL, 1,
                                                      flume.ThriftSourceProtocol.appendBatch_args(events=[]))):
        events = _decode(frame, protocol)
        assert not isinstance(events, str) and len(events) == 0 and list(events) == []


@PROTOCOLS
@pytest.mark.parametrize("where", [0, 3, 6], ids=["first", "middle", "last"])
@pytest.mark.parametrize("other", [{}, {"host": "web-02", "ключ": "🚀"}, {**SHARED, "x": "y"}],
                         ids=["none", "another value", "one more"])
def test_one_event_with_other_headers_decodes_as_before(protocol: str, where: int, other: dict[str, str]) -> None:
    expected = [Event(b"body %d" % i, dict(other if i == where else SHARED)) for i in range(7)]
    frame = wire.encode_call(protocol, "appendBatch", 1, wire.encode_events(protocol, expected))
    events = _decode(frame, protocol)
    assert type(events) is list
    assert events == _decode(frame, protocol, general=True) == expected


LAYOUTS = [  # name, the events as (headers or None for no field, body or None for no field, body first)
    ("body before headers everywhere", [(SHARED, b"b%d" % i, True) for i in range(5)]),
    ("body before headers in the middle", [(SHARED, b"b%d" % i, i == 2) for i in range(5)]),
    ("body before headers first", [(SHARED, b"b%d" % i, i == 0) for i in range(5)]),
    ("no headers field in one event", [(None if i == 3 else SHARED, b"b%d" % i, False) for i in range(5)]),
    ("no headers field in the first event", [(None if i == 0 else SHARED, b"b%d" % i, False) for i in range(5)]),
    ("an empty map among no headers fields", [({} if i == 1 else None, b"b%d" % i, False) for i in range(5)]),
    ("no body field in one event", [(SHARED, None if i == 2 else b"b%d" % i, False) for i in range(5)]),
    ("no body field in the last event", [(SHARED, None if i == 4 else b"b%d" % i, False) for i in range(5)]),
    ("no fields at all", [(None, None, False) for _ in range(3)]),
]


@PROTOCOLS
@pytest.mark.parametrize("events", [x[1] for x in LAYOUTS], ids=[x[0] for x in LAYOUTS])
def test_other_field_layouts_decode_as_before(protocol: str, events: list) -> None:
    frame = _batch_frame(protocol, [_event(protocol, h, b, body_first=first) for h, b, first in events])
    expected = [Event(b or b"", dict(h or {})) for h, b, _ in events]
    assert _decode(frame, protocol) == _decode(frame, protocol, general=True) == expected


def _malformed(protocol: str) -> list[tuple[str, bytes]]:
    def frame(where: int = -1, **bad: int) -> bytes:
        """Four events sharing their headers; the one at ``where`` written with ``bad``."""
        return _batch_frame(protocol, [_event(protocol, SHARED, b"x" * 200, **(bad if i == where else {}))
                                       for i in range(4)])

    huge = 0xFFFFFFFF if protocol == "binary" else 1 << 40
    good = frame()
    cases = [(f"cut at {cut}", good[:cut]) for cut in range(len(good))]
    cases += [(f"body length past the end in event {i}", frame(i, body_length=huge)) for i in range(4)]
    cases += [(f"body length one too long in event {i}", frame(i, body_length=201)) for i in range(4)]
    cases += [(f"a map that cannot fit in event {i}", frame(i, count=huge)) for i in (0, 2)]
    cases += [(f"a map one entry too long in event {i}", frame(i, count=3)) for i in (0, 3)]
    if protocol == "binary":
        cases.append(("headers not strings", good.replace(b"\x0d\x00\x01\x0b\x0b", b"\x0d\x00\x01\x0b\x08", 1)))
    else:
        cases.append(("headers not strings", good.replace(b"\x1b\x02\x88", b"\x1b\x02\x85", 1)))
    return cases


@PROTOCOLS
def test_malformed_batches_fail_with_the_same_error_as_before(protocol: str) -> None:
    for case, frame in _malformed(protocol):
        got = _decode(frame, protocol)
        assert isinstance(got, str) and got == _decode(frame, protocol, general=True), case


@PROTOCOLS
def test_random_batches_and_damage_decode_as_the_general_way(protocol: str) -> None:
    rng = random.Random(protocol)
    headers = [{}, {"a": "1"}, SHARED, {"ts": "1700000000000"}]
    for _ in range(300):
        shared = rng.choice(headers)
        events = [Event(rng.randbytes(rng.choice([0, 5, 127, 128, 20_000])),
                        dict(shared if rng.random() < 0.9 else rng.choice(headers)))
                  for _ in range(rng.randrange(0, 20))]
        frame = wire.encode_call(protocol, "appendBatch", 1, wire.encode_events(protocol, events))
        assert _decode(frame, protocol) == events
        damaged = bytearray(frame)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        damaged = bytes(damaged[:rng.randrange(len(damaged) + 1)] if rng.random() < 0.3 else damaged)
        assert _decode(damaged, protocol) == _decode(damaged, protocol, general=True)
