"""Flume's Thrift wire format (agent/thrift_rpc.py) checked against thriftpy2, an independent Thrift
implementation, in both protocols and both directions; and malformed input refused with a clear error."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.thrift import TApplicationException, TMessageType
from thriftpy2.transport import TMemoryBuffer

from agent import thrift_rpc as wire
from agent.core import Event

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
