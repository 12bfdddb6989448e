"""RFC 6587 octet counting on the syslog TCP sources: framing decided by the first byte, frames split across reads,
long messages cut like long lines, and a bad length reported with what was seen."""

from __future__ import annotations

import pytest

from sources.syslog import STATUS_HEADER, SyslogUtilsDecoder
from sources.syslog.framing import FramingError, OctetCountedFrames, starts_octet_counted


def frames(chunks: list[bytes], max_size: int = 100) -> tuple[list[tuple[bytes, bool, bool]], str | None]:
    f = OctetCountedFrames(max_size)
    out = []
    for chunk in chunks:
        out += f.feed(chunk)
    pieces, problem = f.finish()
    return out + pieces, problem


@pytest.mark.parametrize("first, expected", [
    (b"12 <13>hello", True),
    (b"\n\r\n9 <1>x", True),
    (b"<13>hello\n", False),
    (b"0 <13>x", False),  # MSG-LEN never starts with 0: not octet counting, the line is Invalid as in Flume
    (b"hello", False),
    (b"\n\n", None),
    (b"", None),
])
def test_framing_is_decided_by_the_first_byte(first, expected):
    assert starts_octet_counted(first) is expected


@pytest.mark.parametrize("name, chunks, expected", [
    ("two frames in one read", [b"5 <1>ab6 <2>cde"], [(b"<1>ab", True, False), (b"<2>cde", True, False)]),
    ("split across reads", [b"1", b"0 <13>hell", b"o!"], [(b"<13>hello!", True, False)]),
    ("space in the next read", [b"3", b" <1>"], [(b"<1>", True, False)]),
    ("newlines inside the message kept", [b"8 <1>a\nb\nc"], [(b"<1>a\nb\nc", True, False)]),
    ("one trailing LF dropped", [b"6 <1>ab\n"], [(b"<1>ab", True, False)]),
    ("trailing CRLF dropped", [b"7 <1>ab\r\n"], [(b"<1>ab", True, False)]),
    ("newlines between frames skipped", [b"4 <1>a\n\r\n4 <1>b\n"], [(b"<1>a", True, False), (b"<1>b", True, False)]),
    ("long message cut at max_size", [b"25 <1>" + b"x" * 22], [(b"<1>" + b"x" * 7, True, True),
                                                              (b"x" * 10, False, True), (b"x" * 5, False, False)]),
])
def test_octet_counted_frames(name, chunks, expected):
    assert frames(chunks, max_size=10) == (expected, None), name


@pytest.mark.parametrize("name, data, error", [
    ("letters", b"5 <1>abxy <1>", "bad octet-counting length b'xy' at byte 13"),
    ("leading zero", b"05 <1>ab", "bad octet-counting length b'05' at byte 6"),
    ("no digits before the space", b" 5 <1>ab", "bad octet-counting length b'' at byte 6"),
    ("too many digits", b"123456789 <1>", "bad octet-counting length b'123456789' at byte 6"),
    ("newline inside the length", b"1\n2 <1>", "bad octet-counting length b'1\\n2' at byte 6"),
])
def test_a_bad_length_is_an_error_after_the_good_frames(name, data, error):
    f = OctetCountedFrames(100)
    with pytest.raises(FramingError) as e:
        f.feed(b"4 <1>a" + data)
    assert str(e.value) == error + " (expected 1-8 digits, the first not 0, then a space)", name
    assert e.value.pieces[0] == (b"<1>a", True, False)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_any_split_of_the_stream_gives_the_same_messages(size):
    messages = [b"<13>short", b"<14>" + b"y" * 30 + b"\n", b"<15>a\nb", b"<16>" + b"z" * 95]
    stream = b"\n".join(b"%d %s" % (len(m), m) for m in messages)  # with newlines between frames too
    whole = frames([stream], max_size=40)
    assert frames([stream[i:i + size] for i in range(0, len(stream), size)], max_size=40) == whole
    assert whole == ([(b"<13>short", True, False), (b"<14>" + b"y" * 30, True, False), (b"<15>a\nb", True, False),
                      (b"<16>" + b"z" * 36, True, True), (b"z" * 40, False, True), (b"z" * 19, False, False)], None)


def test_a_torn_last_message_is_kept_and_described():
    assert frames([b"4 <1>a20 <13>torn"]) == (
        [(b"<1>a", True, False), (b"<13>torn", True, True)],
        "the stream ended 12 bytes before the end of an octet-counted message")
    assert frames([b"4 <1>a12"]) == ([(b"<1>a", True, False)],
                                     "the stream ended inside an octet-counting length (b'12')")


def test_syslogutils_parses_octet_counted_messages_with_newlines():
    decoder = SyslogUtilsDecoder(event_size=40)
    events = decoder.framed([
        (b"<13>1 2024-05-01T10:00:00Z host app - - - line one\nline two", True, False),
        (b"<13>1 2024-05-01T10:00:00Z h cut", True, True),
        (b" here", False, False),
        (b"", True, False),
        (b"no priority", True, False),
    ])
    assert [(e.headers.get("host"), e.headers.get(STATUS_HEADER), e.body) for e in events] == [
        ("host", None, b"app - - - line one\nline two"),
        ("h", "Incomplete", b"cut"),
        (None, "Invalid", b" here"),
        (None, "Invalid", b"no priority"),
    ]
