"""Flume's two syslog parsers, case by case: SyslogUtils (syslogtcp, syslogudp) and SyslogParser
(multiport_syslogtcp). Expected values follow Flume 1.11's code and its TestSyslogUtils / TestSyslogParser."""

from __future__ import annotations

import calendar
import os
import time
from collections.abc import Iterator

import pytest

from sources.syslog import (
    KEEP_ALL,
    STATUS_HEADER,
    SyslogParser,
    SyslogUtilsDecoder,
    choose_fields_to_keep,
    split_lines,
)

# The local zone matters (Flume reads zone-less times in the JVM's zone): +05:30, no DST, no tzdata needed.
ZONE = "IST-5:30"
OFFSET_MS = 5 * 3600_000 + 30 * 60_000


@pytest.fixture(autouse=True)
def local_zone() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = ZONE
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ms: int = 0) -> int:
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1000 + ms


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ms: int = 0) -> int:
    return utc(y, mo, d, h, mi, s, ms) - OFFSET_MS


NOW = utc(2026, 11, 25, 12) / 1000  # the clock the parsers see


def decode_one(line: bytes, keep: str = "none", size: int = 2500, now: float = NOW):
    events = SyslogUtilsDecoder(size, choose_fields_to_keep(keep), now=lambda: now).feed(line + b"\n")
    assert len(events) == 1, events
    return events[0].headers, events[0].body


HOST = "ubuntu-11.cloudera.com"

# (name, message, expected headers without Facility/Severity, expected body)
UTILS_CASES = [
    ("5424 zone +08:00, no version", f"<10>2012-04-13T11:11:11+08:00 {HOST} some msg",
     {"priority": "10", "timestamp": str(utc(2012, 4, 13, 3, 11, 11)), "host": HOST}, "some msg"),
    ("5424 version, no zone: local time", f"<10>1 2012-04-13T11:11:11 {HOST} some msg",
     {"priority": "10", "version": "1", "timestamp": str(local(2012, 4, 13, 11, 11, 11)), "host": HOST},
     "some msg"),
    ("5424 Z is UTC", f"<10>1 2012-04-13T11:11:11Z {HOST} some msg",
     {"priority": "10", "version": "1", "timestamp": str(utc(2012, 4, 13, 11, 11, 11)), "host": HOST}, "some msg"),
    ("5424 nil timestamp", f"<10>1 - {HOST} some msg",
     {"priority": "10", "version": "1", "host": HOST}, "some msg"),
    ("5424 nil host", "<10>1 2012-04-13T11:11:11Z - some msg",
     {"priority": "10", "version": "1", "timestamp": str(utc(2012, 4, 13, 11, 11, 11))}, "some msg"),
    ("5424 milliseconds: local time", f"<10>1 2012-04-13T11:11:11.999 {HOST} some msg",
     {"priority": "10", "version": "1", "timestamp": str(local(2012, 4, 13, 11, 11, 11, 999)), "host": HOST},
     "some msg"),
    ("5424 microseconds cut to ms, zone ignored (Flume's first format wins)",
     f"<10>2014-10-03T17:20:01.123456-07:00 {HOST} some msg",
     {"priority": "10", "timestamp": str(local(2014, 10, 3, 17, 20, 1, 123)), "host": HOST}, "some msg"),
    ("5424 one fraction digit is that many ms", f"<10>2014-10-03T17:20:01.5Z {HOST} m",
     {"priority": "10", "timestamp": str(local(2014, 10, 3, 17, 20, 1, 5)), "host": HOST}, "m"),
    ("3164 this year, local time", f"<13>Feb  5 17:32:18 {HOST} Use the BFG!",
     {"priority": "13", "timestamp": str(local(2026, 2, 5, 17, 32, 18)), "host": HOST}, "Use the BFG!"),
    ("3164 body with hyphens (not 5424)",
     f"<10>Nov 24 11:11:11 {HOST} - hyphen_null_breaks_5424_pattern [07/Jun/2012:14:46:44 -0600]",
     {"priority": "10", "timestamp": str(local(2026, 11, 24, 11, 11, 11)), "host": HOST},
     "- hyphen_null_breaks_5424_pattern [07/Jun/2012:14:46:44 -0600]"),
    ("3164 with a version digit", f"<13>1 Oct 11 22:14:15 {HOST} msg",
     {"priority": "13", "version": "1", "timestamp": str(local(2026, 10, 11, 22, 14, 15)), "host": HOST}, "msg"),
    ("3164 unknown month: no timestamp", f"<13>Abc 11 22:14:15 {HOST} msg",
     {"priority": "13", "host": HOST}, "msg"),
    ("3164 lenient overflow rolls over", f"<13>Feb 30 25:00:00 {HOST} msg",
     {"priority": "13", "timestamp": str(local(2026, 3, 3, 1, 0, 0)), "host": HOST}, "msg"),
    ("no known layout: raw line, priority only in Facility/Severity", "<13>hello world", {}, "<13>hello world"),
    ("carriage return: Java's '.' stops there, so no layout matches",
     f"<10>1 2012-04-13T11:11:11Z {HOST} msg\r", {}, f"<10>1 2012-04-13T11:11:11Z {HOST} msg\r"),
    ("empty message: the raw line is the body", f"<10>1 2012-04-13T11:11:11Z {HOST} ",
     {"priority": "10", "version": "1", "timestamp": str(utc(2012, 4, 13, 11, 11, 11)), "host": HOST},
     f"<10>1 2012-04-13T11:11:11Z {HOST} "),
    ("non-ASCII body", f"<10>1 2012-04-13T11:11:11Z {HOST} héllo ✓",
     {"priority": "10", "version": "1", "timestamp": str(utc(2012, 4, 13, 11, 11, 11)), "host": HOST},
     "héllo ✓"),
]


@pytest.mark.parametrize("name,message,headers,body", UTILS_CASES, ids=[c[0] for c in UTILS_CASES])
def test_syslog_utils_headers_and_body(name, message, headers, body):
    got_headers, got_body = decode_one(message.encode())
    pri = int(message[1:message.index(">")])
    assert got_headers == {"Facility": str(pri // 8), "Severity": str(pri % 8), **headers}
    assert got_body == body.encode()


INVALID_CASES = [
    ("no priority", b"not syslog at all"),
    ("empty priority", b"<>hello"),
    ("four-digit priority", b"<1234>hello"),
    ("letters in priority", b"<1a>hello"),
]


@pytest.mark.parametrize("name,line", INVALID_CASES, ids=[c[0] for c in INVALID_CASES])
def test_syslog_utils_invalid_lines_are_kept_with_the_status_header(name, line):
    headers, body = decode_one(line)
    assert headers == {"Facility": "0", "Severity": "0", STATUS_HEADER: "Invalid"}
    assert body == line


KEEP_CASES = [
    ("none", "none", "msg"),
    ("false means none", "false", "msg"),
    ("all keeps the raw line", "all", "<10>1 2012-04-13T11:11:11Z h1 msg"),
    ("true means all", "true", "<10>1 2012-04-13T11:11:11Z h1 msg"),
    ("priority", "priority", "<10>msg"),
    ("version", "version", "1 msg"),
    ("timestamp and hostname", "timestamp hostname", "2012-04-13T11:11:11Z h1 msg"),
    ("every field by name", "priority,version,timestamp,hostname", "<10>1 2012-04-13T11:11:11Z h1 msg"),
]


@pytest.mark.parametrize("name,keep,body", KEEP_CASES, ids=[c[0] for c in KEEP_CASES])
def test_keep_fields_put_fields_back_in_front_of_the_message(name, keep, body):
    _, got = decode_one(b"<10>1 2012-04-13T11:11:11Z h1 msg", keep=keep)
    assert got == body.encode()


def test_keep_fields_print_a_missing_field_as_null_like_java():
    _, body = decode_one(b"<10>1 - - msg", keep="timestamp hostname")
    assert body == b"null null msg"


def test_choose_fields_to_keep():
    assert choose_fields_to_keep("none") is None
    assert choose_fields_to_keep(" FALSE ") is None
    assert choose_fields_to_keep("All") is KEEP_ALL
    assert choose_fields_to_keep("hostname,priority") == frozenset({"hostname", "priority"})
    assert choose_fields_to_keep("bogus") == frozenset()


def test_event_size_cuts_the_message_and_the_rest_is_the_next_event():
    events = SyslogUtilsDecoder(10).feed(b"<1>abcdefghijkl\n<1>short\n")
    assert [(e.headers.get(STATUS_HEADER), e.body) for e in events] == [
        ("Incomplete", b"<1>abcdefg"),  # 10 bytes, priority included
        ("Invalid", b"hijkl"),  # does not start with '<'
        (None, b"<1>short"),
    ]


def test_a_message_of_exactly_event_size_is_flagged_incomplete_as_in_flume():
    events = SyslogUtilsDecoder(10).feed(b"<1>abcdefg\n<1>next\n")
    assert [(e.headers.get(STATUS_HEADER), e.body) for e in events] == [("Incomplete", b"<1>abcdefg"),
                                                                       (None, b"<1>next")]


def test_messages_split_across_reads_in_any_place_decode_the_same():
    stream = (b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed\n\n"
              b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!\nno priority here\n<1234>bad\n<9>" + b"x" * 60 + b"\n")
    whole = SyslogUtilsDecoder(50, now=lambda: NOW).feed(stream)
    assert len(whole) == 7
    for cut in range(1, len(stream)):
        d = SyslogUtilsDecoder(50, now=lambda: NOW)
        assert d.feed(stream[:cut]) + d.feed(stream[cut:]) == whole, cut
    d = SyslogUtilsDecoder(50, now=lambda: NOW)
    assert [e for i in range(len(stream)) for e in d.feed(stream[i:i + 1])] == whole


def test_the_last_message_without_newline_is_returned_by_finish():
    d = SyslogUtilsDecoder()
    assert d.feed(b"<13>one\n<13>tw") == [SyslogUtilsDecoder().feed(b"<13>one\n")[0]]
    last = d.finish()
    assert last is not None and last.body == b"<13>tw"
    assert d.finish() is None


YEAR_CASES = [  # (name, today, RFC 3164 time, the date it means)
    ("more than a month ahead: last year", (2026, 1, 10), "Dec 30 10:00:00", (2025, 12, 30, 10)),
    ("less than a month ahead: this year", (2026, 11, 25), "Dec 20 10:00:00", (2026, 12, 20, 10)),
    ("more than 11 months back: next year", (2026, 12, 31), "Jan  1 00:00:00", (2027, 1, 1, 0)),
]


@pytest.mark.parametrize("name,today,stamp,meant", YEAR_CASES, ids=[c[0] for c in YEAR_CASES])
def test_rfc3164_year_window(name, today, stamp, meant):
    headers, _ = decode_one(f"<13>{stamp} host msg".encode(), now=utc(*today, 12) / 1000)
    assert headers["timestamp"] == str(local(*meant))


def test_udp_datagram_is_one_message_up_to_its_first_newline():
    d = SyslogUtilsDecoder(1 << 16, now=lambda: NOW)
    ev = d.datagram(b"<13>Feb  5 17:32:18 host first\nsecond line is not read")
    assert ev is not None and ev.body == b"first"
    ev = d.datagram(b"<13>no newline at all")
    assert ev is not None and ev.body == b"<13>no newline at all" and STATUS_HEADER not in ev.headers
    assert d.datagram(b"") is None and d.datagram(b"\n\n") is None
    ev = d.datagram(b"<")
    assert ev is not None and ev.headers[STATUS_HEADER] == "Invalid"


# --------------------------------------------------------------------------------------------------------------
# SyslogParser (multiport_syslogtcp)

RFC5424_DATES = [  # Flume's TestSyslogParser.testRfc5424DateParsing, checked against ISO parsing
    ("1985-04-12T23:20:50.52Z", utc(1985, 4, 12, 23, 20, 50, 520)),
    ("1985-04-12T19:20:50.52-04:00", utc(1985, 4, 12, 23, 20, 50, 520)),
    ("2003-10-11T22:14:15.003Z", utc(2003, 10, 11, 22, 14, 15, 3)),
    ("2003-08-24T05:14:15.000003-07:00", utc(2003, 8, 24, 12, 14, 15)),
    ("2012-04-13T11:11:11-08:00", utc(2012, 4, 13, 19, 11, 11)),
    ("2012-04-13T08:08:08.0001+00:00", utc(2012, 4, 13, 8, 8, 8)),
    ("2012-04-13T08:08:08.251+00:00", utc(2012, 4, 13, 8, 8, 8, 251)),
]


@pytest.mark.parametrize("stamp,millis", RFC5424_DATES, ids=[d[0] for d in RFC5424_DATES])
def test_syslog_parser_rfc5424_dates(stamp, millis):
    headers, body = SyslogParser(now=lambda: NOW).parse(f"<13>1 {stamp} host msg", None)
    assert headers["timestamp"] == str(millis)
    assert body == "msg"


GOOD_MESSAGES = [  # Flume's TestSyslogParser.testMessageParsing
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
    "<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the do-nuts.",
    "<0>Oct 22 10:52:12 scapegoat 1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's",
    "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed for lonvick",
    "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    "<13>2003-08-24T05:14:15Z localhost snarf?",
    "<13>2012-08-16T14:34:03-08:00 127.0.0.1 test shnap!",
]


@pytest.mark.parametrize("msg", GOOD_MESSAGES)
def test_syslog_parser_reads_flumes_examples(msg):
    parser = SyslogParser(now=lambda: NOW)
    headers, _ = parser.parse(msg, None)
    assert STATUS_HEADER not in headers
    assert parser.parse(msg, KEEP_ALL)[1] == msg
    headers, body = parser.parse(msg, frozenset({"hostname"}))
    assert headers["host"] in body


def test_syslog_parser_headers_exactly():
    headers, body = SyslogParser(now=lambda: NOW).parse(
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time", None)
    assert headers == {"Facility": "20", "Severity": "5", "Priority": "165", "Version": "1",
                       "timestamp": str(utc(2003, 8, 24, 12, 14, 15)), "host": "192.0.2.1"}
    assert body == "myproc 8710 - - %% It's time"
    headers, body = SyslogParser(now=lambda: NOW).parse("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
                                                       frozenset({"priority", "timestamp"}))
    assert headers["timestamp"] == str(utc(2026, 2, 5, 17, 32, 18))  # multiport: RFC 3164 times are UTC
    assert body == "<13>Feb  5 17:32:18 Use the BFG!"


def test_syslog_parser_nil_timestamp_is_now_and_java_arithmetic_on_negative_priority():
    headers, body = SyslogParser(now=lambda: NOW).parse("<-9>- host msg", None)
    assert (headers["Facility"], headers["Severity"], headers["timestamp"]) == ("-1", "-1", str(int(NOW * 1000)))
    assert body == "msg"


def test_syslog_parser_unreadable_rfc3164_time_is_zero():
    headers, _ = SyslogParser(now=lambda: NOW).parse("<13>Feb 30 17:32:18 host msg", None)
    assert headers["timestamp"] == "0"


@pytest.mark.parametrize("msg", [
    "no bracket", "<>x", "<abc>x", "<1234567>x", "<13>", "<13>1 2012-04-13T11:11:11 host",
    "<13>2012-04-13T11:11:11.123 host", "<13>2012-04-13T11:11:11.x host", "<13>2012-04-13T11:11:11+08 host m",
    "<13>2012-13-13T11:11:11Z host m", "<13>Feb  5 17:32:18", "<13>nospacehere", "<13>- ",
])
def test_syslog_parser_rejects_what_flume_rejects(msg):
    with pytest.raises(ValueError):
        SyslogParser(now=lambda: NOW).parse(msg, None)


SPLIT_CASES = [
    ("lines", b"a\nbc\n", b"", 10, [(b"a", False), (b"bc", False)], b""),
    ("partial rest is saved", b"a\nbc", b"", 10, [(b"a", False)], b"bc"),
    ("saved bytes continue", b"c\nd", b"ab", 10, [(b"abc", False)], b"d"),
    ("long line is cut at max_len", b"abcdefg\n", b"", 5, [(b"abcde", True), (b"fg", False)], b""),
    ("line of max_len: cut, then an empty line", b"abcde\n", b"", 5, [(b"abcde", True), (b"", False)], b""),
    ("cut counts saved bytes", b"cdefg\n", b"ab", 5, [(b"abcde", True), (b"fg", False)], b""),
]


@pytest.mark.parametrize("name,data,saved,max_len,lines,rest", SPLIT_CASES, ids=[c[0] for c in SPLIT_CASES])
def test_split_lines_like_flumes_line_splitter(name, data, saved, max_len, lines, rest):
    assert split_lines(data, saved, max_len) == (lines, rest)
